// Durable reminders: stored in MongoDB, so they survive passivation and
// restarts of every node. Each node polls for due reminders, takes one by
// moving its lease forward (single-document atomic), delivers it to the actor
// as an ask, then reschedules (periodic) or deletes it. Delivery is at least
// once: a node that dies mid-delivery leaves the lease to expire and another
// node delivers again.
import { randomBytes } from 'node:crypto';
import mongoose, { type Connection } from 'mongoose';
import { FlockError, toErrorBody, messageOf } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import { actorReminderModel, type ActorReminderModel } from '../models/actor-reminder.ts';
import type { ActorType } from './define.ts';

export interface ReminderDelivery {
  /** Resolves the actor type by name (reminders are stored by name). */
  typeNamed(type: string): ActorType | undefined;
  /** An ask by message name (the reminder's message is stored as text; the runtime checks it against the type). */
  send(def: ActorType, key: string, message: string, input: unknown, chain: string[], timeoutMs?: number): Promise<unknown>;
}

const LEASE_MS = 30_000;
const BATCH = 100;

export class Reminders {
  private readonly model: ActorReminderModel;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    connection: Connection,
    private readonly delivery: ReminderDelivery,
    private readonly log: Logger,
    private readonly pollMs: number,
  ) {
    this.model = actorReminderModel(connection);
  }

  async init(): Promise<void> {
    await this.model.init();
  }

  start(): void {
    this.timer = setInterval(() => void this.poll(), this.pollMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async set(type: string, key: string, name: string, options: { dueInMs: number; periodMs?: number; message: string; input: unknown }): Promise<void> {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
      throw new FlockError('ACTOR_MESSAGE_INVALID', `reminder name ${JSON.stringify(name)} must be 1 to 64 characters from A-Z a-z 0-9 . _ -`);
    }
    const now = Date.now();
    await this.model.updateOne(
      { _id: `${type}/${key}/${name}` },
      {
        $set: {
          type,
          key,
          name,
          message: options.message,
          input: options.input ?? null,
          dueAt: new Date(now + Math.max(0, options.dueInMs)),
          periodMs: options.periodMs && options.periodMs > 0 ? Math.max(100, options.periodMs) : 0,
          leaseUntil: new Date(0),
          token: randomBytes(8).toString('hex'),
        },
      },
      { upsert: true },
    );
  }

  async cancel(type: string, key: string, name: string): Promise<void> {
    await this.model.deleteOne({ _id: `${type}/${key}/${name}` });
  }

  /** Delivers every reminder due now (at most BATCH per poll). */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (let i = 0; i < BATCH; i++) {
        const now = new Date();
        const doc = await this.model
          .findOneAndUpdate(
            { dueAt: mongoose.trusted({ $lte: now }), leaseUntil: mongoose.trusted({ $lte: now }) },
            { $set: { leaseUntil: new Date(now.getTime() + LEASE_MS) } },
            { sort: { dueAt: 1 }, returnDocument: 'after' },
          )
          .lean();
        if (!doc) break;
        void this.deliver(doc);
      }
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, 'reminder poll failed');
    } finally {
      this.polling = false;
    }
  }

  private async deliver(doc: {
    _id: string;
    type: string;
    key: string;
    name: string;
    message: string;
    input?: unknown;
    dueAt: Date;
    periodMs?: number | null;
    token: string;
  }): Promise<void> {
    const def = this.delivery.typeNamed(doc.type);
    if (!def) {
      this.log.warn({ reminder: doc._id }, 'reminder for an actor type this node does not know; leaving it to another node');
      return;
    }
    try {
      await this.delivery.send(def, doc.key, doc.message, doc.input, [], 10_000);
    } catch (err) {
      this.log.warn({ reminder: doc._id, err: toErrorBody(err) }, 'reminder delivery failed; it will be retried');
      return;
    }
    if (doc.periodMs && doc.periodMs > 0) {
      const next = Math.max(doc.dueAt.getTime() + doc.periodMs, Date.now());
      await this.model.updateOne({ _id: doc._id, token: doc.token }, { $set: { dueAt: new Date(next), leaseUntil: new Date(0) } });
    } else {
      await this.model.deleteOne({ _id: doc._id, token: doc.token });
    }
  }
}
