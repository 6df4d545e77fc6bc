// The push outbox: one document per notification version for a user who was
// offline when it happened, consumed by the `pushOutbox` job
// (jobs/push-outbox.ts), which hands it to the configured push sender with
// retries. The id is derived from the notification and its version, so an
// effect the NotificationsActor redoes after a crash does not add a second one.
//
// Access paths and their indexes:
//   the next entries due (the job)       { status, nextAttemptAt }
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

export const PUSH_OUTBOX_COLLECTION = 'push_outbox';
export const PUSH_STATUSES = ['pending', 'sending', 'sent', 'failed'] as const;
export type PushStatus = (typeof PUSH_STATUSES)[number];

export interface PushOutboxDoc {
  _id: string;
  userId: string;
  notificationId: string;
  /** The notification view, as JSON. */
  payload: string;
  status: PushStatus;
  attempts: number;
  nextAttemptAt: Date;
  /** While sending: when another runner may take it over. */
  lockedUntil: Date | null;
  lastError: string | null;
  createdAt: Date;
  sentAt: Date | null;
}

export const pushOutboxSchema = new Schema<PushOutboxDoc>(
  {
    _id: { type: String, required: true },
    userId: { type: String, required: true },
    notificationId: { type: String, required: true },
    payload: { type: String, required: true },
    status: { type: String, required: true, enum: PUSH_STATUSES },
    attempts: { type: Number, required: true },
    nextAttemptAt: { type: Date, required: true },
    lockedUntil: { type: Date, default: null },
    lastError: { type: String, default: null },
    createdAt: { type: Date, required: true },
    sentAt: { type: Date, default: null },
  },
  { collection: PUSH_OUTBOX_COLLECTION, versionKey: false, minimize: false, strict: 'throw' },
);
pushOutboxSchema.index({ status: 1, nextAttemptAt: 1 });

export type PushOutboxModel = Model<PushOutboxDoc>;

export function pushOutboxModel(connection: Connection): PushOutboxModel {
  return modelOn(connection, 'PushOutbox', pushOutboxSchema);
}
