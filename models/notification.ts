// Notifications: one document per notification (a group of events of one
// kind on one subject), owned and written only by the recipient's
// NotificationsActor (actors/notifications.ts), fenced by its epoch.
//
// Access paths and their indexes:
//   a notification by id (mark read, updates)            _id = {userId}:{seq, 10 digits}
//   a user's inbox, latest activity first               { userId, updatedAt: -1, _id: -1 }
//   a user's unread notifications (mark all read)       { userId, read }
//   a user's notifications about a deleted post          { userId, subjectId }
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

/** The kinds of notification (what each means and how it groups: notifications/kinds.ts). */
export const NOTIFICATION_KINDS = ['like', 'reply', 'quote', 'repost', 'mention', 'follow', 'follow_request'] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export const NOTIFICATION_COLLECTION = 'notifications';

/** Distinct actors remembered per notification; beyond, further events still count but are not deduplicated by actor. */
export const MAX_ACTORS_KEPT = 200;

export interface NotificationDoc {
  _id: string;
  userId: string;
  kind: NotificationKind;
  groupKey: string;
  subjectId: string;
  /** The post the latest event concerns (a reply, a quote, the mentioning post), or null. */
  postId: string | null;
  /** Distinct actors, latest first (at most MAX_ACTORS_KEPT). */
  actorIds: string[];
  /** Distinct actors in the group. */
  actorCount: number;
  read: boolean;
  /** Its subject was deleted: kept for the record, left out of the inbox and the unread count. */
  retracted?: boolean;
  createdAt: Date;
  updatedAt: Date;
  epoch: number;
}

export function notificationId(userId: string, seq: number): string {
  return `${userId}:${String(seq).padStart(10, '0')}`;
}

export const notificationSchema = new Schema<NotificationDoc>(
  {
    _id: { type: String, required: true },
    userId: { type: String, required: true },
    kind: { type: String, required: true, enum: NOTIFICATION_KINDS },
    groupKey: { type: String, required: true },
    subjectId: { type: String, required: true },
    postId: { type: String, default: null },
    actorIds: { type: [String], default: [] },
    actorCount: { type: Number, required: true },
    read: { type: Boolean, required: true },
    retracted: { type: Boolean, default: false },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    epoch: { type: Number, required: true },
  },
  { collection: NOTIFICATION_COLLECTION, versionKey: false, minimize: false, strict: 'throw' },
);
notificationSchema.index({ userId: 1, updatedAt: -1, _id: -1 });
notificationSchema.index({ userId: 1, read: 1 });
notificationSchema.index({ userId: 1, subjectId: 1 });

export type NotificationModel = Model<NotificationDoc>;

export function notificationModel(connection: Connection): NotificationModel {
  return modelOn(connection, 'Notification', notificationSchema);
}
