// ConversationActor's implementation (interface: actors/contracts/conversation.ts).
// The conversation document is the actor's state (document persistence in
// `conversations`): claimed for the activation's epoch when it activates, so
// an older owner still in a turn (paused, then resumed after this node took
// over) can no longer write it once this activation has read it; otherwise
// its late write of message N could land after our read, and our next
// message, numbered from what we read, would replace it.
//
// Sending a message:
//   1. the message is upserted under `{conversationId}:{seq}`, and its resend
//      key (sender and client message id) under its own id in
//      `message_keys`, both fenced, during the turn;
//   2. the turn's state (the new lastSeq, the sender's receipt) is saved with
//      its effect: the delivery to every member's personal stream;
//   3. the delivery runs after the save and before the reply, so the sender's
//      ack means every member's stream has the message.
// A crash after 1 leaves a message past lastSeq that no read shows and the
// next send overwrites (nothing was acknowledged, and a resend ignores a key
// past lastSeq or naming another message). A crash after 2 leaves the
// delivery to be redone at the next activation (at least once: clients drop
// a repeat by conversation and seq);
// the sender got no ack, and its resend finds the key (duplicate). Every
// delivery must be one the stream accepts (`deliverable`): one it refused
// would be redone, and refused, before every later turn.
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { fencedUpsert } from '../kernel/fenced.ts';
import {
  conversationFields,
  type ConversationFields,
  type ConversationInvite,
  type ConversationMember,
  type Folder,
  type MemberRole,
} from '../models/conversation.ts';
import { edgeId } from '../models/edge.ts';
import { messageId, type MessageDoc, type SystemInfo } from '../models/message.ts';
import { messageKeyId } from '../models/message-key.ts';
import { DEFAULT_GROUP_ADDS } from '../models/profile.ts';
import { inviteView, toInviteView, toMessageView, type MessageView } from '../messaging/views.ts';
import { conversationMessageData, conversationReceiptData } from '../streams/catalogue.ts';
import { DEFAULT_MAX_DATA_BYTES, streamEventBytes } from '../streams/envelope.ts';
import { ConversationActor } from './contracts/conversation.ts';
import { implementActor, type ActorContext } from './define.ts';

/** Delivery of one personal-stream event to members (declined members excluded when the effect is made), or of an invite to the invitee. */
const conversationEffect = z.object({
  kind: z.literal('deliver'),
  to: z.array(z.string()),
  event: z.discriminatedUnion('type', [
    z.object({ type: z.literal('conversations:message'), data: conversationMessageData }),
    z.object({ type: z.literal('conversations:messageUpdated'), data: conversationMessageData }),
    z.object({ type: z.literal('conversations:receipt'), data: conversationReceiptData }),
    z.object({ type: z.literal('conversations:invited'), data: inviteView }),
  ]),
});
type ConversationEffect = z.output<typeof conversationEffect>;
type DeliveredEvent = ConversationEffect['event'];
/** One event for some users: what a turn delivers, charged to the user whose request makes it before anything is stored. */
type Delivery = Omit<ConversationEffect, 'kind'>;
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
      await create(ctx, { kind: 'direct', title: null, createdBy: userId, members, invites: [], now });
      return { changed: true };
    },
    createGroup: async (ctx, { userId, title, memberIds }) => {
      if (ctx.state) throw new FlockError('REQUEST_INVALID', 'this conversation id is taken');
      const others = [...new Set(memberIds)].filter((id) => id !== userId);
      const { direct, invited } = await admissions(ctx, userId, others, 1);
      const now = new Date();
      const members = [newMember(userId, 'owner', 'inbox', now, 1), ...direct.map((a) => newMember(a.userId, 'member', a.folder, now, 0))];
      await create(ctx, {
        kind: 'group',
        title,
        createdBy: userId,
        members,
        invites: invited.map((id) => ({ userId: id, by: userId, at: now })),
        now,
        system: { action: 'created', by: userId, userIds: direct.map((a) => a.userId), title, role: null },
      });
      return { changed: true };
    },
    addMembers: async (ctx, { userId, memberIds }) => {
      const doc = group(ctx, userId, 'admin');
      const fresh = [...new Set(memberIds)].filter((id) => !doc.memberIds.includes(id));
      if (fresh.length === 0) return { added: [], invited: [] };
      // Someone already invited is counted once: added now if their setting allows it (the invite goes), else left invited.
      const pending = fresh.filter((id) => doc.invitedIds.includes(id));
      const { direct, invited } = await admissions(ctx, userId, fresh, doc.members.length + doc.invites.length - pending.length);
      const added = direct.map((a) => a.userId);
      const now = new Date();
      const newInvites = invited.filter((id) => !pending.includes(id)).map((id): ConversationInvite => ({ userId: id, by: userId, at: now }));
      const invites = [...doc.invites.filter((i) => !added.includes(i.userId)), ...newInvites];
      const inviteDeliveries = newInvites.map((i) => inviteDelivery(ctx.key, doc, i));
      if (added.length > 0) {
        const seq = doc.lastSeq + 1;
        const members = [...doc.members, ...direct.map((a) => newMember(a.userId, 'member', a.folder, now, seq))];
        await commitSystem(ctx, doc, { action: 'added', by: userId, userIds: added, title: null, role: null }, { members, invites }, [], inviteDeliveries);
      } else if (newInvites.length > 0) {
        await charge(ctx, userId, inviteDeliveries);
        write(ctx, doc, { invites });
        inviteDeliveries.forEach((d) => deliver(ctx, d));
      }
      return { added, invited: newInvites.map((i) => i.userId) };
    },
    removeMember: async (ctx, { userId, memberId }) => {
      if (memberId === userId) throw new FlockError('REQUEST_INVALID', 'use leave to leave a conversation');
      const doc = group(ctx, userId, 'admin');
      if (doc.invitedIds.includes(memberId)) {
        write(ctx, doc, { invites: doc.invites.filter((i) => i.userId !== memberId) });
        return { changed: true };
      }
      const target = doc.members.find((m) => m.userId === memberId);
      if (!target) return { changed: false };
      const me = memberOf(doc, userId);
      if (target.role === 'owner' || (target.role === 'admin' && me.role !== 'owner'))
        throw new FlockError('CONVERSATION_FORBIDDEN', 'only the owner removes admins, and nobody removes the owner');
      await removeMembers(ctx, doc, userId, [memberId], 'removed');
      return { changed: true };
    },
    respondInvite: async (ctx, { userId, accept }) => {
      const doc = ctx.state;
      const invite = doc?.invites.find((i) => i.userId === userId);
      if (!doc || !invite) {
        // A retried answer finds its work done; anyone else learns nothing about the conversation.
        if (doc && accept && doc.memberIds.includes(userId)) return { changed: false };
        if (!accept) return { changed: false };
        throw new FlockError('CONVERSATION_NOT_FOUND', 'no invite to this conversation');
      }
      const invites = doc.invites.filter((i) => i.userId !== userId);
      if (!accept) {
        write(ctx, doc, { invites });
        return { changed: true };
      }
      if (await ctx.services.social.blockedEitherWay(userId, invite.by)) throw new FlockError('GRAPH_BLOCKED');
      const { maxMembers } = ctx.services.messaging.settings;
      if (doc.members.length + invites.length + 1 > maxMembers) throw new FlockError('CONVERSATION_FULL', `a group has at most ${maxMembers} members`);
      const members = [...doc.members, newMember(userId, 'member', 'inbox', new Date(), doc.lastSeq + 1)];
      await commitSystem(ctx, doc, { action: 'joined', by: userId, userIds: [userId], title: null, role: null }, { members, invites });
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
      const known = await resent(ctx, doc, input.userId, input.clientMessageId);
      if (known) return { message: toMessageView(known), duplicate: true };
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
      const members = doc.members.map((m): ConversationMember => (m.userId === input.userId ? { ...m, readSeq: seq, deliveredSeq: seq, folder: 'inbox' } : m));
      const delivery: Delivery = { to: recipients(members), event: { type: 'conversations:message', data: { conversationId: ctx.key, message: view } } };
      await charge(ctx, input.userId, [delivery]);
      await Promise.all([putMessage(ctx, message), putResendKey(ctx, input.userId, input.clientMessageId, seq)]);
      write(ctx, doc, { members, lastSeq: seq, lastMessageAt: message.createdAt });
      deliver(ctx, delivery);
      return { message: view, duplicate: false };
    },
    edit: async (ctx, { userId, seq, text }) => {
      const doc = live(ctx, userId);
      const message = await own(ctx, doc, userId, seq);
      if (message.deleted) throw new FlockError('CONVERSATION_MESSAGE_NOT_FOUND', 'the message was deleted');
      if (text.trim() === '' && message.mediaIds.length === 0) throw new FlockError('REQUEST_INVALID', 'a message needs text or media');
      return { message: await update(ctx, doc, userId, { ...message, text, editedAt: new Date() }) };
    },
    delete: async (ctx, { userId, seq }) => {
      const doc = live(ctx, userId);
      const message = await own(ctx, doc, userId, seq);
      if (message.deleted) return { message: toMessageView(message) };
      return { message: await update(ctx, doc, userId, { ...message, text: '', mediaIds: [], deleted: true, deletedAt: new Date() }) };
    },
    receipt: async (ctx, { userId, readSeq, deliveredSeq }) => {
      const doc = live(ctx, userId);
      const me = memberOf(doc, userId);
      const read = Math.min(doc.lastSeq, Math.max(me.readSeq, readSeq ?? 0));
      const delivered = Math.min(doc.lastSeq, Math.max(me.deliveredSeq, deliveredSeq ?? 0, read));
      if (read === me.readSeq && delivered === me.deliveredSeq) return { readSeq: read, deliveredSeq: delivered };
      const members = doc.members.map((m) => (m.userId === userId ? { ...m, readSeq: read, deliveredSeq: delivered } : m));
      const delivery: Delivery = {
        to: recipients(members),
        event: { type: 'conversations:receipt', data: { conversationId: ctx.key, userId, readSeq: read, deliveredSeq: delivered } },
      };
      await charge(ctx, userId, [delivery]);
      write(ctx, doc, { members });
      deliver(ctx, delivery);
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

/**
 * Who of `ids` the adder may add directly, and who gets an invite instead.
 * Each user's groupAdds setting decides (read from their profile; default
 * 'following'): everyone, following (only people the user follows) or
 * nobody. A block either way refuses the whole request (GRAPH_BLOCKED), so a
 * blocked user can neither add nor invite the blocker; `current` (members and
 * invites) plus `ids` stays within the member limit. Someone added who does
 * not follow the adder (possible with 'everyone') lands in requests, as
 * before. The channel checks that the accounts exist.
 */
async function admissions(
  ctx: Ctx,
  byId: string,
  ids: string[],
  current: number,
): Promise<{ direct: { userId: string; folder: Folder }[]; invited: string[] }> {
  const { maxMembers } = ctx.services.messaging.settings;
  if (current + ids.length > maxMembers) throw new FlockError('CONVERSATION_FULL', `a group has at most ${maxMembers} members`);
  const social = ctx.services.social;
  const [rel, follows] = await Promise.all([social.relations(byId, ids), social.edges.activeIds(ids.map((id) => edgeId('follow', byId, id)))]);
  if (rel.blocked.size > 0) throw new FlockError('GRAPH_BLOCKED', 'a block stands between you and one of these users');
  const direct: { userId: string; folder: Folder }[] = [];
  const invited: string[] = [];
  for (const id of ids) {
    const followsAdder = follows.has(edgeId('follow', byId, id));
    const setting = rel.profiles.get(id)?.groupAdds ?? DEFAULT_GROUP_ADDS;
    if (setting === 'everyone' || (setting === 'following' && followsAdder)) direct.push({ userId: id, folder: followsAdder ? 'inbox' : 'requests' });
    else invited.push(id);
  }
  return { direct, invited };
}

async function create(
  ctx: Ctx,
  init: {
    kind: ConversationFields['kind'];
    title: string | null;
    createdBy: string;
    members: ConversationMember[];
    invites: ConversationInvite[];
    now: Date;
    system?: SystemInfo;
  },
): Promise<void> {
  const lastSeq = init.system ? 1 : 0;
  // The creator has read what creating made.
  const members = init.members.map((m) => (m.userId === init.createdBy ? { ...m, readSeq: lastSeq, deliveredSeq: lastSeq } : m));
  const state: ConversationFields = {
    kind: init.kind,
    title: init.title,
    createdBy: init.createdBy,
    createdAt: init.now,
    members,
    memberIds: members.map((m) => m.userId),
    former: [],
    lastSeq,
    lastMessageAt: init.now,
    invites: init.invites,
    invitedIds: init.invites.map((i) => i.userId),
    recent: [],
  };
  const deliveries = init.invites.map((i) => inviteDelivery(ctx.key, state, i));
  let message: MessageDoc | undefined;
  if (init.system) {
    message = newMessage(ctx, 1, {
      kind: 'system',
      senderId: init.createdBy,
      clientMessageId: null,
      text: '',
      mediaIds: [],
      replyTo: null,
      system: init.system,
    });
    deliveries.unshift({
      to: recipients(members),
      event: { type: 'conversations:message', data: { conversationId: ctx.key, message: toMessageView(message) } },
    });
  }
  await charge(ctx, init.createdBy, deliveries);
  if (message) await putMessage(ctx, message);
  ctx.setState(state);
  deliveries.forEach((d) => deliver(ctx, d));
}

/** The next state: the document with `set` applied (memberIds follows members, invitedIds invites). */
function write(ctx: Ctx, doc: ConversationFields, set: Partial<ConversationFields>): void {
  const next = { ...doc, ...set };
  if (set.members) next.memberIds = set.members.map((m) => m.userId);
  if (set.invites) next.invitedIds = set.invites.map((i) => i.userId);
  ctx.setState(next);
}

/**
 * A membership or title change: its system message, the document, the
 * deliveries (also to those who leave, and any invites the change sends),
 * charged to the member who made the change before anything is stored.
 */
async function commitSystem(
  ctx: Ctx,
  doc: ConversationFields,
  system: SystemInfo,
  set: Partial<ConversationFields>,
  alsoTo: string[] = [],
  more: Delivery[] = [],
): Promise<void> {
  const seq = doc.lastSeq + 1;
  const message = newMessage(ctx, seq, { kind: 'system', senderId: system.by, clientMessageId: null, text: '', mediaIds: [], replyTo: null, system });
  const members = (set.members ?? doc.members).map((m) => (m.userId === system.by ? { ...m, readSeq: seq, deliveredSeq: seq } : m));
  const deliveries: Delivery[] = [
    { to: [...recipients(members), ...alsoTo], event: { type: 'conversations:message', data: { conversationId: ctx.key, message: toMessageView(message) } } },
    ...more,
  ];
  await charge(ctx, system.by, deliveries);
  await putMessage(ctx, message);
  write(ctx, doc, { ...set, members, lastSeq: seq, lastMessageAt: message.createdAt });
  deliveries.forEach((d) => deliver(ctx, d));
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

/**
 * The stored message a resend names, or null for a new message. The key
 * document is durable for the resend window; conversations stored before
 * keys had documents remember their last 500 keys in `recent` (still read,
 * no longer written). A key past lastSeq, or one whose number now holds
 * another message, was left by a send that crashed before it was recorded
 * (nothing was acknowledged): the message is new.
 */
async function resent(ctx: Ctx, doc: ConversationFields, userId: string, clientMessageId: string): Promise<MessageDoc | null> {
  const messaging = ctx.services.messaging;
  const seq = doc.recent.find((r) => r.key === `${userId}|${clientMessageId}`)?.seq ?? (await messaging.resendKey(ctx.key, userId, clientMessageId));
  if (seq === null || seq > doc.lastSeq) return null;
  const message = await messaging.message(ctx.key, seq);
  return message?.kind === 'text' && message.senderId === userId && message.clientMessageId === clientMessageId ? message : null;
}

/** Records the resend key of a message (fenced like the message), good for the resend window. */
async function putResendKey(ctx: Ctx, userId: string, clientMessageId: string, seq: number): Promise<void> {
  const messaging = ctx.services.messaging;
  const expireAt = new Date(Date.now() + messaging.settings.resendWindowMs);
  await fencedUpsert(messaging.keys, messageKeyId(ctx.key, userId, clientMessageId), ctx.epoch, { seq, expireAt });
}

/** A message of the user's that the conversation shows (CONVERSATION_MESSAGE_NOT_FOUND otherwise). */
async function own(ctx: Ctx, doc: ConversationFields, userId: string, seq: number): Promise<MessageDoc> {
  const message = seq <= doc.lastSeq ? await ctx.services.messaging.message(ctx.key, seq) : null;
  if (!message || message.seq < memberOf(doc, userId).joinedSeq) throw new FlockError('CONVERSATION_MESSAGE_NOT_FOUND');
  if (message.kind !== 'text' || message.senderId !== userId) throw new FlockError('CONVERSATION_FORBIDDEN', 'only the sender edits or deletes a message');
  return message;
}

/** Stores an edited or deleted message and delivers the new version (the document does not change: the delivery is the turn's effect). */
async function update(ctx: Ctx, doc: ConversationFields, userId: string, next: MessageDoc): Promise<MessageView> {
  const view = deliverable(toMessageView(next));
  const delivery: Delivery = { to: recipients(doc.members), event: { type: 'conversations:messageUpdated', data: { conversationId: ctx.key, message: view } } };
  await charge(ctx, userId, [delivery]);
  await putMessage(ctx, next);
  deliver(ctx, delivery);
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

/** The invite event for its invitee. */
function inviteDelivery(conversationId: string, doc: Pick<ConversationFields, 'title' | 'members'>, invite: ConversationInvite): Delivery {
  return { to: [invite.userId], event: { type: 'conversations:invited', data: toInviteView({ _id: conversationId, ...doc }, invite) } };
}

/**
 * Charges what a turn is about to deliver to the user whose request makes it
 * (streams/sender-quota.ts): over their quota the turn fails with
 * STREAM_QUOTA_EXCEEDED before it stores anything.
 */
async function charge(ctx: Ctx, by: string, deliveries: Delivery[]): Promise<void> {
  const charges = deliveries.map(({ to, event }) => ({
    to,
    bytes: streamEventBytes(Buffer.byteLength(event.type), Buffer.byteLength(JSON.stringify(event.data))),
  }));
  await ctx.services.streamQuota.charge(by, charges);
}

function deliver(ctx: Ctx, { to, event }: Delivery): void {
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
