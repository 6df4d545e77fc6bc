// Durable actor state in MongoDB with fencing: activating claims the document
// for the activation's epoch, and a save lands only if the document still
// carries that epoch and the version the activation last wrote.
import mongoose, { type Connection } from 'mongoose';
import { actorDocId, actorStateModel, type ActorStateModel } from '../models/actor-state.ts';
import { isDuplicateKey } from '../kernel/duplicate-key.ts';

export type ClaimOutcome = { ok: true; version: number; state: unknown } | { ok: false; storedEpoch: number };

export class StateStore {
  private readonly model: ActorStateModel;

  constructor(connection: Connection) {
    this.model = actorStateModel(connection);
  }

  async init(): Promise<void> {
    await this.model.init();
  }

  /** Takes the document for `epoch` (creating it if new) and returns the stored state. */
  async claim(type: string, key: string, epoch: number): Promise<ClaimOutcome> {
    const _id = actorDocId(type, key);
    try {
      const doc = await this.model
        .findOneAndUpdate(
          // trusted(): the node sanitizes filters (sanitizeFilter); this operator is ours.
          { _id, epoch: mongoose.trusted({ $lte: epoch }) },
          { $set: { epoch }, $setOnInsert: { type, key, version: 0, state: null, updatedAt: new Date() } },
          { upsert: true, returnDocument: 'after' },
        )
        .lean();
      if (!doc) throw new Error('claim returned no document');
      return { ok: true, version: doc.version, state: doc.state };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const existing = await this.model.findById(_id, { epoch: 1 }).lean();
      return { ok: false, storedEpoch: existing?.epoch ?? epoch };
    }
  }

  /** Writes `state` as version `version + 1`; false when this activation was fenced out. */
  async save(type: string, key: string, epoch: number, version: number, state: unknown): Promise<boolean> {
    const result = await this.model.updateOne(
      { _id: actorDocId(type, key), epoch, version },
      { $set: { state, version: version + 1, updatedAt: new Date() } },
    );
    return result.modifiedCount === 1;
  }

  async read(type: string, key: string): Promise<{ epoch: number; version: number; state: unknown } | null> {
    const doc = await this.model.findById(actorDocId(type, key)).lean();
    return doc ? { epoch: doc.epoch, version: doc.version, state: doc.state } : null;
  }
}
