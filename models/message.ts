// Messages of conversations: one document each, keyed by conversation and
// sequence number (`{conversationId}:{seq, 10 digits}`), written only by the
// conversation's actor with fenced upserts. Keying by sequence number makes
// every page of history a read by ids (no scan, also on the embedded FerretDB)
// and means two owners can never store two messages under one number: a
// newer owner's write replaces an older owner's, and an older owner's write
// over a newer one's is refused.
//
// Deletion leaves a tombstone (deleted, no text, no media) that members see.
//
// Access paths and their indexes:
//   a message, a page of history (by sequence)   _id
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

export const MESSAGE_COLLECTION = 'messages';
export const MESSAGE_KINDS = ['text', 'system'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];
/** joined: an invited user accepted the invite. */
export const SYSTEM_ACTIONS = ['created', 'added', 'joined', 'removed', 'left', 'renamed', 'role'] as const;
export type SystemAction = (typeof SYSTEM_ACTIONS)[number];

export interface SystemInfo {
  action: SystemAction;
  /** Who did it. */
  by: string;
  /** Whom it concerns (added or removed members, the member whose role changed). */
  userIds: string[];
  title: string | null;
  role: string | null;
}

export interface MessageDoc {
  _id: string;
  conversationId: string;
  seq: number;
  kind: MessageKind;
  /** The author; for system messages, who made the change. */
  senderId: string;
  clientMessageId: string | null;
  text: string;
  mediaIds: string[];
  /** The sequence number of the message this one answers. */
  replyTo: number | null;
  system: SystemInfo | null;
  createdAt: Date;
  editedAt: Date | null;
  deleted: boolean;
  deletedAt: Date | null;
  epoch: number;
}

export function messageId(conversationId: string, seq: number): string {
  return `${conversationId}:${String(seq).padStart(10, '0')}`;
}

export const messageSchema = new Schema<MessageDoc>(
  {
    _id: { type: String, required: true },
    conversationId: { type: String, required: true },
    seq: { type: Number, required: true },
    kind: { type: String, required: true, enum: MESSAGE_KINDS },
    senderId: { type: String, required: true },
    clientMessageId: { type: String, default: null },
    text: { type: String, default: '' },
    mediaIds: { type: [String], default: [] },
    replyTo: { type: Number, default: null },
    system: {
      type: new Schema({ action: String, by: String, userIds: [String], title: String, role: String }, { _id: false }),
      default: null,
    },
    createdAt: { type: Date, required: true },
    editedAt: { type: Date, default: null },
    deleted: { type: Boolean, default: false },
    deletedAt: { type: Date, default: null },
    epoch: { type: Number, required: true },
  },
  { collection: MESSAGE_COLLECTION, versionKey: false, minimize: false, strict: 'throw' },
);

export type MessageModel = Model<MessageDoc>;

export function messageModel(connection: Connection): MessageModel {
  return modelOn(connection, 'Message', messageSchema);
}
