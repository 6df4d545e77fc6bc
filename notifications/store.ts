// The documents of notifications (the inbox and the push outbox), their
// settings, and the inbox read path the notifications channel serves.
import type { Connection } from 'mongoose';
import mongoose from 'mongoose';
import { notificationModel, type NotificationDoc, type NotificationModel } from '../models/notification.ts';
import { isDuplicateKey } from '../kernel/duplicate-key.ts';
import { PUSH_OUTBOX_COLLECTION, pushOutboxModel, type PushOutboxDoc, type PushOutboxModel } from '../models/push-outbox.ts';

export interface NotificationSettings {
  /** How long a group takes further events after it opened (unless read first). */
  groupWindowMs: number;
  /** Event ids remembered per recipient, to drop an event delivered twice. */
  seenWindow: number;
}

export const defaultNotificationSettings: NotificationSettings = { groupWindowMs: 24 * 3600_000, seenWindow: 1_000 };

export class NotificationStore {
  readonly notifications: NotificationModel;
  readonly outbox: PushOutboxModel;

  constructor(
    connection: Connection,
    readonly settings: NotificationSettings = defaultNotificationSettings,
  ) {
    this.notifications = notificationModel(connection);
    this.outbox = pushOutboxModel(connection);
  }

  async init(): Promise<void> {
    await Promise.all([this.notifications.init(), this.outbox.init()]);
  }

  /** Adds an entry to the push outbox; one that is there already (an effect redone after a crash) is left as it is. */
  async queuePush(entry: PushOutboxDoc): Promise<void> {
    try {
      await this.outbox.db.collection<PushOutboxDoc>(PUSH_OUTBOX_COLLECTION).insertOne(entry);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  /** A user's notifications (not retracted), latest activity first, after the (updatedAt, id) cursor. */
  async page(userId: string, limit: number, after?: { t: number; id: string }): Promise<NotificationDoc[]> {
    const filter: Record<string, unknown> = { userId, retracted: mongoose.trusted({ $ne: true }) };
    if (after) {
      const t = new Date(after.t);
      // Each operator is marked: sanitizeFilter would wrap an unmarked one in $eq.
      filter.$or = [{ updatedAt: mongoose.trusted({ $lt: t }) }, { updatedAt: t, _id: mongoose.trusted({ $lt: after.id }) }];
    }
    return this.notifications.find(filter).sort({ updatedAt: -1, _id: -1 }).limit(limit).lean<NotificationDoc[]>();
  }
}
