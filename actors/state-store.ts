// Where an activation's state is loaded from and saved to, with fencing:
// activating claims the stored state for the activation's epoch, and a save
// lands only while the stored state still carries that epoch (and, for
// `actor_states`, the version the activation last wrote). The effects a turn
// recorded are saved in the same single-document write as its state.
//
// Two stores: ActorStateStore keeps state in `actor_states` (durable and
// cached actors), DocumentStateStore keeps it as a domain document of its own
// collection (document actors: PostActor, ConversationActor).
import mongoose, { type Connection } from 'mongoose';
import { isDuplicateKey } from '../kernel/duplicate-key.ts';
import { actorDocId, actorStateModel, type ActorStateModel } from '../models/actor-state.ts';

export type ClaimOutcome = { ok: true; version: number; state: unknown; pending: unknown[] } | { ok: false; storedEpoch: number };

export interface StateStore {
  /**
   * Takes the stored state for `epoch` and returns it; refused when a newer
   * epoch holds it. `held`: this runtime held `epoch` already (activating the
   * actor again after a lease loss, with the directory still naming it), so a
   * read that finds the state stamped with it needs no write.
   */
  claim(key: string, epoch: number, held?: boolean): Promise<ClaimOutcome>;
  /**
   * Writes `next` (and the effects still to do) as version `version + 1`;
   * false when this activation was fenced out. `previous` is the state as
   * last loaded or saved, so a store can write only what changed.
   */
  save(key: string, epoch: number, version: number, previous: unknown, next: unknown, pending: readonly string[]): Promise<boolean>;
  /**
   * Drops the claim of an activation that never saved a state (version 0), so
   * that asking for an id that does not exist leaves nothing behind. Fenced:
   * a newer claim keeps its record.
   */
  release?(key: string, epoch: number): Promise<void>;
}

export class ActorStateStore implements StateStore {
  private readonly model: ActorStateModel;

  constructor(
    connection: Connection,
    private readonly type: string,
  ) {
    this.model = actorStateModel(connection);
  }

  async init(): Promise<void> {
    await this.model.init();
  }

  async claim(key: string, epoch: number, held = false): Promise<ClaimOutcome> {
    const _id = actorDocId(this.type, key);
    if (held) {
      const doc = await this.model.findById(_id).lean();
      if (doc?.epoch === epoch) return { ok: true, version: doc.version, state: doc.state, pending: doc.pending ?? [] };
    }
    try {
      const doc = await this.model
        .findOneAndUpdate(
          // trusted(): the node sanitizes filters (sanitizeFilter); this operator is ours.
          { _id, epoch: mongoose.trusted({ $lte: epoch }) },
          { $set: { epoch }, $setOnInsert: { type: this.type, key, version: 0, state: null, pending: [], updatedAt: new Date() } },
          { upsert: true, returnDocument: 'after' },
        )
        .lean();
      if (!doc) throw new Error('claim returned no document');
      return { ok: true, version: doc.version, state: doc.state, pending: doc.pending ?? [] };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const existing = await this.model.findById(_id, { epoch: 1 }).lean();
      return { ok: false, storedEpoch: existing?.epoch ?? epoch };
    }
  }

  async save(key: string, epoch: number, version: number, _previous: unknown, next: unknown, pending: readonly string[]): Promise<boolean> {
    const result = await this.model.updateOne(
      { _id: actorDocId(this.type, key), epoch, version },
      { $set: { state: next, pending: [...pending], version: version + 1, updatedAt: new Date() } },
    );
    return result.modifiedCount === 1;
  }

  async release(key: string, epoch: number): Promise<void> {
    // A later activation of any epoch has no state to be protected from: version 0 holds none.
    await this.model.deleteOne({ _id: actorDocId(this.type, key), epoch, version: 0 });
  }

  async read(key: string): Promise<{ epoch: number; version: number; state: unknown; pending: string[] } | null> {
    const doc = await this.model.findById(actorDocId(this.type, key)).lean();
    return doc ? { epoch: doc.epoch, version: doc.version, state: doc.state, pending: doc.pending } : null;
  }
}

/** A domain document as stored: its fields, and the actor's bookkeeping. */
interface StoredDocument {
  _id: string;
  epoch: number;
  version?: number;
  pending?: unknown;
  [field: string]: unknown;
}

const BOOKKEEPING = new Set(['_id', 'epoch', 'version', 'pending']);

/**
 * The state of a document actor: the document itself, `null` while it does
 * not exist. Claiming stamps the document with the activation's epoch in the
 * same write that reads it, so an older owner still in a turn can no longer
 * write it once this activation has loaded it. Saves write the changed
 * top-level fields only (handlers replace what they change and keep the rest,
 * so an unchanged field is the same value), fenced on `epoch`.
 */
export class DocumentStateStore implements StateStore {
  constructor(
    private readonly connection: Connection,
    private readonly collectionName: string,
  ) {}

  private get collection() {
    return this.connection.collection<StoredDocument>(this.collectionName);
  }

  async claim(key: string, epoch: number, held = false): Promise<ClaimOutcome> {
    if (held) {
      const doc = await this.collection.findOne({ _id: key });
      if (!doc) return { ok: true, version: 0, state: null, pending: [] };
      if (doc.epoch === epoch) return claimed(doc);
    }
    const doc = await this.collection.findOneAndUpdate({ _id: key, epoch: { $lte: epoch } }, { $set: { epoch } }, { returnDocument: 'after' });
    if (doc) return claimed(doc);
    const existing = await this.collection.findOne({ _id: key }, { projection: { epoch: 1 } });
    if (existing) return { ok: false, storedEpoch: existing.epoch };
    return { ok: true, version: 0, state: null, pending: [] };
  }

  async save(key: string, epoch: number, version: number, previous: unknown, next: unknown, pending: readonly string[]): Promise<boolean> {
    if (!isRecord(next)) throw new Error(`${this.collectionName}/${key}: a document actor's state must stay a document once it exists`);
    if (!isRecord(previous)) {
      try {
        await this.collection.insertOne({ ...next, _id: key, epoch, version: version + 1, pending: [...pending] });
        return true;
      } catch (err) {
        if (isDuplicateKey(err)) return false; // another owner made it
        throw err;
      }
    }
    const set: Record<string, unknown> = { version: version + 1, pending: [...pending] };
    const unset: Record<string, ''> = {};
    for (const [field, value] of Object.entries(next)) {
      if (BOOKKEEPING.has(field)) continue;
      if (value === undefined) {
        if (previous[field] !== undefined) unset[field] = '';
      } else if (previous[field] !== value) {
        set[field] = value;
      }
    }
    for (const field of Object.keys(previous)) if (!(field in next)) unset[field] = '';
    const update = Object.keys(unset).length > 0 ? { $set: set, $unset: unset } : { $set: set };
    const result = await this.collection.updateOne({ _id: key, epoch }, update);
    return result.matchedCount === 1;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A claimed document as the actor's state: its fields without the bookkeeping. */
function claimed(doc: StoredDocument): ClaimOutcome {
  const state: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(doc)) if (!BOOKKEEPING.has(field)) state[field] = value;
  return { ok: true, version: typeof doc.version === 'number' ? doc.version : 0, state, pending: Array.isArray(doc.pending) ? doc.pending : [] };
}
