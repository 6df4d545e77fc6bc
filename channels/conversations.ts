// conversations: 1:1 and group chat. Every change goes through the
// conversation's ConversationActor (actors/conversation.ts), which orders
// messages and keeps receipts and unread counts exact; reads (a conversation,
// the list, history, unread totals) come straight from MongoDB with the same
// membership rules. New messages, edits, deletions, receipts and membership
// changes reach members as `stream:event`s of their personal stream (types
// conversations:message, conversations:messageUpdated, conversations:receipt;
// invites reach the invitee as conversations:invited); typing indicators are
// ephemeral `conversations:typist` events. Who may add a user to a group
// directly is the user's setting (groupAdds, kept by their UserActor).
import { z } from 'zod';
import { ConversationActor, groupTitle, mediaIds, messageText, ADD_MAX } from '../actors/contracts/conversation.ts';
import { settingsUpdate, UserActor, userSettings } from '../actors/contracts/user.ts';
import { FlockError } from '../kernel/errors.ts';
import { directConversationId, newGroupId } from '../messaging/ids.ts';
import { conversationView, inviteView, messageView, toConversationView, toInviteView, toMessageView } from '../messaging/views.ts';
import { cursorInput, decodeCursor, encodeCursor, pageLimit, pageOf } from '../kernel/cursor.ts';
import { defineChannel, defineEvent, type AuthedEventContext, writes, reads, SIGNED_IN } from './define.ts';
import { userIdInput } from '../kernel/ids.ts';
import { conversationIdInput } from '../kernel/ids.ts';
import { idempotencyKeyInput } from '../kernel/ids.ts';

const write = writes(1024);
const read = reads(512);
const changed = z.object({ changed: z.boolean() });
const inConversation = z.object({ conversationId: conversationIdInput }).strict();
const receipts = z.object({ readSeq: z.number().int(), deliveredSeq: z.number().int() });
const HISTORY_MAX = 50;
/** Room for ADD_MAX user ids (up to 66 characters each) and a title: the 1 KiB of other writes holds about 30. */
const MEMBER_LIST_BYTES = 8 * 1024;

const actor = (ctx: AuthedEventContext, conversationId: string) => ctx.services.actors.ref(ConversationActor, conversationId);

/** The conversation as the signed-in member sees it. */
async function viewOf(ctx: AuthedEventContext, conversationId: string) {
  const { doc, member } = await ctx.services.messaging.reader(conversationId, ctx.session.userId);
  if (!member) throw new FlockError('CONVERSATION_NOT_FOUND');
  return toConversationView(doc, member);
}

/** USER_NOT_FOUND unless every id names an account. */
async function requireUsers(ctx: AuthedEventContext, ids: string[]): Promise<void> {
  const found = await Promise.all([...new Set(ids)].map((id) => ctx.services.accounts.findById(id)));
  if (found.some((a) => !a)) throw new FlockError('USER_NOT_FOUND', 'every member must be an existing user');
}

/** The signed-in user's profile, made if it does not exist yet (accounts made by OAuth get it lazily): it holds their settings. */
async function ensureProfile(ctx: AuthedEventContext): Promise<void> {
  const me = ctx.session.userId;
  if (await ctx.services.social.profiles.exists({ _id: me })) return;
  const account = await ctx.services.accounts.findById(me);
  if (!account) throw new FlockError('USER_NOT_FOUND');
  await ctx.services.actors.ref(UserActor, me).ask('create', { username: account.displayUsername, displayName: account.displayUsername });
}

/** A read or delivery receipt of the signed-in member, up to a sequence number. */
function receipt(field: 'readSeq' | 'deliveredSeq', summary: string) {
  return defineEvent({
    ...write,
    rateLimit: { capacity: 30, perSecond: 10 },
    summary,
    request: z.object({ conversationId: conversationIdInput, seq: z.number().int().min(0) }).strict(),
    ack: receipts,
    handler: async (ctx, { conversationId, seq }) => actor(ctx, conversationId).ask('receipt', { userId: ctx.session.userId, [field]: seq }),
  });
}

export const conversationsChannel = defineChannel({
  name: 'conversations',
  description: '1:1 and group conversations: messages with receipts, typing indicators, history, unread counts and message requests.',
  events: {
    openDirect: defineEvent({
      ...write,
      summary:
        'Opens the 1:1 conversation with a user (the same two people always get the same one). Refused across a block. ' +
        'If they do not follow you it lands in their requests folder until they accept.',
      request: z.object({ userId: userIdInput }).strict(),
      ack: conversationView,
      handler: async (ctx, { userId }) => {
        await requireUsers(ctx, [userId]);
        const id = directConversationId(ctx.session.userId, userId);
        await actor(ctx, id).ask('openDirect', { userId: ctx.session.userId, otherId: userId });
        return viewOf(ctx, id);
      },
    }),
    createGroup: defineEvent({
      ...write,
      maxBytes: MEMBER_LIST_BYTES,
      summary:
        `Creates a group with a title and up to ${ADD_MAX} other members at once (more with addMembers, up to CONVERSATION_MAX_MEMBERS with pending invites). ` +
        "You are its owner. Those whose groupAdds setting does not let you add them are invited instead (the ack's invited list).",
      request: z.object({ title: groupTitle, memberIds: z.array(userIdInput).max(ADD_MAX).default([]) }).strict(),
      ack: conversationView,
      handler: async (ctx, { title, memberIds }) => {
        await requireUsers(ctx, memberIds);
        const id = newGroupId();
        await actor(ctx, id).ask('createGroup', { userId: ctx.session.userId, title, memberIds });
        return viewOf(ctx, id);
      },
    }),
    get: defineEvent({
      ...read,
      summary: 'One of your conversations, with its members, their receipts and your unread count.',
      request: inConversation,
      ack: conversationView,
      handler: async (ctx, { conversationId }) => viewOf(ctx, conversationId),
    }),
    list: defineEvent({
      ...read,
      summary: 'Your conversations in a folder (inbox, or requests: message requests to accept or decline), latest activity first, with the last message.',
      request: z.object({ folder: z.enum(['inbox', 'requests']).default('inbox'), cursor: cursorInput.optional(), limit: pageLimit }).strict(),
      ack: pageOf(conversationView.extend({ lastMessage: messageView.nullable() })),
      handler: async (ctx, { folder, cursor, limit }) => {
        const me = ctx.session.userId;
        const docs = await ctx.services.messaging.list(me, folder, limit, decodeCursor(cursor));
        const lasts = await Promise.all(docs.map((d) => (d.lastSeq > 0 ? ctx.services.messaging.message(d._id, d.lastSeq) : Promise.resolve(null))));
        const items = docs.map((doc, i) => {
          const member = doc.members.find((m) => m.userId === me)!;
          const last = lasts[i];
          return { ...toConversationView(doc, member), lastMessage: last && last.seq >= member.joinedSeq ? toMessageView(last) : null };
        });
        const tail = docs.at(-1);
        return { items, nextCursor: tail && docs.length === limit ? encodeCursor({ t: new Date(tail.lastMessageAt).getTime(), id: tail._id }) : null };
      },
    }),
    unread: defineEvent({
      ...read,
      summary:
        'Unread messages over your inbox conversations, how many conversations have some, and how many message requests are open, ' +
        'counted over your CONVERSATION_UNREAD_SCAN (default 100) most recently active conversations; capped: true when you have more ' +
        '(their counts are left out: page through conversations:list for them).',
      request: z.object({}).strict(),
      ack: z.object({
        unread: z.number().int(),
        conversations: z.number().int(),
        requests: z.number().int(),
        capped: z.boolean().describe('You have more conversations than were counted; the totals cover the most recently active ones'),
      }),
      handler: async (ctx) => ctx.services.messaging.unreadTotals(ctx.session.userId),
    }),
    send: defineEvent({
      ...write,
      rateLimit: { capacity: 60, perSecond: 10 },
      maxBytes: 20 * 1024,
      summary:
        'Sends a message. The ack comes after it is stored. Resending with the same clientMessageId (after a lost ack) returns the same message ' +
        '(duplicate: true) instead of a second one. Sending also accepts a message request.',
      request: z
        .object({
          conversationId: conversationIdInput,
          clientMessageId: idempotencyKeyInput.describe('Chosen by the client, unique per message: the resend key'),
          text: messageText.default(''),
          mediaIds: mediaIds.default([]).describe('Media ids from the upload API'),
          replyTo: z.number().int().min(1).optional().describe('Sequence number of the message this one answers'),
        })
        .strict(),
      ack: z.object({ message: messageView, duplicate: z.boolean() }),
      handler: async (ctx, req) => {
        await ctx.services.media.reads.assertUsable(ctx.session.userId, req.mediaIds);
        return actor(ctx, req.conversationId).ask('send', {
          userId: ctx.session.userId,
          clientMessageId: req.clientMessageId,
          text: req.text,
          mediaIds: req.mediaIds,
          replyTo: req.replyTo ?? null,
        });
      },
    }),
    edit: defineEvent({
      ...write,
      maxBytes: 20 * 1024,
      summary: 'Changes the text of one of your messages; members get the new version.',
      request: z.object({ conversationId: conversationIdInput, seq: z.number().int().min(1), text: messageText.min(1) }).strict(),
      ack: z.object({ message: messageView }),
      handler: async (ctx, req) => actor(ctx, req.conversationId).ask('edit', { userId: ctx.session.userId, seq: req.seq, text: req.text }),
    }),
    delete: defineEvent({
      ...write,
      summary: 'Deletes one of your messages: members see a tombstone in its place.',
      request: z.object({ conversationId: conversationIdInput, seq: z.number().int().min(1) }).strict(),
      ack: z.object({ message: messageView }),
      handler: async (ctx, req) => actor(ctx, req.conversationId).ask('delete', { userId: ctx.session.userId, seq: req.seq }),
    }),
    history: defineEvent({
      ...read,
      summary:
        `Messages in sequence order, at most ${HISTORY_MAX}: the latest ones, or those before or after a sequence number. ` +
        'Members read from when they joined; former members up to when they left.',
      request: z
        .object({
          conversationId: conversationIdInput,
          before: z.number().int().min(1).optional(),
          after: z.number().int().min(0).optional(),
          limit: z.number().int().min(1).max(HISTORY_MAX).default(HISTORY_MAX),
        })
        .strict()
        .refine((r) => r.before === undefined || r.after === undefined, 'before or after, not both'),
      ack: z.object({ messages: z.array(messageView), hasMore: z.boolean().describe('More messages lie beyond this page in its direction') }),
      handler: async (ctx, { conversationId, before, after, limit }) => {
        const reader = await ctx.services.messaging.reader(conversationId, ctx.session.userId);
        let from: number;
        let to: number;
        if (after !== undefined) {
          from = Math.max(reader.from, after + 1);
          to = Math.min(reader.to, from + limit - 1);
        } else {
          to = Math.min(reader.to, (before ?? reader.to + 1) - 1);
          from = Math.max(reader.from, to - limit + 1);
        }
        const messages = await ctx.services.messaging.range(conversationId, from, to);
        const hasMore = after !== undefined ? to < reader.to : from > reader.from;
        return { messages: messages.map(toMessageView), hasMore };
      },
    }),
    markRead: receipt('readSeq', 'Read receipt: you have read up to this sequence number (never moves back). Members get it as conversations:receipt.'),
    markDelivered: receipt('deliveredSeq', 'Delivery receipt: your device has received up to this sequence number (never moves back).'),
    typing: defineEvent({
      access: SIGNED_IN,
      rateLimit: { capacity: 3, perSecond: 1 },
      maxBytes: 256,
      summary:
        'Tells the other members you are typing (ephemeral: the others get conversations:typist, never stored). Send it again every few seconds while typing.',
      request: inConversation,
      ack: z.object({}),
      handler: async (ctx, { conversationId }) => {
        const me = ctx.session.userId;
        const { doc, member } = await ctx.services.messaging.reader(conversationId, me);
        if (!member) throw new FlockError('CONVERSATION_NOT_FOUND');
        const other = doc.kind === 'direct' ? doc.members.find((m) => m.userId !== me) : undefined;
        if (other && (await ctx.services.social.blockedEitherWay(me, other.userId))) throw new FlockError('GRAPH_BLOCKED');
        const to = doc.members.filter((m) => m.userId !== me && m.folder !== 'declined').map((m) => m.userId);
        ctx.services.toUsers(to, 'conversations:typist', { conversationId, userId: me, at: Date.now() });
        return {};
      },
    }),
    addMembers: defineEvent({
      ...write,
      maxBytes: MEMBER_LIST_BYTES,
      summary:
        'Adds members to a group (owner and admins). Each user decides who may add them directly (conversations:updateSettings, groupAdds: ' +
        'everyone, following (the default: people they follow) or nobody); the others get an invite (conversations:invited) and join only when ' +
        'they accept it. Refused across a block with any of them (GRAPH_BLOCKED). Added members who do not follow you get it as a message request.',
      request: z.object({ conversationId: conversationIdInput, userIds: z.array(userIdInput).min(1).max(ADD_MAX) }).strict(),
      ack: z.object({
        added: z.array(z.string()).describe('Now members'),
        invited: z.array(z.string()).describe('Sent an invite instead (already invited users are not invited again)'),
      }),
      handler: async (ctx, { conversationId, userIds }) => {
        await requireUsers(ctx, userIds);
        return actor(ctx, conversationId).ask('addMembers', { userId: ctx.session.userId, memberIds: userIds });
      },
    }),
    removeMember: defineEvent({
      ...write,
      summary:
        'Removes a member from a group (owner and admins; only the owner removes admins). They keep the history up to their removal. ' +
        'For a user who is invited, not a member, it withdraws the invite.',
      request: z.object({ conversationId: conversationIdInput, userId: userIdInput }).strict(),
      ack: changed,
      handler: async (ctx, { conversationId, userId }) => actor(ctx, conversationId).ask('removeMember', { userId: ctx.session.userId, memberId: userId }),
    }),
    leave: defineEvent({
      ...write,
      summary: 'Leaves a group. An owner who leaves hands the group to an admin, else to the longest-standing member.',
      request: inConversation,
      ack: changed,
      handler: async (ctx, { conversationId }) => actor(ctx, conversationId).ask('leave', { userId: ctx.session.userId }),
    }),
    rename: defineEvent({
      ...write,
      summary: 'Renames a group (owner and admins).',
      request: z.object({ conversationId: conversationIdInput, title: groupTitle }).strict(),
      ack: changed,
      handler: async (ctx, { conversationId, title }) => actor(ctx, conversationId).ask('rename', { userId: ctx.session.userId, title }),
    }),
    setRole: defineEvent({
      ...write,
      summary: 'Makes a member an admin or a plain member again (owner only).',
      request: z.object({ conversationId: conversationIdInput, userId: userIdInput, role: z.enum(['admin', 'member']) }).strict(),
      ack: changed,
      handler: async (ctx, { conversationId, userId, role }) =>
        actor(ctx, conversationId).ask('setRole', { userId: ctx.session.userId, memberId: userId, role }),
    }),
    accept: defineEvent({
      ...write,
      summary: 'Accepts a message request: the conversation moves to your inbox.',
      request: inConversation,
      ack: changed,
      handler: async (ctx, { conversationId }) => actor(ctx, conversationId).ask('setFolder', { userId: ctx.session.userId, folder: 'inbox' }),
    }),
    invites: defineEvent({
      ...read,
      summary:
        'Groups you are invited to and have not answered, latest activity first (invites from users blocked either way are left out, so a page ' +
        'can come back short with a nextCursor). Until you accept one you are not a member: you read and get nothing of the group.',
      request: z.object({ cursor: cursorInput.optional(), limit: pageLimit }).strict(),
      ack: pageOf(inviteView),
      handler: async (ctx, { cursor, limit }) => {
        const me = ctx.session.userId;
        const docs = await ctx.services.messaging.invites(me, limit, decodeCursor(cursor));
        const pending = docs.flatMap((doc) => (doc.invites ?? []).filter((i) => i.userId === me).map((invite) => ({ doc, invite })));
        const rel = await ctx.services.social.relations(
          me,
          pending.map((p) => p.invite.by),
        );
        const items = pending.filter((p) => !rel.blocked.has(p.invite.by)).map((p) => toInviteView(p.doc, p.invite));
        const tail = docs.at(-1);
        return { items, nextCursor: tail && docs.length === limit ? encodeCursor({ t: new Date(tail.lastMessageAt).getTime(), id: tail._id }) : null };
      },
    }),
    acceptInvite: defineEvent({
      ...write,
      summary:
        'Accepts an invite to a group: you join it (the others get a "joined" system message) and read from there on. Refused across a block ' +
        'with the user who invited you (GRAPH_BLOCKED); CONVERSATION_NOT_FOUND without an invite.',
      request: inConversation,
      ack: conversationView,
      handler: async (ctx, { conversationId }) => {
        await actor(ctx, conversationId).ask('respondInvite', { userId: ctx.session.userId, accept: true });
        return viewOf(ctx, conversationId);
      },
    }),
    declineInvite: defineEvent({
      ...write,
      summary: 'Declines an invite to a group: it goes, and you stay out. The others see you are no longer invited. changed: false without an invite.',
      request: inConversation,
      ack: changed,
      handler: async (ctx, { conversationId }) => actor(ctx, conversationId).ask('respondInvite', { userId: ctx.session.userId, accept: false }),
    }),
    settings: defineEvent({
      ...read,
      summary: 'Your messaging settings: groupAdds, who may add you to groups directly.',
      request: z.object({}).strict(),
      ack: userSettings,
      handler: async (ctx) => ctx.services.actors.ref(UserActor, ctx.session.userId).ask('getSettings', {}),
    }),
    updateSettings: defineEvent({
      ...write,
      rateLimit: { capacity: 10, perSecond: 1 },
      summary:
        'Changes your messaging settings. groupAdds: everyone (anyone may add you to a group), following (only people you follow; the default) ' +
        'or nobody; anyone else can only invite you.',
      request: settingsUpdate,
      ack: userSettings,
      handler: async (ctx, update) => {
        await ensureProfile(ctx);
        return ctx.services.actors.ref(UserActor, ctx.session.userId).ask('updateSettings', update);
      },
    }),
    decline: defineEvent({
      ...write,
      summary: 'Declines a message request (or hides a conversation): it leaves your lists and you get nothing of it live. The others are not told.',
      request: inConversation,
      ack: changed,
      handler: async (ctx, { conversationId }) => actor(ctx, conversationId).ask('setFolder', { userId: ctx.session.userId, folder: 'declined' }),
    }),
  },
});
