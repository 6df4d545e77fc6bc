// Conversations (1:1 and groups): one document each, owned and written only by
// its ConversationActor (actors/conversation.ts), fenced by the actor's
// activation epoch. It holds the members with their receipts (read and
// delivered up to a sequence number) and folder, the last sequence number
// handed out, the client message ids of the latest messages (resend
// detection), and the deliveries of the last change still to do.
//
// Access paths and their indexes:
//   a conversation by id (every request)                  _id
//   a user's conversations, latest activity first         { memberIds, lastMessageAt, _id }
// Arrays hold objects of scalars or strings only: FerretDB v1 has no nested arrays.
import { Schema, type Connection, type Model } from 'mongoose';

export const CONVERSATION_COLLECTION = 'conversations';
export const CONVERSATION_KINDS = ['direct', 'group'] as const;
export type ConversationKind = (typeof CONVERSATION_KINDS)[number];
export const MEMBER_ROLES = ['owner', 'admin', 'member'] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];
/** inbox: listed and delivered; requests: a message request not yet accepted; declined: hidden, nothing delivered. */
export const FOLDERS = ['inbox', 'requests', 'declined'] as const;
export type Folder = (typeof FOLDERS)[number];

export interface ConversationMember {
  userId: string;
  role: MemberRole;
  folder: Folder;
  joinedAt: Date;
  /** The member reads messages from this sequence number on (the system message of the join). */
  joinedSeq: number;
  /** Read up to this sequence number (own messages count as read). */
  readSeq: number;
  /** Received up to this sequence number; never below readSeq. */
  deliveredSeq: number;
}

/** Someone who left or was removed: reads history up to leftSeq. */
export interface FormerMember {
  userId: string;
  joinedSeq: number;
  leftSeq: number;
}

/** A resend key: sender and client message id, and the message they made. */
export interface RecentKey {
  key: string;
  seq: number;
}

/** A personal-stream delivery still to do (JSON data; `to` joined by commas). */
export interface PendingDelivery {
  type: string;
  data: string;
  to: string;
}

export interface ConversationDoc {
  _id: string;
  kind: ConversationKind;
  title: string | null;
  createdBy: string;
  createdAt: Date;
  members: ConversationMember[];
  /** Mirrors members[].userId, for the index of a user's conversations. */
  memberIds: string[];
  former: FormerMember[];
  /** The last sequence number handed out (0: no message yet). */
  lastSeq: number;
  lastMessageAt: Date;
  recent: RecentKey[];
  pending: PendingDelivery[];
  epoch: number;
}

const memberSchema = new Schema<ConversationMember>(
  {
    userId: { type: String, required: true },
    role: { type: String, required: true, enum: MEMBER_ROLES },
    folder: { type: String, required: true, enum: FOLDERS },
    joinedAt: { type: Date, required: true },
    joinedSeq: { type: Number, required: true },
    readSeq: { type: Number, required: true },
    deliveredSeq: { type: Number, required: true },
  },
  { _id: false },
);

export const conversationSchema = new Schema<ConversationDoc>(
  {
    _id: { type: String, required: true },
    kind: { type: String, required: true, enum: CONVERSATION_KINDS },
    title: { type: String, default: null },
    createdBy: { type: String, required: true },
    createdAt: { type: Date, required: true },
    members: { type: [memberSchema], default: [] },
    memberIds: { type: [String], default: [] },
    former: { type: [new Schema({ userId: String, joinedSeq: Number, leftSeq: Number }, { _id: false })], default: [] },
    lastSeq: { type: Number, required: true },
    lastMessageAt: { type: Date, required: true },
    recent: { type: [new Schema({ key: String, seq: Number }, { _id: false })], default: [] },
    pending: { type: [new Schema({ type: String, data: String, to: String }, { _id: false })], default: [] },
    epoch: { type: Number, required: true },
  },
  { collection: CONVERSATION_COLLECTION, versionKey: false, minimize: false, strict: 'throw' },
);
conversationSchema.index({ memberIds: 1, lastMessageAt: -1, _id: -1 });

export type ConversationModel = Model<ConversationDoc>;

export function conversationModel(connection: Connection): ConversationModel {
  return (connection.models.Conversation as ConversationModel | undefined) ?? connection.model<ConversationDoc>('Conversation', conversationSchema);
}
