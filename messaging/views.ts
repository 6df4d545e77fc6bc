// What clients see of conversations and messages: the ack and event schemas
// of the conversations channel, and the functions that build them.
import { z } from 'zod';
import { CONVERSATION_KINDS, FOLDERS, MEMBER_ROLES, type ConversationDoc, type ConversationInvite, type ConversationMember } from '../models/conversation.ts';
import { MESSAGE_KINDS, SYSTEM_ACTIONS, type MessageDoc } from '../models/message.ts';

export const messageView = z.object({
  conversationId: z.string(),
  seq: z.number().int().describe('Position in the conversation: the same order for every member'),
  kind: z.enum(MESSAGE_KINDS),
  senderId: z.string().describe('The author; for system messages, who made the change'),
  clientMessageId: z.string().nullable(),
  text: z.string(),
  mediaIds: z.array(z.string()),
  replyTo: z.number().int().nullable(),
  system: z
    .object({ action: z.enum(SYSTEM_ACTIONS), by: z.string(), userIds: z.array(z.string()), title: z.string().nullable(), role: z.string().nullable() })
    .nullable()
    .describe('What changed, for system messages (membership, title, roles)'),
  createdAt: z.number().int(),
  editedAt: z.number().int().nullable(),
  deleted: z.boolean().describe('A tombstone: the message was deleted by its sender'),
});
export type MessageView = z.infer<typeof messageView>;

export const memberView = z.object({
  userId: z.string(),
  role: z.enum(MEMBER_ROLES),
  readSeq: z.number().int(),
  deliveredSeq: z.number().int(),
});

export const conversationView = z.object({
  conversationId: z.string(),
  kind: z.enum(CONVERSATION_KINDS),
  title: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.number().int(),
  members: z.array(memberView),
  lastSeq: z.number().int(),
  lastMessageAt: z.number().int(),
  folder: z.enum(FOLDERS).describe("The viewer's folder: inbox, requests (a message request) or declined"),
  unread: z.number().int().describe("Messages after the viewer's read receipt"),
  invited: z.array(z.string()).describe('Users invited to the group who have not accepted yet (not members: they read and get nothing)'),
});
export type ConversationView = z.infer<typeof conversationView>;

export function toMessageView(doc: MessageDoc): MessageView {
  return {
    conversationId: doc.conversationId,
    seq: doc.seq,
    kind: doc.kind,
    senderId: doc.senderId,
    clientMessageId: doc.clientMessageId,
    text: doc.text,
    mediaIds: doc.mediaIds,
    replyTo: doc.replyTo,
    system: doc.system ? { ...doc.system, userIds: doc.system.userIds ?? [], title: doc.system.title ?? null, role: doc.system.role ?? null } : null,
    createdAt: new Date(doc.createdAt).getTime(),
    editedAt: doc.editedAt ? new Date(doc.editedAt).getTime() : null,
    deleted: doc.deleted,
  };
}

export function unreadOf(doc: Pick<ConversationDoc, 'lastSeq'>, member: Pick<ConversationMember, 'readSeq'>): number {
  return Math.max(0, doc.lastSeq - member.readSeq);
}

export function toConversationView(doc: ConversationDoc, viewer: ConversationMember): ConversationView {
  return {
    conversationId: doc._id,
    kind: doc.kind,
    title: doc.title,
    createdBy: doc.createdBy,
    createdAt: new Date(doc.createdAt).getTime(),
    members: doc.members.map((m) => ({ userId: m.userId, role: m.role, readSeq: m.readSeq, deliveredSeq: m.deliveredSeq })),
    lastSeq: doc.lastSeq,
    lastMessageAt: new Date(doc.lastMessageAt).getTime(),
    folder: viewer.folder,
    unread: unreadOf(doc, viewer),
    invited: doc.invitedIds ?? [],
  };
}

/** An invite to a group, as the invitee sees it (conversations:invites and the conversations:invited stream event). */
export const inviteView = z.object({
  conversationId: z.string(),
  title: z.string().nullable(),
  by: z.string().describe('Who invited you'),
  at: z.number().int().describe('When, in milliseconds since the epoch'),
  members: z.number().int().describe('Members of the group now'),
});
export type InviteView = z.infer<typeof inviteView>;

export function toInviteView(doc: Pick<ConversationDoc, '_id' | 'title' | 'members'>, invite: ConversationInvite): InviteView {
  return { conversationId: doc._id, title: doc.title, by: invite.by, at: new Date(invite.at).getTime(), members: doc.members.length };
}
