// ConversationActor: one per conversation (key = conversation id). It owns the
// conversation document (members, roles, folders, receipts, the sequence
// counter; models/conversation.ts) and the conversation's messages
// (models/message.ts), so sequence numbers, receipts and unread counts are
// decided one turn at a time: the same order for every member, exact under any
// concurrency, across nodes.
//
// Like PostActor it keeps no runtime state: the document is its state, written
// with fenced updates (epoch <= this activation's). Sending a message:
//   1. the message is upserted under `{conversationId}:{seq}` (fenced);
//   2. the conversation document takes the new lastSeq, the sender's receipt,
//      the resend key and the deliveries still to do (`pending`);
//   3. the deliveries to every member's personal stream, and `pending` is
//      cleared: an afterCommit effect, so it runs before the reply and the
//      sender's ack means every member's stream has the message.
// A crash after 1 leaves a message past lastSeq that no read shows and the
// next send overwrites (nothing was acknowledged, and the resend finds no
// key). A crash after 2 leaves pending deliveries that onActivate does
// (at least once: clients drop a repeat by conversation and seq); the sender
// got no ack, and its resend finds the key (duplicate). Every delivery must be
// one the stream accepts (CONVERSATION_EVENTS, `deliverable`): one it refuses
// would be redone, and refused, before every later turn.
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { edgeId } from '../models/edge.ts';
import type { ConversationDoc, ConversationMember, Folder, MemberRole, PendingDelivery } from '../models/conversation.ts';
import { messageId, type MessageDoc, type SystemInfo } from '../models/message.ts';
import { fencedInsert, fencedUpdate, fencedUpsert } from '../kernel/fenced.ts';
import { messageView, toMessageView, type MessageView } from '../messaging/views.ts';
import { DEFAULT_MAX_DATA_BYTES } from '../streams/envelope.ts';
import { defineActor, type ActorContext, type ActorType } from './define.ts';
import { userIdInput } from '../kernel/ids.ts';
import { idempotencyKeyInput, mediaIdInput } from '../kernel/ids.ts';

export const MESSAGE_TEXT_MAX = 4_000;
export const MESSAGE_MEDIA_MAX = 10;
export const TITLE_MAX = 100;
/** Members added in one request. */
export const ADD_MAX = 50;

/**
 * The personal-stream event types members get. Stream event types are
 * lowercase (EVENT_TYPE in streams/envelope.ts): a type append refuses
 * would fail every delivery of the change, and onActivate would redo it forever.
 */
export const CONVERSATION_EVENTS = {
  message: 'conversations:message',
  messageUpdated: 'conversations:messageUpdated',
  receipt: 'conversations:receipt',
} as const;
type ConversationEvent = (typeof CONVERSATION_EVENTS)[keyof typeof CONVERSATION_EVENTS];

export const groupTitle = z.string().trim().min(1).max(TITLE_MAX);
export const messageText = z.string().max(MESSAGE_TEXT_MAX);
export const mediaIds = z.array(mediaIdInput).max(MESSAGE_MEDIA_MAX);

const conversationState = z.object({});
const changed = z.object({ changed: z.boolean() });

const conversationMessages = {
  /** Creates the 1:1 conversation of userId and otherId (key = directConversationId). Idempotent. */
  openDirect: { input: z.object({ userId: userIdInput, otherId: userIdInput }), output: changed },
  createGroup: { input: z.object({ userId: userIdInput, title: groupTitle, memberIds: z.array(userIdInput).max(ADD_MAX) }), output: changed },
  addMembers: { input: z.object({ userId: userIdInput, memberIds: z.array(userIdInput).min(1).max(ADD_MAX) }), output: z.object({ added: z.array(z.string()) }) },
  removeMember: { input: z.object({ userId: userIdInput, memberId: userIdInput }), output: changed },
  leave: { input: z.object({ userId: userIdInput }), output: changed },
  rename: { input: z.object({ userId: userIdInput, title: groupTitle }), output: changed },
  setRole: { input: z.object({ userId: userIdInput, memberId: userIdInput, role: z.enum(['admin', 'member']) }), output: changed },
  send: {
    input: z.object({
      userId: userIdInput,
      clientMessageId: idempotencyKeyInput,
      text: messageText,
      mediaIds,
      replyTo: z.number().int().min(1).nullable(),
    }),
    output: z.object({ message: messageView, duplicate: z.boolean() }),
  },
  edit: { input: z.object({ userId: userIdInput, seq: z.number().int().min(1), text: messageText.min(1) }), output: z.object({ message: messageView }) },
  delete: { input: z.object({ userId: userIdInput, seq: z.number().int().min(1) }), output: z.object({ message: messageView }) },
  /** Moves the member's receipts forward (never back, never past the last message). */
  receipt: {
    input: z.object({ userId: userIdInput, readSeq: z.number().int().min(0).optional(), deliveredSeq: z.number().int().min(0).optional() }),
    output: z.object({ readSeq: z.number().int(), deliveredSeq: z.number().int() }),
  },
  /** Accepts (inbox) or declines a message request. */
  setFolder: { input: z.object({ userId: userIdInput, folder: z.enum(['inbox', 'declined']) }), output: changed },
};

type ConversationActorType = ActorType<typeof conversationState, typeof conversationMessages>;
type Ctx = ActorContext<z.output<typeof conversationState>>;

export const ConversationActor: ConversationActorType = defineActor({
  type: 'conversation',
  state: conversationState,
  initialState: () => ({}),
  persistence: { kind: 'durable' },
  onActivate: async (ctx) => {
    // Take the document first (its epoch becomes ours), then read it: an older
    // owner still in a turn (paused, then resumed after this node took over)
    // can no longer write it, so what this activation loads and keeps stays
    // true. Otherwise its late write of message N could land after our read,
    // and our next message, numbered from what we read, would replace it.
    await fencedUpdate(ctx.services.messaging.conversations, ctx.key, ctx.epoch, { $set: {} });
    const doc = await load(ctx);
    if (doc && doc.pending.length > 0) await flush(ctx, doc);
  },
  messages: conversationMessages,
  handlers: {
    openDirect: async (ctx, { userId, otherId }) => {
      if (userId === otherId) throw new FlockError('GRAPH_SELF', 'a conversation needs someone else');
      // Checked before the existing conversation is returned: a block refuses reopening one too.
      if (await ctx.services.social.blockedEitherWay(userId, otherId)) throw new FlockError('GRAPH_BLOCKED');
      if (await load(ctx)) return { changed: false };
      const now = new Date();
      const members = [newMember(userId, 'member', 'inbox', now, 1), newMember(otherId, 'member', await folderFor(ctx, otherId, userId), now, 0)];
      await create(ctx, { kind: 'direct', title: null, createdBy: userId, members, now });
      return { changed: true };
    },
    createGroup: async (ctx, { userId, title, memberIds }) => {
      if (await load(ctx)) throw new FlockError('REQUEST_INVALID', 'this conversation id is taken');
      const others = await addable(ctx, userId, [...new Set(memberIds)].filter((id) => id !== userId), 1);
      const now = new Date();
      const members = [newMember(userId, 'owner', 'inbox', now, 1)];
      for (const id of others) members.push(newMember(id, 'member', await folderFor(ctx, id, userId), now, 0));
      await create(ctx, { kind: 'group', title, createdBy: userId, members, now, system: { action: 'created', by: userId, userIds: others, title, role: null } });
      return { changed: true };
    },
    addMembers: async (ctx, { userId, memberIds }) => {
      const doc = await group(ctx, userId, 'admin');
      const fresh = [...new Set(memberIds)].filter((id) => !doc.memberIds.includes(id));
      if (fresh.length === 0) return { added: [] };
      const added = await addable(ctx, userId, fresh, doc.members.length);
      const seq = doc.lastSeq + 1;
      const now = new Date();
      const members = [...doc.members];
      for (const id of added) members.push(newMember(id, 'member', await folderFor(ctx, id, userId), now, seq));
      await commitSystem(ctx, doc, { action: 'added', by: userId, userIds: added, title: null, role: null }, { members });
      return { added };
    },
    removeMember: async (ctx, { userId, memberId }) => {
      if (memberId === userId) throw new FlockError('REQUEST_INVALID', 'use leave to leave a conversation');
      const doc = await group(ctx, userId, 'admin');
      const target = doc.members.find((m) => m.userId === memberId);
      if (!target) return { changed: false };
      const me = memberOf(doc, userId);
      if (target.role === 'owner' || (target.role === 'admin' && me.role !== 'owner')) throw new FlockError('CONVERSATION_FORBIDDEN', 'only the owner removes admins, and nobody removes the owner');
      await removeMembers(ctx, doc, userId, [memberId], 'removed');
      return { changed: true };
    },
    leave: async (ctx, { userId }) => {
      const doc = await load(ctx);
      if (!doc || !doc.memberIds.includes(userId)) return { changed: false };
      if (doc.kind === 'direct') throw new FlockError('CONVERSATION_FORBIDDEN', 'a 1:1 conversation cannot be left; decline or block instead');
      await removeMembers(ctx, doc, userId, [userId], 'left');
      return { changed: true };
    },
    rename: async (ctx, { userId, title }) => {
      const doc = await group(ctx, userId, 'admin');
      if (doc.title === title) return { changed: false };
      await commitSystem(ctx, doc, { action: 'renamed', by: userId, userIds: [], title, role: null }, { title });
      return { changed: true };
    },
    setRole: async (ctx, { userId, memberId, role }) => {
      const doc = await group(ctx, userId, 'owner');
      const target = doc.members.find((m) => m.userId === memberId);
      if (!target || target.role === 'owner') throw new FlockError('CONVERSATION_FORBIDDEN', 'the role of the owner or of a non-member cannot be set');
      if (target.role === role) return { changed: false };
      const members = doc.members.map((m) => (m.userId === memberId ? { ...m, role } : m));
      await commitSystem(ctx, doc, { action: 'role', by: userId, userIds: [memberId], title: null, role }, { members });
      return { changed: true };
    },
    send: async (ctx, input) => {
      const doc = await live(ctx, input.userId);
      const key = `${input.userId}|${input.clientMessageId}`;
      const known = doc.recent.find((r) => r.key === key);
      if (known) {
        const existing = await ctx.services.messaging.message(ctx.key, known.seq);
        if (existing) return { message: toMessageView(existing), duplicate: true };
      }
      if (doc.kind === 'direct') {
        const other = doc.members.find((m) => m.userId !== input.userId);
        if (other && (await ctx.services.social.blockedEitherWay(input.userId, other.userId))) throw new FlockError('GRAPH_BLOCKED');
      }
      if (input.text.trim() === '' && input.mediaIds.length === 0) throw new FlockError('REQUEST_INVALID', 'a message needs text or media');
      if (input.replyTo !== null && (input.replyTo > doc.lastSeq || input.replyTo < memberOf(doc, input.userId).joinedSeq)) {
        throw new FlockError('CONVERSATION_MESSAGE_NOT_FOUND', 'replyTo names no message you can see');
      }
      const seq = doc.lastSeq + 1;
      const message = newMessage(ctx, seq, {
        kind: 'text',
        senderId: input.userId,
        clientMessageId: input.clientMessageId,
        text: input.text,
        mediaIds: input.mediaIds,
        replyTo: input.replyTo,
        system: null,
      });
      const view = deliverable(toMessageView(message));
      await putMessage(ctx, message);
      const window = ctx.services.messaging.settings.resendWindow;
      const members = doc.members.map((m) =>
        m.userId === input.userId ? { ...m, readSeq: seq, deliveredSeq: seq, folder: 'inbox' as Folder } : m,
      );
      const recent = [...doc.recent, { key, seq }].slice(-window);
      const pending = [delivery(CONVERSATION_EVENTS.message, { conversationId: ctx.key, message: view }, recipients(members))];
      await write(ctx, doc, { members, lastSeq: seq, lastMessageAt: message.createdAt, recent, pending });
      ctx.afterCommit(async () => flush(ctx, (await load(ctx))!));
      return { message: view, duplicate: false };
    },
    edit: async (ctx, { userId, seq, text }) => {
      const doc = await live(ctx, userId);
      const message = await own(ctx, doc, userId, seq);
      if (message.deleted) throw new FlockError('CONVERSATION_MESSAGE_NOT_FOUND', 'the message was deleted');
      if (text.trim() === '' && message.mediaIds.length === 0) throw new FlockError('REQUEST_INVALID', 'a message needs text or media');
      const next: MessageDoc = { ...message, text, editedAt: new Date() };
      return { message: await update(ctx, doc, next) };
    },
    delete: async (ctx, { userId, seq }) => {
      const doc = await live(ctx, userId);
      const message = await own(ctx, doc, userId, seq);
      if (message.deleted) return { message: toMessageView(message) };
      const next: MessageDoc = { ...message, text: '', mediaIds: [], deleted: true, deletedAt: new Date() };
      return { message: await update(ctx, doc, next) };
    },
    receipt: async (ctx, { userId, readSeq, deliveredSeq }) => {
      const doc = await live(ctx, userId);
      const me = memberOf(doc, userId);
      const read = Math.min(doc.lastSeq, Math.max(me.readSeq, readSeq ?? 0));
      const delivered = Math.min(doc.lastSeq, Math.max(me.deliveredSeq, deliveredSeq ?? 0, read));
      if (read === me.readSeq && delivered === me.deliveredSeq) return { readSeq: read, deliveredSeq: delivered };
      const members = doc.members.map((m) => (m.userId === userId ? { ...m, readSeq: read, deliveredSeq: delivered } : m));
      const data = { conversationId: ctx.key, userId, readSeq: read, deliveredSeq: delivered };
      const pending = [delivery(CONVERSATION_EVENTS.receipt, data, recipients(members))];
      await write(ctx, doc, { members, pending });
      ctx.afterCommit(async () => flush(ctx, (await load(ctx))!));
      return { readSeq: read, deliveredSeq: delivered };
    },
    setFolder: async (ctx, { userId, folder }) => {
      const doc = await live(ctx, userId);
      const me = memberOf(doc, userId);
      if (me.folder === folder) return { changed: false };
      const members = doc.members.map((m) => (m.userId === userId ? { ...m, folder } : m));
      await write(ctx, doc, { members });
      return { changed: true };
    },
  },
});

// ---- the document ----

const cache = new WeakMap<Ctx, ConversationDoc | null>();

async function load(ctx: Ctx): Promise<ConversationDoc | null> {
  if (cache.has(ctx)) return cache.get(ctx)!;
  const doc = await ctx.services.messaging.conversation(ctx.key);
  cache.set(ctx, doc);
  return doc;
}

/** The conversation, for a current member; CONVERSATION_NOT_FOUND for anyone else. */
async function live(ctx: Ctx, userId: string): Promise<ConversationDoc> {
  const doc = await load(ctx);
  if (!doc || !doc.memberIds.includes(userId)) throw new FlockError('CONVERSATION_NOT_FOUND');
  return doc;
}

/** A group the user is a member of with at least `role` (owner > admin > member). */
async function group(ctx: Ctx, userId: string, role: MemberRole): Promise<ConversationDoc> {
  const doc = await live(ctx, userId);
  if (doc.kind !== 'group') throw new FlockError('CONVERSATION_FORBIDDEN', 'only groups have members to manage');
  const rank = { member: 0, admin: 1, owner: 2 };
  if (rank[memberOf(doc, userId).role] < rank[role]) throw new FlockError('CONVERSATION_FORBIDDEN', `this needs the ${role} role`);
  return doc;
}

function memberOf(doc: ConversationDoc, userId: string): ConversationMember {
  const member = doc.members.find((m) => m.userId === userId);
  if (!member) throw new FlockError('CONVERSATION_NOT_FOUND');
  return member;
}

function newMember(userId: string, role: MemberRole, folder: Folder, now: Date, joinedSeq: number): ConversationMember {
  // A new member has read everything before their join.
  const seen = Math.max(0, joinedSeq - 1);
  return { userId, role, folder, joinedAt: now, joinedSeq: Math.max(1, joinedSeq), readSeq: seen, deliveredSeq: seen };
}

/** Message requests: a conversation started or joined by someone the member does not follow. */
async function folderFor(ctx: Ctx, memberId: string, byId: string): Promise<Folder> {
  const follows = await ctx.services.social.edges.activeIds([edgeId('follow', byId, memberId)]);
  return follows.size > 0 ? 'inbox' : 'requests';
}

/** The users that can be added: no block with the adder, within the member limit (the channel checks that the accounts exist). */
async function addable(ctx: Ctx, byId: string, ids: string[], current: number): Promise<string[]> {
  const { maxMembers } = ctx.services.messaging.settings;
  if (current + ids.length > maxMembers) throw new FlockError('CONVERSATION_FULL', `a group has at most ${maxMembers} members`);
  const rel = await ctx.services.social.relations(byId, ids);
  if (rel.blocked.size > 0) throw new FlockError('GRAPH_BLOCKED', 'a block stands between you and one of these users');
  return ids;
}

async function create(
  ctx: Ctx,
  init: { kind: ConversationDoc['kind']; title: string | null; createdBy: string; members: ConversationMember[]; now: Date; system?: SystemInfo },
): Promise<void> {
  const lastSeq = init.system ? 1 : 0;
  // The creator has read what creating made.
  const members = init.members.map((m) => (m.userId === init.createdBy ? { ...m, readSeq: lastSeq, deliveredSeq: lastSeq } : m));
  const doc: Omit<ConversationDoc, 'epoch'> = {
    _id: ctx.key,
    kind: init.kind,
    title: init.title,
    createdBy: init.createdBy,
    createdAt: init.now,
    members,
    memberIds: members.map((m) => m.userId),
    former: [],
    lastSeq,
    lastMessageAt: init.now,
    recent: [],
    pending: [],
  };
  if (init.system) {
    const message = newMessage(ctx, 1, { kind: 'system', senderId: init.createdBy, clientMessageId: null, text: '', mediaIds: [], replyTo: null, system: init.system });
    await putMessage(ctx, message);
    doc.pending = [delivery(CONVERSATION_EVENTS.message, { conversationId: ctx.key, message: toMessageView(message) }, recipients(members))];
  }
  await fencedInsert(ctx.services.messaging.conversations, doc, ctx.epoch);
  cache.set(ctx, { ...doc, epoch: ctx.epoch });
  ctx.afterCommit(async () => flush(ctx, (await load(ctx))!));
}

/** Writes the changed fields of the document (fenced) and keeps the copy in memory. */
async function write(ctx: Ctx, doc: ConversationDoc, set: Partial<Omit<ConversationDoc, '_id' | 'epoch'>>): Promise<void> {
  const next = { ...doc, ...set };
  if (set.members) next.memberIds = set.members.map((m) => m.userId);
  const fields: Record<string, unknown> = { ...set };
  if (set.members) fields.memberIds = next.memberIds;
  cache.delete(ctx);
  if (!(await fencedUpdate(ctx.services.messaging.conversations, ctx.key, ctx.epoch, { $set: fields }))) throw new FlockError('CONVERSATION_NOT_FOUND');
  cache.set(ctx, { ...next, epoch: ctx.epoch });
}

/** A membership or title change: its system message, the document, the deliveries (also to those who leave). */
async function commitSystem(ctx: Ctx, doc: ConversationDoc, system: SystemInfo, set: Partial<ConversationDoc>, alsoTo: string[] = []): Promise<void> {
  const seq = doc.lastSeq + 1;
  const message = newMessage(ctx, seq, { kind: 'system', senderId: system.by, clientMessageId: null, text: '', mediaIds: [], replyTo: null, system });
  await putMessage(ctx, message);
  const members = (set.members ?? doc.members).map((m) => (m.userId === system.by ? { ...m, readSeq: seq, deliveredSeq: seq } : m));
  const view = toMessageView(message);
  const pending = [delivery(CONVERSATION_EVENTS.message, { conversationId: ctx.key, message: view }, [...recipients(members), ...alsoTo])];
  await write(ctx, doc, { ...set, members, lastSeq: seq, lastMessageAt: message.createdAt, pending });
  ctx.afterCommit(async () => flush(ctx, (await load(ctx))!));
}

async function removeMembers(ctx: Ctx, doc: ConversationDoc, byId: string, ids: string[], action: 'removed' | 'left'): Promise<void> {
  const seq = doc.lastSeq + 1;
  let members = doc.members.filter((m) => !ids.includes(m.userId));
  const gone = doc.members.filter((m) => ids.includes(m.userId));
  // An owner who leaves hands the group to the longest-serving admin, else member.
  if (gone.some((m) => m.role === 'owner') && members.length > 0 && !members.some((m) => m.role === 'owner')) {
    const heir = members.find((m) => m.role === 'admin') ?? members[0]!;
    members = members.map((m) => (m === heir ? { ...m, role: 'owner' as MemberRole } : m));
  }
  // The system message of their leaving is the last one they may read.
  const former = [...doc.former, ...gone.map((m) => ({ userId: m.userId, joinedSeq: m.joinedSeq, leftSeq: seq }))];
  await commitSystem(ctx, doc, { action, by: byId, userIds: ids, title: null, role: null }, { members, former }, ids);
}

// ---- messages ----

function newMessage(ctx: Ctx, seq: number, fields: Pick<MessageDoc, 'kind' | 'senderId' | 'clientMessageId' | 'text' | 'mediaIds' | 'replyTo' | 'system'>): MessageDoc {
  return {
    _id: messageId(ctx.key, seq),
    conversationId: ctx.key,
    seq,
    ...fields,
    createdAt: new Date(),
    editedAt: null,
    deleted: false,
    deletedAt: null,
    epoch: ctx.epoch,
  };
}

/** Stores a message under its sequence number, replacing what an older owner may have left there. */
async function putMessage(ctx: Ctx, message: MessageDoc): Promise<void> {
  const { _id, epoch: _epoch, ...fields } = message;
  await fencedUpsert(ctx.services.messaging.messages, _id, ctx.epoch, fields);
}

/** A message of the user's that the conversation shows (CONVERSATION_MESSAGE_NOT_FOUND otherwise). */
async function own(ctx: Ctx, doc: ConversationDoc, userId: string, seq: number): Promise<MessageDoc> {
  const message = seq <= doc.lastSeq ? await ctx.services.messaging.message(ctx.key, seq) : null;
  if (!message || message.seq < memberOf(doc, userId).joinedSeq) throw new FlockError('CONVERSATION_MESSAGE_NOT_FOUND');
  if (message.kind !== 'text' || message.senderId !== userId) throw new FlockError('CONVERSATION_FORBIDDEN', 'only the sender edits or deletes a message');
  return message;
}

/** Stores an edited or deleted message and delivers the new version. */
async function update(ctx: Ctx, doc: ConversationDoc, next: MessageDoc): Promise<MessageView> {
  const view = deliverable(toMessageView(next));
  await putMessage(ctx, next);
  await write(ctx, doc, { pending: [delivery(CONVERSATION_EVENTS.messageUpdated, { conversationId: ctx.key, message: view }, recipients(doc.members))] });
  ctx.afterCommit(async () => flush(ctx, (await load(ctx))!));
  return view;
}

// ---- deliveries ----

/**
 * A message whose event would not fit a personal stream (escaped characters
 * can make 4,000 characters of text over 16 KiB of JSON) is refused before it
 * is stored: its delivery would fail on every retry, and onActivate would
 * stall the conversation redoing it.
 */
function deliverable(view: MessageView): MessageView {
  const bytes = Buffer.byteLength(JSON.stringify({ conversationId: view.conversationId, message: view }));
  if (bytes > DEFAULT_MAX_DATA_BYTES) {
    throw new FlockError('REQUEST_TOO_LARGE', `the message makes an event of ${bytes} bytes of JSON; the limit is ${DEFAULT_MAX_DATA_BYTES}`, {
      details: { bytes, limit: DEFAULT_MAX_DATA_BYTES },
    });
  }
  return view;
}

/** Members who get live events: everyone but those who declined. */
function recipients(members: ConversationMember[]): string[] {
  return members.filter((m) => m.folder !== 'declined').map((m) => m.userId);
}

function delivery(type: ConversationEvent, data: unknown, to: string[]): PendingDelivery {
  return { type, data: JSON.stringify(data), to: [...new Set(to)].join(',') };
}

/** Appends the pending deliveries to the members' personal streams, then clears them. */
async function flush(ctx: Ctx, doc: ConversationDoc): Promise<void> {
  if (doc.pending.length === 0) return;
  for (const p of doc.pending) {
    const data: unknown = JSON.parse(p.data);
    const to = p.to === '' ? [] : p.to.split(',');
    await Promise.all(to.map((userId) => ctx.services.deliver(userId, p.type, data)));
  }
  await write(ctx, doc, { pending: [] });
}

export function conversationActor(): ConversationActorType {
  return ConversationActor;
}
