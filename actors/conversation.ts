// ConversationActor's implementation (interface: actors/contracts/conversation.ts).
// The conversation document is the actor's state (document persistence in
// `conversations`): claimed for the activation's epoch when it activates, so
// an older owner still in a turn (paused, then resumed after this node took
// over) can no longer write it once this activation has read it; otherwise
// its late write of message N could land after our read, and our next
// message, numbered from what we read, would replace it.
//
// Sending a message:
//   1. the message is upserted under `{conversationId}:{seq}` (fenced) during
//      the turn;
//   2. the turn's state (the new lastSeq, the sender's receipt, the resend
//      key) is saved with its effect: the delivery to every member's personal
//      stream;
//   3. the delivery runs after the save and before the reply, so the sender's
//      ack means every member's stream has the message.
// A crash after 1 leaves a message past lastSeq that no read shows and the
// next send overwrites (nothing was acknowledged, and the resend finds no
// key). A crash after 2 leaves the delivery to be redone at the next
// activation (at least once: clients drop a repeat by conversation and seq);
// the sender got no ack, and its resend finds the key (duplicate). Every
// delivery must be one the stream accepts (`deliverable`): one it refused
// would be redone, and refused, before every later turn.
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { fencedUpsert } from '../kernel/fenced.ts';
import { conversationFields, type ConversationFields, type ConversationMember, type Folder, type MemberRole } from '../models/conversation.ts';
import { edgeId } from '../models/edge.ts';
import { messageId, type MessageDoc, type SystemInfo } from '../models/message.ts';
import { toMessageView, type MessageView } from '../messaging/views.ts';
import { conversationMessageData, conversationReceiptData } from '../streams/catalogue.ts';
import { DEFAULT_MAX_DATA_BYTES } from '../streams/envelope.ts';
import { ConversationActor } from './contracts/conversation.ts';
import { implementActor, type ActorContext } from './define.ts';

/** Delivery of one personal-stream event to members (declined members excluded when the effect is made). */
const conversationEffect = z.object({
  kind: z.literal('deliver'),
  to: z.array(z.string()),
  event: z.discriminatedUnion('type', [
    z.object({ type: z.literal('conversations:message'), data: conversationMessageData }),
    z.object({ type: z.literal('conversations:messageUpdated'), data: conversationMessageData }),
    z.object({ type: z.literal('conversations:receipt'), data: conversationReceiptData }),
  ]),
});
type ConversationEffect = z.output<typeof conversationEffect>;
type DeliveredEvent = ConversationEffect['event'];
type State = ConversationFields | null;
type Ctx = ActorContext<State, ConversationEffect>;

export const conversationActor = implementActor(ConversationActor, {
  state: conversationFields.nullable(),
  initialState: (): State => null,
  persistence: { kind: 'document', collection: 'conversations' },
  effects: {
    schema: conversationEffect,
    run: async (ctx, { to, event }) => {
      await Promise.all(to.map((userId) => ctx.services.deliver(userId, event.type, event.data)));
    },
    upgrade: upgradeLegacy,
  },
  handlers: {
    openDirect: async (ctx, { userId, otherId }) => {
      if (userId === otherId) throw new FlockError('GRAPH_SELF', 'a conversation needs someone else');
      // Checked before the existing conversation is returned: a block refuses reopening one too.
      if (await ctx.services.social.blockedEitherWay(userId, otherId)) throw new FlockError('GRAPH_BLOCKED');
      if (ctx.state) return { changed: false };
      const now = new Date();
      const members = [newMember(userId, 'member', 'inbox', now, 1), newMember(otherId, 'member', await folderFor(ctx, otherId, userId), now, 0)];
      await create(ctx, { kind: 'direct', title: null, createdBy: userId, members, now });
      return { changed: true };
    },
    createGroup: async (ctx, { userId, title, memberIds }) => {
      if (ctx.state) throw new FlockError('REQUEST_INVALID', 'this conversation id is taken');
      const others = await addable(
        ctx,
        userId,
        [...new Set(memberIds)].filter((id) => id !== userId),
        1,
      );
      const now = new Date();
      const members = [newMember(userId, 'owner', 'inbox', now, 1)];
      for (const id of others) members.push(newMember(id, 'member', await folderFor(ctx, id, userId), now, 0));
      await create(ctx, {
        kind: 'group',
        title,
        createdBy: userId,
        members,
        now,
        system: { action: 'created', by: userId, userIds: others, title, role: null },
      });
      return { changed: true };
    },
    addMembers: async (ctx, { userId, memberIds }) => {
      const doc = group(ctx, userId, 'admin');
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
      const doc = group(ctx, userId, 'admin');
      const target = doc.members.find((m) => m.userId === memberId);
      if (!target) return { changed: false };
      const me = memberOf(doc, userId);
      if (target.role === 'owner' || (target.role === 'admin' && me.role !== 'owner'))
        throw new FlockError('CONVERSATION_FORBIDDEN', 'only the owner removes admins, and nobody removes the owner');
      await removeMembers(ctx, doc, userId, [memberId], 'removed');
      return { changed: true };
    },
    leave: async (ctx, { userId }) => {
      const doc = ctx.state;
      if (!doc || !doc.memberIds.includes(userId)) return { changed: false };
      if (doc.kind === 'direct') throw new FlockError('CONVERSATION_FORBIDDEN', 'a 1:1 conversation cannot be left; decline or block instead');
      await removeMembers(ctx, doc, userId, [userId], 'left');
      return { changed: true };
    },
    rename: async (ctx, { userId, title }) => {
      const doc = group(ctx, userId, 'admin');
      if (doc.title === title) return { changed: false };
      await commitSystem(ctx, doc, { action: 'renamed', by: userId, userIds: [], title, role: null }, { title });
      return { changed: true };
    },
    setRole: async (ctx, { userId, memberId, role }) => {
      const doc = group(ctx, userId, 'owner');
      const target = doc.members.find((m) => m.userId === memberId);
      if (!target || target.role === 'owner') throw new FlockError('CONVERSATION_FORBIDDEN', 'the role of the owner or of a non-member cannot be set');
      if (target.role === role) return { changed: false };
      const members = doc.members.map((m) => (m.userId === memberId ? { ...m, role } : m));
      await commitSystem(ctx, doc, { action: 'role', by: userId, userIds: [memberId], title: null, role }, { members });
      return { changed: true };
    },
    send: async (ctx, input) => {
      const doc = live(ctx, input.userId);
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
      const members = doc.members.map((m): ConversationMember => (m.userId === input.userId ? { ...m, readSeq: seq, deliveredSeq: seq, folder: 'inbox' } : m));
      const recent = [...doc.recent, { key, seq }].slice(-window);
      write(ctx, doc, { members, lastSeq: seq, lastMessageAt: message.createdAt, recent });
      deliver(ctx, recipients(members), { type: 'conversations:message', data: { conversationId: ctx.key, message: view } });
      return { message: view, duplicate: false };
    },
    edit: async (ctx, { userId, seq, text }) => {
      const doc = live(ctx, userId);
      const message = await own(ctx, doc, userId, seq);
      if (message.deleted) throw new FlockError('CONVERSATION_MESSAGE_NOT_FOUND', 'the message was deleted');
      if (text.trim() === '' && message.mediaIds.length === 0) throw new FlockError('REQUEST_INVALID', 'a message needs text or media');
      return { message: await update(ctx, doc, { ...message, text, editedAt: new Date() }) };
    },
    delete: async (ctx, { userId, seq }) => {
      const doc = live(ctx, userId);
      const message = await own(ctx, doc, userId, seq);
      if (message.deleted) return { message: toMessageView(message) };
      return { message: await update(ctx, doc, { ...message, text: '', mediaIds: [], deleted: true, deletedAt: new Date() }) };
    },
    receipt: async (ctx, { userId, readSeq, deliveredSeq }) => {
      const doc = live(ctx, userId);
      const me = memberOf(doc, userId);
      const read = Math.min(doc.lastSeq, Math.max(me.readSeq, readSeq ?? 0));
      const delivered = Math.min(doc.lastSeq, Math.max(me.deliveredSeq, deliveredSeq ?? 0, read));
      if (read === me.readSeq && delivered === me.deliveredSeq) return { readSeq: read, deliveredSeq: delivered };
      const members = doc.members.map((m) => (m.userId === userId ? { ...m, readSeq: read, deliveredSeq: delivered } : m));
      write(ctx, doc, { members });
      deliver(ctx, recipients(members), { type: 'conversations:receipt', data: { conversationId: ctx.key, userId, readSeq: read, deliveredSeq: delivered } });
      return { readSeq: read, deliveredSeq: delivered };
    },
    setFolder: async (ctx, { userId, folder }) => {
      const doc = live(ctx, userId);
      const me = memberOf(doc, userId);
      if (me.folder === folder) return { changed: false };
      write(ctx, doc, { members: doc.members.map((m) => (m.userId === userId ? { ...m, folder } : m)) });
      return { changed: true };
    },
  },
});

// ---- the document ----

/** The conversation, for a current member; CONVERSATION_NOT_FOUND for anyone else. */
function live(ctx: Ctx, userId: string): ConversationFields {
  const doc = ctx.state;
  if (!doc || !doc.memberIds.includes(userId)) throw new FlockError('CONVERSATION_NOT_FOUND');
  return doc;
}

/** A group the user is a member of with at least `role` (owner > admin > member). */
function group(ctx: Ctx, userId: string, role: MemberRole): ConversationFields {
  const doc = live(ctx, userId);
  if (doc.kind !== 'group') throw new FlockError('CONVERSATION_FORBIDDEN', 'only groups have members to manage');
  const rank = { member: 0, admin: 1, owner: 2 };
  if (rank[memberOf(doc, userId).role] < rank[role]) throw new FlockError('CONVERSATION_FORBIDDEN', `this needs the ${role} role`);
  return doc;
}

function memberOf(doc: ConversationFields, userId: string): ConversationMember {
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
  init: { kind: ConversationFields['kind']; title: string | null; createdBy: string; members: ConversationMember[]; now: Date; system?: SystemInfo },
): Promise<void> {
  const lastSeq = init.system ? 1 : 0;
  // The creator has read what creating made.
  const members = init.members.map((m) => (m.userId === init.createdBy ? { ...m, readSeq: lastSeq, deliveredSeq: lastSeq } : m));
  ctx.setState({
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
  });
  if (init.system) {
    const message = newMessage(ctx, 1, {
      kind: 'system',
      senderId: init.createdBy,
      clientMessageId: null,
      text: '',
      mediaIds: [],
      replyTo: null,
      system: init.system,
    });
    await putMessage(ctx, message);
    deliver(ctx, recipients(members), { type: 'conversations:message', data: { conversationId: ctx.key, message: toMessageView(message) } });
  }
}

/** The next state: the document with `set` applied (memberIds follows members). */
function write(ctx: Ctx, doc: ConversationFields, set: Partial<ConversationFields>): void {
  const next = { ...doc, ...set };
  if (set.members) next.memberIds = set.members.map((m) => m.userId);
  ctx.setState(next);
}

/** A membership or title change: its system message, the document, the deliveries (also to those who leave). */
async function commitSystem(ctx: Ctx, doc: ConversationFields, system: SystemInfo, set: Partial<ConversationFields>, alsoTo: string[] = []): Promise<void> {
  const seq = doc.lastSeq + 1;
  const message = newMessage(ctx, seq, { kind: 'system', senderId: system.by, clientMessageId: null, text: '', mediaIds: [], replyTo: null, system });
  await putMessage(ctx, message);
  const members = (set.members ?? doc.members).map((m) => (m.userId === system.by ? { ...m, readSeq: seq, deliveredSeq: seq } : m));
  write(ctx, doc, { ...set, members, lastSeq: seq, lastMessageAt: message.createdAt });
  deliver(ctx, [...recipients(members), ...alsoTo], { type: 'conversations:message', data: { conversationId: ctx.key, message: toMessageView(message) } });
}

async function removeMembers(ctx: Ctx, doc: ConversationFields, byId: string, ids: string[], action: 'removed' | 'left'): Promise<void> {
  const seq = doc.lastSeq + 1;
  let members = doc.members.filter((m) => !ids.includes(m.userId));
  const gone = doc.members.filter((m) => ids.includes(m.userId));
  // An owner who leaves hands the group to the longest-serving admin, else member.
  if (gone.some((m) => m.role === 'owner') && members.length > 0 && !members.some((m) => m.role === 'owner')) {
    const heir = members.find((m) => m.role === 'admin') ?? members[0]!;
    members = members.map((m): ConversationMember => (m === heir ? { ...m, role: 'owner' } : m));
  }
  // The system message of their leaving is the last one they may read.
  const former = [...doc.former, ...gone.map((m) => ({ userId: m.userId, joinedSeq: m.joinedSeq, leftSeq: seq }))];
  await commitSystem(ctx, doc, { action, by: byId, userIds: ids, title: null, role: null }, { members, former }, ids);
}

// ---- messages ----

function newMessage(
  ctx: Ctx,
  seq: number,
  fields: Pick<MessageDoc, 'kind' | 'senderId' | 'clientMessageId' | 'text' | 'mediaIds' | 'replyTo' | 'system'>,
): MessageDoc {
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
async function own(ctx: Ctx, doc: ConversationFields, userId: string, seq: number): Promise<MessageDoc> {
  const message = seq <= doc.lastSeq ? await ctx.services.messaging.message(ctx.key, seq) : null;
  if (!message || message.seq < memberOf(doc, userId).joinedSeq) throw new FlockError('CONVERSATION_MESSAGE_NOT_FOUND');
  if (message.kind !== 'text' || message.senderId !== userId) throw new FlockError('CONVERSATION_FORBIDDEN', 'only the sender edits or deletes a message');
  return message;
}

/** Stores an edited or deleted message and delivers the new version (the document does not change: the delivery is the turn's effect). */
async function update(ctx: Ctx, doc: ConversationFields, next: MessageDoc): Promise<MessageView> {
  const view = deliverable(toMessageView(next));
  await putMessage(ctx, next);
  deliver(ctx, recipients(doc.members), { type: 'conversations:messageUpdated', data: { conversationId: ctx.key, message: view } });
  return view;
}

// ---- deliveries ----

/**
 * A message whose event would not fit a personal stream (escaped characters
 * can make 4,000 characters of text over 16 KiB of JSON) is refused before it
 * is stored: its delivery would fail on every retry, and the actor would stall
 * redoing it.
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

function deliver(ctx: Ctx, to: string[], event: DeliveredEvent): void {
  ctx.effect({ kind: 'deliver', to: [...new Set(to)], event });
}

/** Deliveries stored before 0.2.0: `{ type, data (JSON), to (comma-joined) }` with the old type names. */
function upgradeLegacy(stored: unknown): unknown {
  const legacy = z.object({ type: z.string(), data: z.string(), to: z.string() }).safeParse(stored);
  if (!legacy.success) return undefined;
  const types: Record<string, DeliveredEvent['type']> = {
    'conversation.message': 'conversations:message',
    'conversation.message_updated': 'conversations:messageUpdated',
    'conversation.receipt': 'conversations:receipt',
  };
  const type = types[legacy.data.type];
  if (!type) return undefined;
  const data: unknown = JSON.parse(legacy.data.data);
  return { kind: 'deliver', to: legacy.data.to === '' ? [] : legacy.data.to.split(','), event: { type, data } };
}
