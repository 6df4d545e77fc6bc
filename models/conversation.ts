// Conversations (1:1 and groups): one document each, owned and written only by
// its ConversationActor (actors/conversation.ts), fenced by the actor's
// activation epoch. It holds the members with their receipts (read and
// delivered up to a sequence number) and folder, and the last sequence
// number handed out. Resend keys have documents of their own
// (models/message-key.ts); `recent` holds those of documents written before.
//
// Users invited to a group who have not accepted yet (`invites`, mirrored in
// `invitedIds`) are not members: they read nothing and get nothing but the
// invite (conversations:invited).
//
// Access paths and their indexes:
//   a conversation by id (every request)                  _id
//   a user's conversations, latest activity first         { memberIds, lastMessageAt, _id }
//   a user's pending invites, latest activity first       { invitedIds, lastMessageAt, _id }
// Arrays hold objects of scalars or strings only: FerretDB v1 has no nested arrays.
import { Schema, type Connection, type Model } from 'mongoose';
import { z } from 'zod';
import { modelOn } from '../kernel/mongo.ts';

export const CONVERSATION_COLLECTION = 'conversations';
export const CONVERSATION_KINDS = ['direct', 'group'] as const;
export type ConversationKind = (typeof CONVERSATION_KINDS)[number];
export const MEMBER_ROLES = ['owner', 'admin', 'member'] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];
/** inbox: listed and delivered; requests: a message request not yet accepted; declined: hidden, nothing delivered. */
export const FOLDERS = ['inbox', 'requests', 'declined'] as const;
export type Folder = (typeof FOLDERS)[number];

const memberFields = z.object({
  userId: z.string(),
  role: z.enum(MEMBER_ROLES),
  folder: z.enum(FOLDERS),
  joinedAt: z.date(),
  /** The member reads messages from this sequence number on (the system message of the join). */
  joinedSeq: z.number().int(),
  /** Read up to this sequence number (own messages count as read). */
  readSeq: z.number().int(),
  /** Received up to this sequence number; never below readSeq. */
  deliveredSeq: z.number().int(),
});
export type ConversationMember = z.output<typeof memberFields>;

const inviteFields = z.object({
  userId: z.string(),
  /** Who invited them. */
  by: z.string(),
  at: z.date(),
});
export type ConversationInvite = z.output<typeof inviteFields>;

/**
 * The fields of a conversation document, as ConversationActor holds them in
 * memory (its state) and as they are parsed when it activates. The actor's
 * bookkeeping (`epoch`, `version`, the deliveries still to do in `pending`)
 * is stored beside them.
 */
export const conversationFields = z.object({
  kind: z.enum(CONVERSATION_KINDS),
  title: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.date(),
  members: z.array(memberFields),
  /** Mirrors members[].userId, for the index of a user's conversations. */
  memberIds: z.array(z.string()),
  /** Those who left or were removed: each reads history up to leftSeq. */
  former: z.array(z.object({ userId: z.string(), joinedSeq: z.number().int(), leftSeq: z.number().int() })),
  /** The last sequence number handed out (0: no message yet). */
  lastSeq: z.number().int(),
  lastMessageAt: z.date(),
  /** Invites not yet accepted or declined (groups only); they count towards the member limit. */
  invites: z.array(inviteFields).default([]),
  /** Mirrors invites[].userId, for the index of a user's invites. */
  invitedIds: z.array(z.string()).default([]),
  /** Legacy: resend keys (sender and client message id) of the latest messages before they had documents (models/message-key.ts); read, not written. */
  recent: z.array(z.object({ key: z.string(), seq: z.number().int() })),
});
export type ConversationFields = z.output<typeof conversationFields>;

export interface ConversationDoc extends Omit<ConversationFields, 'invites' | 'invitedIds'> {
  _id: string;
  /** As stored: documents written before invites existed have neither field. */
  invites?: ConversationInvite[];
  invitedIds?: string[];
  /** The owning actor's bookkeeping (actors/state-store.ts). */
  epoch: number;
  version?: number;
  pending?: unknown[];
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
    invites: { type: [new Schema({ userId: String, by: String, at: Date }, { _id: false })], default: [] },
    invitedIds: { type: [String], default: [] },
    recent: { type: [new Schema({ key: String, seq: Number }, { _id: false })], default: [] },
    epoch: { type: Number, required: true },
    version: { type: Number, default: 0 },
    /** Deliveries of the last change, as JSON (actors/activation.ts); objects in documents written before 0.2.0. */
    pending: { type: [Schema.Types.Mixed], default: [] },
  },
  { collection: CONVERSATION_COLLECTION, versionKey: false, minimize: false, strict: 'throw' },
);
conversationSchema.index({ memberIds: 1, lastMessageAt: -1, _id: -1 });
conversationSchema.index({ invitedIds: 1, lastMessageAt: -1, _id: -1 });

export type ConversationModel = Model<ConversationDoc>;

export function conversationModel(connection: Connection): ConversationModel {
  return modelOn(connection, 'Conversation', conversationSchema);
}
