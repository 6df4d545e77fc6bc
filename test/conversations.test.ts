// Conversations over real sockets on two nodes, members spread over both:
// concurrent senders and the one order every member sees live and in history;
// resends after a lost ack; exact receipts and unread counts; membership,
// roles, blocks and message requests with their typed errors; edits and
// tombstones; typing; history pages. The failover of a conversation's actor
// under kill -9 is in conversations-failover.test.ts.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { StreamEventData } from '../client/flock-client.ts';
import { directConversationId, newGroupId } from '../messaging/ids.ts';
import { toMessageView, type MessageView } from '../messaging/views.ts';
import type { ConversationDoc } from '../models/conversation.ts';
import { messageId, type MessageDoc } from '../models/message.ts';
import { eventually } from './helpers/node-process.ts';
import { codeOf } from './helpers/outcome.ts';
import { assertEventsValid } from './helpers/clients.ts';
import { uploadTinyImages } from './helpers/media-upload.ts';
import { fullHistory } from './helpers/conversations.ts';
import { SocialCluster, streamedMessages, streamOf, type SocialUser } from './helpers/social.ts';
import { FlockRequestError } from '../client/flock-client.ts';

/** Small, so the limit test reaches it; every other group here stays within it. */
const MAX_MEMBERS = 6;
const cluster = new SocialCluster();
/** Small too, so tests reach them with a few users; every other test stays well within them. */
const UNREAD_SCAN = 5;
const QUOTA = { perRecipient: 256 * 1024, perMinute: 1024 * 1024 };
test.before(() =>
  cluster.start('conversations', {
    CONVERSATION_MAX_MEMBERS: String(MAX_MEMBERS),
    CONVERSATION_UNREAD_SCAN: String(UNREAD_SCAN),
    STREAM_SENDER_BYTES_PER_RECIPIENT: String(QUOTA.perRecipient),
    STREAM_SENDER_BYTES_PER_MINUTE: String(QUOTA.perMinute),
  }),
);
test.after.always(() => cluster.stop());

type Receipt = StreamEventData<'conversations:receipt'>;

/** What a member's socket receives of conversations, in arrival order. */
class Received {
  readonly messages: MessageView[] = [];
  readonly updates: MessageView[] = [];
  readonly receipts: Receipt[] = [];
  readonly typing: { conversationId: string; userId: string }[] = [];
  constructor(u: SocialUser) {
    // The cluster's clients check every event against its schema (test/helpers/clients.ts).
    u.c.on('stream:event', (e) => {
      if (e.type === 'conversations:receipt') this.receipts.push(e.data);
      else if (e.type === 'conversations:message') this.messages.push(e.data.message);
      else if (e.type === 'conversations:messageUpdated') this.updates.push(e.data.message);
    });
    u.c.on('conversations:typist', (p) => this.typing.push(p));
  }

  /** The messages of one conversation, a repeated sequence number dropped (the client's dedupe rule), in arrival order. */
  of(conversationId: string): MessageView[] {
    const seen = new Set<number>();
    return this.messages.filter((m) => m.conversationId === conversationId && !seen.has(m.seq) && Boolean(seen.add(m.seq)));
  }
}

type Member = SocialUser & { got: Received };
type Tuple<N extends number, T, R extends T[] = []> = number extends N ? T[] : R['length'] extends N ? R : Tuple<N, T, [...R, T]>;

/**
 * `n` users alternating between node 0 and node 1, each recording what it
 * receives from the start, who let anyone add them to groups (groupAdds:
 * everyone), so that groups here have their members at once; the default
 * (following) and invites are tested with users of their own.
 */
async function members<N extends number>(n: N, name: string): Promise<Tuple<N, Member>> {
  const users = await cluster.quickUsers(n, name);
  await Promise.all(users.map((u) => u.c.request('conversations:updateSettings', { groupAdds: 'everyone' })));
  return users.map((u) => ({ ...u, got: new Received(u) })) as Tuple<N, Member>;
}

/** `n` users with the default settings (groupAdds: following), alternating between the nodes. */
async function users<N extends number>(n: N, name: string): Promise<Tuple<N, SocialUser>> {
  return (await cluster.quickUsers(n, name)) as Tuple<N, SocialUser>;
}

const cmid = () => `c-${randomBytes(9).toString('base64url')}`;
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
const seqs = (messages: MessageView[]) => messages.map((m) => m.seq);

function send(u: SocialUser, conversationId: string, text: string, clientMessageId = cmid()) {
  return u.c.request('conversations:send', { conversationId, clientMessageId, text });
}

/** send(), waiting out the sender's rate limit (REQUEST_RATE_LIMITED) and retrying with the same clientMessageId. */
async function sendPaced(u: SocialUser, conversationId: string, text: string, clientMessageId = cmid()) {
  for (;;) {
    try {
      return await send(u, conversationId, text, clientMessageId);
    } catch (err) {
      if (!(err instanceof FlockRequestError) || err.code !== 'REQUEST_RATE_LIMITED') throw err;
      await new Promise((resolve) => setTimeout(resolve, Number(err.details?.retryAfterMs ?? 100)));
    }
  }
}

async function group(owner: SocialUser, others: SocialUser[], title = 'a group') {
  return owner.c.request('conversations:createGroup', { title, memberIds: others.map((u) => u.userId) });
}

async function lastSeq(u: SocialUser, conversationId: string): Promise<number> {
  return (await u.c.request('conversations:get', { conversationId })).lastSeq;
}

async function listed(u: SocialUser, folder: 'inbox' | 'requests'): Promise<string[]> {
  return (await u.c.request('conversations:list', { folder, limit: 50 })).items.map((c) => c.conversationId);
}

// ---- order and delivery ----

test('a group on both nodes: concurrent senders; every member gets every message live once, in seq order, and history is 1..N with no gap', async (t) => {
  const all = await members(MAX_MEMBERS, 'burst');
  const [owner, ...rest] = all;
  t.deepEqual(new Set(all.map((m) => m.node)), new Set([0, 1]), 'members on both nodes');
  const g = await group(owner, rest, 'burst');
  const conversationId = g.conversationId;
  t.like(g, { kind: 'group', title: 'burst', lastSeq: 1, folder: 'inbox', unread: 0 });
  t.is(g.members.length, MAX_MEMBERS);

  // Four senders on both nodes, fifteen messages each, all in flight at once, and a rename among them.
  const senders = all.slice(0, 4);
  const PER_SENDER = 15;
  const [acks] = await Promise.all([
    Promise.all(
      senders.flatMap((s, i) =>
        range(1, PER_SENDER).map(async (k) => {
          const clientMessageId = cmid();
          const r = await send(s, conversationId, `${i}/${k}`, clientMessageId);
          return { ...r, senderId: s.userId, clientMessageId, text: `${i}/${k}` };
        }),
      ),
    ),
    owner.c.request('conversations:rename', { conversationId, title: 'burst, renamed' }),
  ]);
  const total = 1 + senders.length * PER_SENDER + 1;

  t.true(acks.every((a) => !a.duplicate));
  t.is(new Set(acks.map((a) => a.message.seq)).size, acks.length, 'no sequence number given twice');
  const history = await fullHistory(all[5], conversationId);
  t.deepEqual(seqs(history), range(1, total), 'dense 1..N');
  t.deepEqual(
    history.filter((m) => m.kind === 'system').map((m) => m.system?.action),
    ['created', 'renamed'],
  );
  for (const a of acks) {
    const stored = history[a.message.seq - 1];
    t.like(stored, { kind: 'text', senderId: a.senderId, clientMessageId: a.clientMessageId, text: a.text }, `seq ${a.message.seq}`);
    t.deepEqual(stored, a.message, 'the ack is the stored message');
  }
  const view = await owner.c.request('conversations:get', { conversationId });
  t.like(view, { lastSeq: total, title: 'burst, renamed' });

  // Live: every member, on either node, gets all of them, in sequence order.
  t.true(await eventually(async () => all.every((m) => m.got.of(conversationId).length >= total), 30_000), 'every member got every message live');
  for (const m of all) {
    t.deepEqual(m.got.of(conversationId), history, `what member ${m.userId} (node ${m.node}) received, in arrival order, is the history`);
    t.notThrows(assertEventsValid, 'every event matched its schema');
  }
  // A member who sent nothing has read nothing; a sender has read up to their last message.
  t.is((await all[5].c.request('conversations:get', { conversationId })).unread, total);
  const lastOwn = Math.max(...acks.filter((a) => a.senderId === senders[1]!.userId).map((a) => a.message.seq));
  t.is((await senders[1]!.c.request('conversations:get', { conversationId })).unread, total - lastOwn);
});

test('resending a clientMessageId after the socket died returns the stored message (duplicate) and history holds it once', async (t) => {
  const a = await cluster.user(0, 'resend');
  const [, b] = await members(2, 'resendb');
  const { conversationId } = await a.c.request('conversations:openDirect', { userId: b.userId });

  // Sent and stored, then the socket dies: the client cannot tell the ack from one that was lost.
  const id = cmid();
  const first = await send(a, conversationId, 'are you there?', id);
  a.c.socket.disconnect();
  // Signed in again, on the other node, it resends.
  const again = await cluster.connect(1, await tokenOf(a));
  const resent = await again.request('conversations:send', { conversationId, clientMessageId: id, text: 'are you there?' });
  t.true(resent.duplicate);
  t.deepEqual(resent.message, first.message, 'the same message, same seq');
  const changed = await again.request('conversations:send', { conversationId, clientMessageId: id, text: 'edited on resend' });
  t.like(changed, { duplicate: true, message: { seq: 1, text: 'are you there?' } }, 'the key names the message, whatever the resend says');

  // The socket dies with the request in flight: stored or not, a resend leaves exactly one.
  const inFlight = cmid();
  const dying = await cluster.connect(0, await tokenOf(a));
  const lost = dying.request('conversations:send', { conversationId, clientMessageId: inFlight, text: 'in flight' }, { timeoutMs: 2_000 });
  dying.socket.disconnect();
  t.not(await codeOf(lost), 'ok', 'no ack reaches a dead socket');
  const retried = await again.request('conversations:send', { conversationId, clientMessageId: inFlight, text: 'in flight' });
  t.like(await again.request('conversations:send', { conversationId, clientMessageId: inFlight, text: 'in flight' }), {
    duplicate: true,
    message: { seq: retried.message.seq },
  });

  // Two sockets of the same user racing with one key: one message.
  const other = await cluster.connect(0, await tokenOf(a));
  const raced = cmid();
  const race = await Promise.all([again, other].map((c) => c.request('conversations:send', { conversationId, clientMessageId: raced, text: 'once' })));
  t.deepEqual(race.map((r) => r.duplicate).sort(), [false, true]);
  t.is(race[0]!.message.seq, race[1]!.message.seq);

  // The key is per sender: the same id from b is b's own message.
  const fromB = await send(b, conversationId, 'yes', id);
  t.false(fromB.duplicate);
  t.is(fromB.message.senderId, b.userId);

  const history = await fullHistory(b, conversationId);
  t.deepEqual(
    history.map((m) => [m.seq, m.senderId, m.text]),
    [
      [1, a.userId, 'are you there?'],
      [2, a.userId, 'in flight'],
      [3, a.userId, 'once'],
      [4, b.userId, 'yes'],
    ],
  );
  // A send is acknowledged once its deliveries are in the members' streams, so the streams are final here.
  t.deepEqual(await streamedMessages(b, conversationId), [1, 2, 3, 4], 'a resend delivers nothing again');
  t.true(await eventually(async () => b.got.of(conversationId).length === 4));
  t.deepEqual(seqs(b.got.messages.filter((m) => m.conversationId === conversationId)), [1, 2, 3, 4], 'live, each once');
});

test('an owner that crashed after storing a message, or before delivering one: reads never show the first, the next activation delivers the second', async (t) => {
  const [a, b] = await members(2, 'crash');
  // What a ConversationActor leaves when it dies (1) after recording message 2
  // but before delivering it, and (2) after storing message 3 of a later send
  // but before recording it. No actor has been active for this conversation.
  const conversationId = newGroupId();
  const now = new Date();
  const message = (seq: number, fields: Partial<MessageDoc>): MessageDoc => ({
    _id: messageId(conversationId, seq),
    conversationId,
    seq,
    kind: 'text',
    senderId: a.userId,
    clientMessageId: null,
    text: '',
    mediaIds: [],
    replyTo: null,
    system: null,
    createdAt: now,
    editedAt: null,
    deleted: false,
    deletedAt: null,
    epoch: 0,
    ...fields,
  });
  const created = message(1, { kind: 'system', system: { action: 'created', by: a.userId, userIds: [b.userId], title: 'crashed', role: null } });
  const recorded = message(2, { clientMessageId: 'c-recorded', text: 'recorded, not delivered' });
  const ghost = message(3, { clientMessageId: 'c-ghost-1', text: 'stored, never recorded' });
  const member = (userId: string, role: 'owner' | 'member', readSeq: number) => ({
    userId,
    role,
    folder: 'inbox' as const,
    joinedAt: now,
    joinedSeq: 1,
    readSeq,
    deliveredSeq: readSeq,
  });
  const doc: ConversationDoc = {
    _id: conversationId,
    kind: 'group',
    title: 'crashed',
    createdBy: a.userId,
    createdAt: now,
    members: [member(a.userId, 'owner', 2), member(b.userId, 'member', 0)],
    memberIds: [a.userId, b.userId],
    former: [],
    lastSeq: 2,
    lastMessageAt: now,
    recent: [{ key: `${a.userId}|c-recorded`, seq: 2 }],
    // Recorded the way 0.1 recorded deliveries (read for one release).
    pending: [{ type: 'conversation.message', data: JSON.stringify({ conversationId, message: toMessageView(recorded) }), to: `${a.userId},${b.userId}` }],
    epoch: 0,
  };
  await cluster.withDb(async (db) => {
    await db.collection<MessageDoc>('messages').insertMany([created, recorded, ghost]);
    await db.collection<ConversationDoc>('conversations').insertOne(doc);
  });

  t.deepEqual(seqs(await fullHistory(b, conversationId)), [1, 2], 'the unrecorded message is not shown');
  t.like(await b.c.request('conversations:get', { conversationId }), { lastSeq: 2, unread: 2 });
  t.deepEqual(b.got.of(conversationId), [], 'reads do not activate the actor');

  // The sender, who never saw the ack of message 2, resends it: the actor wakes, delivers what was pending, and answers with the stored message.
  const resent = await send(a, conversationId, 'recorded, not delivered', 'c-recorded');
  t.like(resent, { duplicate: true, message: { seq: 2, text: 'recorded, not delivered' } });
  t.true(await eventually(async () => b.got.of(conversationId).length === 1));
  t.deepEqual(b.got.of(conversationId), [toMessageView(recorded)]);

  // The next message takes number 3, replacing what the crashed send left there; its save replaces the done delivery of 2 by its own.
  t.like(await send(a, conversationId, 'the real third'), { duplicate: false, message: { seq: 3, text: 'the real third' } });
  const stored = await cluster.withDb((db) => db.collection<ConversationDoc>('conversations').findOne({ _id: conversationId }));
  const listed = (stored?.pending ?? []).map(
    (p) => z.object({ event: z.object({ data: z.object({ message: z.object({ seq: z.number() }) }) }) }).parse(JSON.parse(String(p))).event.data.message.seq,
  );
  t.deepEqual(listed, [3], 'the delivery of 2 is no longer listed once the next change is saved');
  t.like(
    await send(a, conversationId, 'stored, never recorded', 'c-ghost-1'),
    { duplicate: false, message: { seq: 4 } },
    'the unrecorded key was never acknowledged',
  );
  t.deepEqual(
    (await fullHistory(b, conversationId)).map((m) => [m.seq, m.text]),
    [
      [1, ''],
      [2, 'recorded, not delivered'],
      [3, 'the real third'],
      [4, 'stored, never recorded'],
    ],
  );
  t.true(await eventually(async () => b.got.of(conversationId).length === 3));
  t.is(b.got.messages.filter((m) => m.conversationId === conversationId).length, 3, 'each delivered once');
});

// ---- receipts and unread ----

test('unread counts and receipts are exact under concurrent senders; markRead never moves back and clamps at the end', async (t) => {
  const [reader, s1, s2, s3] = await members(4, 'rcpt');
  await reader.c.request('graph:follow', { userId: s1.userId });
  const a = (await group(reader, [s1, s2, s3], 'receipts')).conversationId;
  const N = 8;
  await Promise.all([s1, s2, s3].flatMap((s) => range(1, N).map((k) => send(s, a, `m${k}`))));
  const lastA = 1 + 3 * N;
  t.like(await reader.c.request('conversations:get', { conversationId: a }), { lastSeq: lastA, unread: 3 * N }, 'the creator read the creation; nothing since');

  // A second inbox conversation (its creator is followed) and a message request (its sender is not).
  const b = (await group(s1, [reader], 'second')).conversationId;
  await Promise.all(range(1, 5).map((k) => send(s1, b, `b${k}`)));
  const d = (await s2.c.request('conversations:openDirect', { userId: reader.userId })).conversationId;
  await send(s2, d, 'hello?');
  await send(s2, d, 'anyone?');
  t.like(await reader.c.request('conversations:get', { conversationId: b }), { folder: 'inbox', unread: 6 });
  t.like(await reader.c.request('conversations:get', { conversationId: d }), { folder: 'requests', unread: 2 });
  t.deepEqual(
    await reader.c.request('conversations:unread', {}),
    { unread: 3 * N + 6, conversations: 2, requests: 1, capped: false },
    'requests are not counted as unread',
  );

  t.deepEqual(await reader.c.request('conversations:markRead', { conversationId: a, seq: 10 }), { readSeq: 10, deliveredSeq: 10 });
  t.is((await reader.c.request('conversations:get', { conversationId: a })).unread, lastA - 10);
  t.deepEqual(await reader.c.request('conversations:markRead', { conversationId: a, seq: 5 }), { readSeq: 10, deliveredSeq: 10 }, 'never back');
  t.deepEqual(await reader.c.request('conversations:markDelivered', { conversationId: a, seq: 20 }), { readSeq: 10, deliveredSeq: 20 });
  t.deepEqual(await reader.c.request('conversations:markDelivered', { conversationId: a, seq: 3 }), { readSeq: 10, deliveredSeq: 20 });
  t.deepEqual(
    await reader.c.request('conversations:markRead', { conversationId: a, seq: 9_999 }),
    { readSeq: lastA, deliveredSeq: lastA },
    'clamped to the last message',
  );
  t.deepEqual(await reader.c.request('conversations:unread', {}), { unread: 6, conversations: 1, requests: 1, capped: false });

  // Concurrent receipts in any order end at the highest.
  const acks = await Promise.all([4, 1, 6, 2, 5, 3].map((seq) => reader.c.request('conversations:markRead', { conversationId: b, seq })));
  t.true(acks.every((r) => r.readSeq <= 6 && r.deliveredSeq >= r.readSeq));
  t.like(await reader.c.request('conversations:get', { conversationId: b }), { unread: 0 });
  t.deepEqual(await reader.c.request('conversations:unread', {}), { unread: 0, conversations: 0, requests: 1, capped: false });
  const seenBy = (await s2.c.request('conversations:get', { conversationId: a })).members;
  t.like(
    seenBy.find((m) => m.userId === reader.userId),
    { readSeq: lastA, deliveredSeq: lastA },
    'other members see the receipt',
  );

  // Receipts reach the other members live, in order, ending at the last one.
  for (const s of [s1, s2, s3]) {
    t.true(await eventually(async () => s.got.receipts.some((r) => r.conversationId === a && r.userId === reader.userId && r.readSeq === lastA)));
    const mine = s.got.receipts.filter((r) => r.conversationId === a && r.userId === reader.userId);
    t.deepEqual(
      mine.map((r) => [r.readSeq, r.deliveredSeq]),
      [
        [10, 10],
        [10, 20],
        [lastA, lastA],
      ],
      'one event per change, none for no-ops',
    );
  }
  t.true(await eventually(async () => s1.got.receipts.some((r) => r.conversationId === b && r.readSeq === 6)));
  t.false(
    s2.got.receipts.some((r) => r.conversationId === b),
    'receipts go to the members only',
  );
});

// ---- rules ----

test('non-members can neither read nor write: CONVERSATION_NOT_FOUND, as for an id that does not exist', async (t) => {
  const [a, b, outsider] = await members(3, 'nonmem');
  const g = (await group(a, [b], 'members only')).conversationId;
  await send(a, g, 'private');
  const d = (await a.c.request('conversations:openDirect', { userId: b.userId })).conversationId;
  await send(a, d, 'psst');
  for (const conversationId of [g, d, 'g_AAAAAAAAAAAAAAAAAAAAAA', 'd_AAAAAAAAAAAAAAAAAAAAAA']) {
    const codes = {
      get: await codeOf(outsider.c.request('conversations:get', { conversationId })),
      history: await codeOf(outsider.c.request('conversations:history', { conversationId })),
      send: await codeOf(send(outsider, conversationId, 'let me in')),
      edit: await codeOf(outsider.c.request('conversations:edit', { conversationId, seq: 1, text: 'x' })),
      delete: await codeOf(outsider.c.request('conversations:delete', { conversationId, seq: 1 })),
      markRead: await codeOf(outsider.c.request('conversations:markRead', { conversationId, seq: 1 })),
      addMembers: await codeOf(outsider.c.request('conversations:addMembers', { conversationId, userIds: [outsider.userId] })),
      rename: await codeOf(outsider.c.request('conversations:rename', { conversationId, title: 'mine' })),
      accept: await codeOf(outsider.c.request('conversations:accept', { conversationId })),
    };
    t.deepEqual(new Set(Object.values(codes)), new Set(['CONVERSATION_NOT_FOUND']), `${conversationId}: ${JSON.stringify(codes)}`);
  }
  // Typing is limited to three a second: one real conversation, one that does not exist.
  for (const conversationId of [g, 'd_AAAAAAAAAAAAAAAAAAAAAA']) {
    t.is(await codeOf(outsider.c.request('conversations:typing', { conversationId })), 'CONVERSATION_NOT_FOUND');
  }
  t.is(await lastSeq(a, g), 2);
  t.is(await lastSeq(a, d), 1);
  t.deepEqual((await a.c.request('conversations:get', { conversationId: g })).members.map((m) => m.userId).sort(), [a.userId, b.userId].sort());
  t.deepEqual(await listed(outsider, 'inbox'), []);
  t.deepEqual(await listed(outsider, 'requests'), []);
  t.deepEqual(await outsider.c.request('conversations:unread', {}), { unread: 0, conversations: 0, requests: 0, capped: false });
  t.deepEqual(outsider.got.messages, []);
});

test('a block, either way, refuses opening, reopening or continuing a 1:1 and adding to a group', async (t) => {
  const [x, y, p, q] = await members(4, 'block');
  await x.c.request('graph:block', { userId: y.userId });
  t.is(await codeOf(y.c.request('conversations:openDirect', { userId: x.userId })), 'GRAPH_BLOCKED', 'the blocked one');
  t.is(await codeOf(x.c.request('conversations:openDirect', { userId: y.userId })), 'GRAPH_BLOCKED', 'the blocker');
  t.is(
    await codeOf(x.c.request('conversations:get', { conversationId: directConversationId(x.userId, y.userId) })),
    'CONVERSATION_NOT_FOUND',
    'nothing was made',
  );

  const d = (await p.c.request('conversations:openDirect', { userId: q.userId })).conversationId;
  await send(p, d, 'before the block');
  await send(q, d, 'reply');
  await q.c.request('graph:block', { userId: p.userId });
  for (const [from, to] of [
    [p, q],
    [q, p],
  ] as const) {
    t.is(await codeOf(send(from, d, 'after the block')), 'GRAPH_BLOCKED');
    t.is(await codeOf(from.c.request('conversations:openDirect', { userId: to.userId })), 'GRAPH_BLOCKED', 'reopening is opening');
    t.is(await codeOf(from.c.request('conversations:typing', { conversationId: d })), 'GRAPH_BLOCKED');
  }
  t.is(await lastSeq(p, d), 2);
  t.deepEqual(seqs(await fullHistory(q, d)), [1, 2], 'what was said stays readable');

  t.is(await codeOf(group(x, [y])), 'GRAPH_BLOCKED');
  t.is(await codeOf(group(y, [x, p])), 'GRAPH_BLOCKED');
  const g = (await group(x, [p])).conversationId;
  t.is(await codeOf(x.c.request('conversations:addMembers', { conversationId: g, userIds: [y.userId] })), 'GRAPH_BLOCKED');
  t.like(await x.c.request('conversations:get', { conversationId: g }), { lastSeq: 1 });
  t.is((await x.c.request('conversations:get', { conversationId: g })).members.length, 2);

  await q.c.request('graph:unblock', { userId: p.userId });
  t.like(await send(p, d, 'talking again'), { duplicate: false, message: { seq: 3 } });
});

test('a removed member gets the removal and then nothing, reads up to it, and can no longer act', async (t) => {
  const [owner, gone, stays] = await members(3, 'removed');
  const g = (await group(owner, [gone, stays], 'removal')).conversationId;
  await send(owner, g, 'one');
  await send(gone, g, 'two');
  t.deepEqual(await owner.c.request('conversations:removeMember', { conversationId: g, userId: gone.userId }), { changed: true });
  t.deepEqual(await owner.c.request('conversations:removeMember', { conversationId: g, userId: gone.userId }), { changed: false });
  await send(stays, g, 'after the removal');
  await send(owner, g, 'still after');

  t.true(await eventually(async () => stays.got.of(g).length === 6 && gone.got.of(g).length >= 4));
  t.deepEqual(await streamedMessages(gone, g), [1, 2, 3, 4], 'nothing after the removal is delivered');
  t.deepEqual(seqs(gone.got.of(g)), [1, 2, 3, 4], 'nor arrives live');
  t.like(gone.got.of(g)[3], { kind: 'system', system: { action: 'removed', by: owner.userId, userIds: [gone.userId] } });

  const readable = await fullHistory(gone, g);
  t.deepEqual(seqs(readable), [1, 2, 3, 4], 'history stops at the removal');
  t.deepEqual(await gone.c.request('conversations:history', { conversationId: g, after: 4 }), { messages: [], hasMore: false });
  t.deepEqual(seqs((await gone.c.request('conversations:history', { conversationId: g, before: 100, limit: 2 })).messages), [3, 4]);
  const refused = await Promise.all(
    [
      send(gone, g, 'let me back'),
      gone.c.request('conversations:get', { conversationId: g }),
      gone.c.request('conversations:markRead', { conversationId: g, seq: 4 }),
      gone.c.request('conversations:typing', { conversationId: g }),
      gone.c.request('conversations:edit', { conversationId: g, seq: 3, text: 'two, edited' }),
    ].map(codeOf),
  );
  t.deepEqual(refused, Array(5).fill('CONVERSATION_NOT_FOUND'));
  t.false((await listed(gone, 'inbox')).includes(g));
  t.deepEqual(seqs(await fullHistory(stays, g)), range(1, 6));
  t.is((await fullHistory(stays, g))[2]!.text, 'two', "the removed member's message stays");

  // Added back, they read from the new join on.
  t.deepEqual(await owner.c.request('conversations:addMembers', { conversationId: g, userIds: [gone.userId] }), { added: [gone.userId], invited: [] });
  t.deepEqual(seqs(await fullHistory(gone, g)), [7]);
  t.like(await gone.c.request('conversations:get', { conversationId: g }), { lastSeq: 7, unread: 1 });
});

test('only the owner and admins manage a group, only the owner sets roles, and an owner who leaves hands the group on', async (t) => {
  const [owner, admin, m1, m2, extra] = await members(5, 'roles');
  const g = (await group(owner, [admin, m1, m2], 'roles')).conversationId;
  const forbidden = [
    m1.c.request('conversations:addMembers', { conversationId: g, userIds: [extra.userId] }),
    m1.c.request('conversations:removeMember', { conversationId: g, userId: m2.userId }),
    m1.c.request('conversations:rename', { conversationId: g, title: 'mine now' }),
    m1.c.request('conversations:setRole', { conversationId: g, userId: m1.userId, role: 'admin' }),
    admin.c.request('conversations:setRole', { conversationId: g, userId: m1.userId, role: 'admin' }),
  ];
  t.deepEqual(await Promise.all(forbidden.map(codeOf)), Array(forbidden.length).fill('CONVERSATION_FORBIDDEN'));
  t.is(await lastSeq(owner, g), 1, 'nothing happened');

  t.deepEqual(await owner.c.request('conversations:setRole', { conversationId: g, userId: admin.userId, role: 'admin' }), { changed: true });
  t.deepEqual(await owner.c.request('conversations:setRole', { conversationId: g, userId: admin.userId, role: 'admin' }), { changed: false });
  t.deepEqual(await admin.c.request('conversations:addMembers', { conversationId: g, userIds: [extra.userId, m1.userId] }), {
    added: [extra.userId],
    invited: [],
  });
  t.deepEqual(await admin.c.request('conversations:rename', { conversationId: g, title: 'renamed by an admin' }), { changed: true });
  t.deepEqual(await admin.c.request('conversations:removeMember', { conversationId: g, userId: m2.userId }), { changed: true });
  t.is(await codeOf(admin.c.request('conversations:removeMember', { conversationId: g, userId: owner.userId })), 'CONVERSATION_FORBIDDEN');
  await owner.c.request('conversations:setRole', { conversationId: g, userId: m1.userId, role: 'admin' });
  t.is(
    await codeOf(admin.c.request('conversations:removeMember', { conversationId: g, userId: m1.userId })),
    'CONVERSATION_FORBIDDEN',
    'only the owner removes admins',
  );
  t.is(await codeOf(owner.c.request('conversations:setRole', { conversationId: g, userId: owner.userId, role: 'member' })), 'CONVERSATION_FORBIDDEN');
  t.is(await codeOf(admin.c.request('conversations:removeMember', { conversationId: g, userId: admin.userId })), 'REQUEST_INVALID', 'leaving is leave');

  t.deepEqual(await owner.c.request('conversations:leave', { conversationId: g }), { changed: true });
  const view = await admin.c.request('conversations:get', { conversationId: g });
  t.like(view, { title: 'renamed by an admin' });
  t.deepEqual(
    view.members.map((m) => [m.userId, m.role]),
    [
      [admin.userId, 'owner'],
      [m1.userId, 'admin'],
      [extra.userId, 'member'],
    ],
    'the longest-serving admin owns it now',
  );
  t.is(await codeOf(owner.c.request('conversations:get', { conversationId: g })), 'CONVERSATION_NOT_FOUND');
  t.deepEqual(
    (await fullHistory(admin, g)).map((m) => m.system?.action),
    ['created', 'role', 'added', 'renamed', 'removed', 'role', 'left'],
  );

  const d = (await owner.c.request('conversations:openDirect', { userId: m1.userId })).conversationId;
  t.is(await codeOf(owner.c.request('conversations:leave', { conversationId: d })), 'CONVERSATION_FORBIDDEN');
  t.is(await codeOf(owner.c.request('conversations:rename', { conversationId: d, title: 'us' })), 'CONVERSATION_FORBIDDEN');
  t.is(await codeOf(owner.c.request('conversations:addMembers', { conversationId: d, userIds: [m2.userId] })), 'CONVERSATION_FORBIDDEN');
});

test('only the sender edits or deletes; members get the new version (conversations:messageUpdated); history shows the edit and the tombstone', async (t) => {
  const [a, b] = await members(2, 'edit');
  const g = (await group(a, [b], 'edits')).conversationId;
  const { message } = await send(a, g, 'first draft');
  const photos = await uploadTinyImages(a.c, 2);
  const media = (await a.c.request('conversations:send', { conversationId: g, clientMessageId: cmid(), mediaIds: photos })).message;
  t.like(media, { seq: 3, text: '', mediaIds: photos });

  t.deepEqual(
    await Promise.all(
      [
        b.c.request('conversations:edit', { conversationId: g, seq: message.seq, text: 'hijacked' }),
        b.c.request('conversations:delete', { conversationId: g, seq: message.seq }),
        a.c.request('conversations:edit', { conversationId: g, seq: 1, text: 'not a system message' }),
        a.c.request('conversations:edit', { conversationId: g, seq: 99, text: 'nothing there' }),
        a.c.request('conversations:edit', { conversationId: g, seq: message.seq, text: '   ' }),
      ].map(codeOf),
    ),
    ['CONVERSATION_FORBIDDEN', 'CONVERSATION_FORBIDDEN', 'CONVERSATION_FORBIDDEN', 'CONVERSATION_MESSAGE_NOT_FOUND', 'REQUEST_INVALID'],
  );

  const edited = await a.c.request('conversations:edit', { conversationId: g, seq: message.seq, text: 'second draft' });
  t.like(edited.message, { seq: 2, text: 'second draft', deleted: false });
  t.true(typeof edited.message.editedAt === 'number');
  const deleted = await a.c.request('conversations:delete', { conversationId: g, seq: message.seq });
  t.like(deleted.message, { seq: 2, text: '', mediaIds: [], deleted: true });
  t.like((await a.c.request('conversations:delete', { conversationId: g, seq: message.seq })).message, { deleted: true }, 'deleting twice is fine');
  t.is(await codeOf(a.c.request('conversations:edit', { conversationId: g, seq: message.seq, text: 'undelete?' })), 'CONVERSATION_MESSAGE_NOT_FOUND');
  t.like((await a.c.request('conversations:delete', { conversationId: g, seq: media.seq })).message, { mediaIds: [], deleted: true });

  const history = await fullHistory(b, g);
  t.deepEqual(seqs(history), [1, 2, 3], 'edits and deletions take no sequence number');
  t.like(history[1], { text: '', mediaIds: [], deleted: true, clientMessageId: message.clientMessageId, senderId: a.userId });
  t.like(history[2], { deleted: true, mediaIds: [] });

  for (const m of [a, b]) {
    t.true(await eventually(async () => m.got.updates.filter((u) => u.conversationId === g).length === 3));
    t.deepEqual(
      m.got.updates.map((u) => [u.seq, u.text, u.deleted]),
      [
        [2, 'second draft', false],
        [2, '', true],
        [3, '', true],
      ],
    );
  }
});

test('message requests: a 1:1 from someone you do not follow waits in requests; accept, reply, decline; followed senders land in the inbox', async (t) => {
  const [r, stranger, friend, pest, stranger2] = await members(5, 'req');
  await r.c.request('graph:follow', { userId: friend.userId });

  const opened = await stranger.c.request('conversations:openDirect', { userId: r.userId });
  const s = opened.conversationId;
  t.is(opened.folder, 'inbox', 'the opener has it in the inbox');
  const fromR = await r.c.request('conversations:openDirect', { userId: stranger.userId });
  t.is(fromR.conversationId, s, 'one conversation, whoever opens it');
  t.is(fromR.folder, 'requests');
  t.is((await stranger.c.request('conversations:openDirect', { userId: r.userId })).conversationId, s, 'idempotent');
  t.is(s, directConversationId(r.userId, stranger.userId));
  await send(stranger, s, 'hi, we have not met');
  t.false((await listed(r, 'inbox')).includes(s));
  const requests = await r.c.request('conversations:list', { folder: 'requests' });
  t.deepEqual(
    requests.items.map((c) => c.conversationId),
    [s],
  );
  t.like(requests.items[0], { folder: 'requests', unread: 1, lastMessage: { seq: 1, text: 'hi, we have not met' } });

  const f = (await friend.c.request('conversations:openDirect', { userId: r.userId })).conversationId;
  await send(friend, f, 'it is me');
  const inbox = await r.c.request('conversations:list', { folder: 'inbox' });
  t.deepEqual(
    inbox.items.map((c) => c.conversationId),
    [f],
    'someone you follow lands in the inbox',
  );
  t.deepEqual(await r.c.request('conversations:unread', {}), { unread: 1, conversations: 1, requests: 1, capped: false });

  t.deepEqual(await r.c.request('conversations:accept', { conversationId: s }), { changed: true });
  t.deepEqual(await r.c.request('conversations:accept', { conversationId: s }), { changed: false });
  t.deepEqual((await listed(r, 'inbox')).sort(), [f, s].sort());
  t.deepEqual(await listed(r, 'requests'), []);

  // Replying accepts too.
  const s2 = (await stranger2.c.request('conversations:openDirect', { userId: r.userId })).conversationId;
  await send(stranger2, s2, 'hello from another stranger');
  t.deepEqual(await listed(r, 'requests'), [s2]);
  await send(r, s2, 'hello back');
  t.deepEqual(await listed(r, 'requests'), []);
  t.deepEqual(await listed(r, 'inbox'), [s2, f, s], 'latest activity first');
  const firstPage = await r.c.request('conversations:list', { limit: 2 });
  t.deepEqual(
    firstPage.items.map((c) => c.conversationId),
    [s2, f],
  );
  const secondPage = await r.c.request('conversations:list', { limit: 2, cursor: firstPage.nextCursor! });
  t.deepEqual(secondPage, { items: [(await r.c.request('conversations:list', {})).items[2]!], nextCursor: null }, 'pages continue after the last one');

  // Declining hides it and stops its live events; the other side is not told.
  const p = (await pest.c.request('conversations:openDirect', { userId: r.userId })).conversationId;
  await send(pest, p, 'buy my stuff');
  t.true(await eventually(async () => r.got.of(p).length === 1), 'a request is delivered live');
  t.deepEqual(await r.c.request('conversations:decline', { conversationId: p }), { changed: true });
  t.false([...(await listed(r, 'inbox')), ...(await listed(r, 'requests'))].includes(p));
  t.is((await r.c.request('conversations:unread', {})).requests, 0);
  const after = await send(pest, p, 'are you there?');
  t.false(after.duplicate);
  await pest.c.request('conversations:typing', { conversationId: p });
  t.true(await eventually(async () => pest.got.of(p).length === 2), 'the sender is not told');
  t.deepEqual(await streamedMessages(r, p), [1], 'nothing delivered after declining');
  // A later typing indicator to r, from a conversation r kept: had pest's reached r, it would have come first.
  await stranger2.c.request('conversations:typing', { conversationId: s2 });
  t.true(await eventually(async () => r.got.typing.some((x) => x.conversationId === s2)));
  t.deepEqual(seqs(r.got.of(p)), [1], 'nothing live after declining');
  t.false(r.got.typing.some((x) => x.conversationId === p));
  t.like(await pest.c.request('conversations:get', { conversationId: p }), { lastSeq: 2 });
  t.deepEqual(seqs(await fullHistory(r, p)), [1, 2], 'still readable by the decliner');

  // Groups follow the same rule: joined through someone you do not follow, a request.
  const sg = (await group(stranger, [r])).conversationId;
  t.is((await r.c.request('conversations:get', { conversationId: sg })).folder, 'requests');
  t.is((await stranger.c.request('conversations:get', { conversationId: sg })).folder, 'inbox');
  const fg = (await group(friend, [r])).conversationId;
  t.is((await r.c.request('conversations:get', { conversationId: fg })).folder, 'inbox');
  t.deepEqual(await listed(r, 'requests'), [sg]);
});

test('the conversation list pages by latest activity, past conversations of the other folder', async (t) => {
  const [r, friend, ...strangers] = await members(7, 'list');
  await r.c.request('graph:follow', { userId: friend.userId });
  const f = (await friend.c.request('conversations:openDirect', { userId: r.userId })).conversationId;
  const requests: string[] = [];
  for (const s of strangers) {
    const { conversationId } = await s.c.request('conversations:openDirect', { userId: r.userId });
    await send(s, conversationId, 'hello');
    requests.unshift(conversationId);
  }
  // The five newer requests come first in the user's conversations: the inbox page has to read past them.
  t.deepEqual(
    (await r.c.request('conversations:list', { folder: 'inbox', limit: 1 })).items.map((c) => c.conversationId),
    [f],
  );
  const pages: string[][] = [];
  let cursor: string | undefined;
  do {
    const page = await r.c.request('conversations:list', { folder: 'requests', limit: 2, ...(cursor && { cursor }) });
    pages.push(page.items.map((c) => c.conversationId));
    cursor = page.nextCursor ?? undefined;
  } while (cursor && pages.length < 10);
  t.deepEqual(pages.flat(), requests, 'newest first, each once');
  t.deepEqual(
    pages.map((p) => p.length),
    [2, 2, 1],
  );
});

test(`a group holds at most CONVERSATION_MAX_MEMBERS (${MAX_MEMBERS}) members: CONVERSATION_FULL changes nothing`, async (t) => {
  const [owner, ...others] = (await members(MAX_MEMBERS + 1, 'full')) as [Member, ...Member[]];
  t.is(await codeOf(group(owner, others)), 'CONVERSATION_FULL');
  const g = (await group(owner, others.slice(0, MAX_MEMBERS - 2))).conversationId;
  const add = (users: SocialUser[]) => owner.c.request('conversations:addMembers', { conversationId: g, userIds: users.map((u) => u.userId) });
  t.is(await codeOf(add(others.slice(MAX_MEMBERS - 2))), 'CONVERSATION_FULL', 'two more would be one too many');
  t.like(await owner.c.request('conversations:get', { conversationId: g }), { lastSeq: 1 });
  t.is((await owner.c.request('conversations:get', { conversationId: g })).members.length, MAX_MEMBERS - 1);
  t.deepEqual(await add([others[MAX_MEMBERS - 2]!]), { added: [others[MAX_MEMBERS - 2]!.userId], invited: [] });
  t.is(await codeOf(add([others[MAX_MEMBERS - 1]!])), 'CONVERSATION_FULL');
  t.is(await codeOf(others[MAX_MEMBERS - 1]!.c.request('conversations:get', { conversationId: g })), 'CONVERSATION_NOT_FOUND');
  await owner.c.request('conversations:removeMember', { conversationId: g, userId: others[0]!.userId });
  t.deepEqual(await add([others[MAX_MEMBERS - 1]!]), { added: [others[MAX_MEMBERS - 1]!.userId], invited: [] }, 'room again after a removal');
  t.is((await owner.c.request('conversations:get', { conversationId: g })).members.length, MAX_MEMBERS);
});

test('bad input gets typed errors and changes nothing', async (t) => {
  const [a, b] = await members(2, 'bad');
  const g = (await group(a, [b], 'input')).conversationId;
  await send(a, g, 'x'.repeat(4_000));
  const photos = await uploadTinyImages(a.c, 10);
  await a.c.request('conversations:send', { conversationId: g, clientMessageId: cmid(), mediaIds: photos });
  const before = { lastSeq: await lastSeq(a, g), history: await fullHistory(b, g), unread: await b.c.request('conversations:unread', {}) };
  t.is(before.lastSeq, 3);
  const unknown = `u_${'Z'.repeat(64)}`;
  const base = { conversationId: g, clientMessageId: cmid() };
  const cases: [string, Promise<unknown>, string][] = [
    ['text over 4,000 characters', a.c.request('conversations:send', { ...base, text: 'x'.repeat(4_001) }), 'REQUEST_INVALID'],
    ['11 media ids', a.c.request('conversations:send', { ...base, mediaIds: range(1, 11).map((i) => `m_media${i}x`) }), 'REQUEST_INVALID'],
    ['not a media id', a.c.request('conversations:send', { ...base, mediaIds: ['photo.jpg'] }), 'REQUEST_INVALID'],
    ['a media id never uploaded', a.c.request('conversations:send', { ...base, mediaIds: ['m_nosuchmedia01'] }), 'MEDIA_NOT_FOUND'],
    ["someone else's media", b.c.request('conversations:send', { ...base, mediaIds: [photos[0]!] }), 'MEDIA_NOT_FOUND'],
    ['no text, no media', a.c.request('conversations:send', { ...base, text: '' }), 'REQUEST_INVALID'],
    ['blank text', a.c.request('conversations:send', { ...base, text: ' \n ' }), 'REQUEST_INVALID'],
    ['malformed conversation id', a.c.request('conversations:send', { ...base, conversationId: 'nope', text: 'x' }), 'REQUEST_INVALID'],
    ['malformed conversation kind', a.c.request('conversations:get', { conversationId: `x${g.slice(1)}` }), 'REQUEST_INVALID'],
    ['short clientMessageId', a.c.request('conversations:send', { ...base, clientMessageId: 'short', text: 'x' }), 'REQUEST_INVALID'],
    ['clientMessageId with spaces', a.c.request('conversations:send', { ...base, clientMessageId: 'has spaces in it', text: 'x' }), 'REQUEST_INVALID'],
    ['long clientMessageId', a.c.request('conversations:send', { ...base, clientMessageId: 'c'.repeat(65), text: 'x' }), 'REQUEST_INVALID'],
    ['replyTo 0', a.c.request('conversations:send', { ...base, text: 'x', replyTo: 0 }), 'REQUEST_INVALID'],
    ['replyTo past the end', a.c.request('conversations:send', { ...base, text: 'x', replyTo: 99 }), 'CONVERSATION_MESSAGE_NOT_FOUND'],
    ['unknown field', a.c.request('conversations:send', { ...base, text: 'x', senderId: b.userId } as never), 'REQUEST_INVALID'],
    // Within the request limit, but 2,900 escaped control characters are 17 KiB of event JSON: refused before it is stored.
    ['text whose event would not fit a stream', a.c.request('conversations:send', { ...base, text: '\u0001'.repeat(2_900) }), 'REQUEST_TOO_LARGE'],
    ['text over the request limit', a.c.request('conversations:send', { ...base, text: '\u0001'.repeat(4_000) }), 'REQUEST_TOO_LARGE'],
    ['edit whose event would not fit', a.c.request('conversations:edit', { conversationId: g, seq: 2, text: '\u0001'.repeat(2_900) }), 'REQUEST_TOO_LARGE'],
    ['empty edit', a.c.request('conversations:edit', { conversationId: g, seq: 2, text: '' }), 'REQUEST_INVALID'],
    ['edit over 4,000 characters', a.c.request('conversations:edit', { conversationId: g, seq: 2, text: 'y'.repeat(4_001) }), 'REQUEST_INVALID'],
    ['history before and after', a.c.request('conversations:history', { conversationId: g, before: 3, after: 1 }), 'REQUEST_INVALID'],
    ['history limit 51', a.c.request('conversations:history', { conversationId: g, limit: 51 }), 'REQUEST_INVALID'],
    ['history before 0', a.c.request('conversations:history', { conversationId: g, before: 0 }), 'REQUEST_INVALID'],
    ['markRead -1', a.c.request('conversations:markRead', { conversationId: g, seq: -1 }), 'REQUEST_INVALID'],
    ['list the declined folder', a.c.request('conversations:list', { folder: 'declined' } as never), 'REQUEST_INVALID'],
    ['list with a bad cursor', a.c.request('conversations:list', { cursor: 'bm90LWpzb24' }), 'REQUEST_CURSOR_INVALID'],
    ['openDirect with an unknown user', a.c.request('conversations:openDirect', { userId: unknown }), 'USER_NOT_FOUND'],
    ['openDirect with a malformed id', a.c.request('conversations:openDirect', { userId: 'nobody' }), 'REQUEST_INVALID'],
    ['openDirect with yourself', a.c.request('conversations:openDirect', { userId: a.userId }), 'GRAPH_SELF'],
    ['group with an unknown user', a.c.request('conversations:createGroup', { title: 't', memberIds: [b.userId, unknown] }), 'USER_NOT_FOUND'],
    // 50 ids are allowed per request: they must fit the request size limit (they are unknown here, hence USER_NOT_FOUND).
    [
      'group with 50 member ids',
      a.c.request('conversations:createGroup', { title: 't', memberIds: range(1, 50).map((i) => `u_${String(i).padStart(64, 'Z')}`) }),
      'USER_NOT_FOUND',
    ],
    [
      'group with 51 member ids',
      a.c.request('conversations:createGroup', { title: 't', memberIds: range(1, 51).map((i) => `u_${String(i).padStart(16, 'Z')}`) }),
      'REQUEST_INVALID',
    ],
    ['group without a title', a.c.request('conversations:createGroup', { title: '  ', memberIds: [b.userId] }), 'REQUEST_INVALID'],
    ['group title over 100', a.c.request('conversations:createGroup', { title: 't'.repeat(101), memberIds: [b.userId] }), 'REQUEST_INVALID'],
    ['adding an unknown user', a.c.request('conversations:addMembers', { conversationId: g, userIds: [unknown] }), 'USER_NOT_FOUND'],
    [
      'adding 50 member ids',
      a.c.request('conversations:addMembers', { conversationId: g, userIds: range(1, 50).map((i) => `u_${String(i).padStart(64, 'Z')}`) }),
      'USER_NOT_FOUND',
    ],
    ['adding nobody', a.c.request('conversations:addMembers', { conversationId: g, userIds: [] }), 'REQUEST_INVALID'],
    ['rename to blank', a.c.request('conversations:rename', { conversationId: g, title: '' }), 'REQUEST_INVALID'],
    ['an unknown role', a.c.request('conversations:setRole', { conversationId: g, userId: b.userId, role: 'owner' } as never), 'REQUEST_INVALID'],
  ];
  const outcomes = await Promise.all(cases.map(([, attempt]) => codeOf(attempt)));
  t.deepEqual(Object.fromEntries(cases.map(([what], i) => [what, outcomes[i]])), Object.fromEntries(cases.map(([what, , code]) => [what, code])));

  t.is(await lastSeq(a, g), before.lastSeq, 'no sequence number was taken');
  t.deepEqual(await fullHistory(b, g), before.history);
  t.deepEqual(await b.c.request('conversations:unread', {}), before.unread);
  t.like(await send(a, g, 'still working'), { duplicate: false, message: { seq: before.lastSeq + 1 } }, 'nothing refused left the conversation stuck');
});

// ---- typing ----

test('typing reaches the other members only, is never stored, and is rate-limited', async (t) => {
  const [a, b, c] = await members(3, 'typing');
  const g = (await group(a, [b, c], 'typing')).conversationId;
  t.deepEqual(await a.c.request('conversations:typing', { conversationId: g }), {});
  for (const m of [b, c]) {
    t.true(await eventually(async () => m.got.typing.length === 1));
    t.like(m.got.typing[0], { conversationId: g, userId: a.userId });
  }
  // b types next: an echo of a's own indicator (delivered on a's node as it was sent) would have reached a first.
  await b.c.request('conversations:typing', { conversationId: g });
  t.true(await eventually(async () => a.got.typing.length === 1));
  t.deepEqual(
    a.got.typing.map((x) => x.userId),
    [b.userId],
    'not echoed to the typist',
  );

  // A burst of 3 is allowed (then 1 per second): of 6 sent at once, some are refused, and only the accepted ones reach the others.
  const codes = await Promise.all(Array.from({ length: 6 }, () => codeOf(c.c.request('conversations:typing', { conversationId: g }))));
  const accepted = codes.filter((code) => code === 'ok').length;
  t.true(accepted >= 3 && accepted < 6, codes.join(','));
  t.true(
    codes.every((code) => code === 'ok' || code === 'REQUEST_RATE_LIMITED'),
    codes.join(','),
  );
  t.true(await eventually(async () => b.got.typing.filter((x) => x.userId === c.userId).length === accepted));
  // a types next, from c's node: a refused indicator of c's would have reached b before a's.
  await a.c.request('conversations:typing', { conversationId: g });
  t.true(await eventually(async () => b.got.typing.some((x) => x.userId === a.userId)));
  t.is(b.got.typing.filter((x) => x.userId === c.userId).length, accepted, 'the refused ones were not sent');

  t.is(await lastSeq(a, g), 1, 'typing takes no sequence number');
  t.deepEqual(seqs(await fullHistory(b, g)), [1]);
  t.deepEqual(seqs(b.got.of(g)), [1], 'nor a stream event');
});

// ---- history ----

test('history pages before and after with hasMore, and a member added later reads only from their join', async (t) => {
  const [a, b, late] = await members(3, 'pages');
  const g = (await group(a, [b], 'pages')).conversationId;
  await Promise.all([a, b].flatMap((u) => range(1, 10).map((k) => send(u, g, `${k}`))));
  const page = async (q: { before?: number; after?: number; limit?: number }, u: SocialUser = b) => {
    const p = await u.c.request('conversations:history', { conversationId: g, ...q });
    return [seqs(p.messages), p.hasMore] as const;
  };
  t.deepEqual(await page({ limit: 5 }), [range(17, 21), true], 'the latest');
  t.deepEqual(await page({ before: 17, limit: 5 }), [range(12, 16), true]);
  t.deepEqual(await page({ before: 3, limit: 5 }), [[1, 2], false]);
  t.deepEqual(await page({ before: 1 }), [[], false]);
  t.deepEqual(await page({ after: 0, limit: 5 }), [range(1, 5), true]);
  t.deepEqual(await page({ after: 18, limit: 5 }), [[19, 20, 21], false]);
  t.deepEqual(await page({ after: 21 }), [[], false]);
  t.deepEqual(await page({ after: 500 }), [[], false]);
  t.deepEqual(await page({}), [range(1, 21), false]);
  // Walking back from the end with before= visits every message once.
  const back: number[] = [];
  for (let before: number | undefined, more = true; more;) {
    const [s, hasMore] = await page({ ...(before !== undefined && { before }), limit: 4 });
    back.unshift(...s);
    more = hasMore;
    before = s[0];
  }
  t.deepEqual(back, range(1, 21));

  t.deepEqual(await a.c.request('conversations:addMembers', { conversationId: g, userIds: [late.userId] }), { added: [late.userId], invited: [] });
  await send(a, g, 'welcome');
  await send(b, g, 'hi');
  t.deepEqual(await page({}, late), [[22, 23, 24], false], 'from the join on');
  t.deepEqual(await page({ before: 22 }, late), [[], false]);
  t.deepEqual(await page({ before: 10, limit: 5 }, late), [[], false]);
  t.deepEqual(await page({ after: 0, limit: 2 }, late), [[22, 23], true]);
  t.deepEqual(await page({ after: 5, limit: 50 }, late), [[22, 23, 24], false]);
  t.like((await late.c.request('conversations:history', { conversationId: g })).messages[0], {
    kind: 'system',
    system: { action: 'added', userIds: [late.userId] },
  });
  t.like(await late.c.request('conversations:get', { conversationId: g }), { lastSeq: 24, unread: 3 });
  t.like(await send(late, g, 'my first'), { message: { seq: 25 } });
  t.is(
    await codeOf(late.c.request('conversations:send', { conversationId: g, clientMessageId: cmid(), text: 'x', replyTo: 5 })),
    'CONVERSATION_MESSAGE_NOT_FOUND',
    'no replies to the past',
  );
  t.is(await codeOf(late.c.request('conversations:edit', { conversationId: g, seq: 2, text: 'x' })), 'CONVERSATION_MESSAGE_NOT_FOUND');
  t.true(await eventually(async () => late.got.of(g).length === 4));
  t.deepEqual(seqs(late.got.of(g)), [22, 23, 24, 25], 'live from the join on, too');
  t.deepEqual(seqs(await fullHistory(b, g)), range(1, 25));
});

// ---- who may add whom (issue 13) ----

test('group adds need consent: only people a user follows add them directly (the default); anyone else sends an invite, and the invitee gets nothing but it until they accept', async (t) => {
  const [owner, friend, stranger, picky, open] = await users(5, 'consent');
  await friend.c.request('graph:follow', { userId: owner.userId });
  await picky.c.request('graph:follow', { userId: owner.userId });
  t.deepEqual(await stranger.c.request('conversations:settings', {}), { groupAdds: 'following' }, 'the default');
  t.deepEqual(await picky.c.request('conversations:updateSettings', { groupAdds: 'nobody' }), { groupAdds: 'nobody' });
  t.deepEqual(await open.c.request('conversations:updateSettings', { groupAdds: 'everyone' }), { groupAdds: 'everyone' });
  const ids = (us: { userId: string }[]) => us.map((u) => u.userId).sort();

  const g = await group(owner, [friend, stranger, picky, open], 'consent');
  const id = g.conversationId;
  t.deepEqual(ids(g.members), ids([owner, friend, open]), 'a follower of the owner, and who lets anyone add them');
  t.deepEqual([...g.invited].sort(), ids([stranger, picky]), 'a stranger, and a follower who lets nobody add them');
  t.is((await open.c.request('conversations:get', { conversationId: id })).folder, 'requests', 'added by someone they do not follow: a message request');
  t.like(await friend.c.request('conversations:get', { conversationId: id }), { folder: 'inbox', invited: g.invited });
  await send(owner, id, 'welcome, members');

  for (const u of [stranger, picky]) {
    t.like(await u.c.request('conversations:invites', {}), {
      items: [{ conversationId: id, title: 'consent', by: owner.userId, members: 3 }],
      nextCursor: null,
    });
    const refused = await Promise.all(
      [
        u.c.request('conversations:get', { conversationId: id }),
        u.c.request('conversations:history', { conversationId: id }),
        send(u, id, 'let me in'),
        u.c.request('conversations:markRead', { conversationId: id, seq: 1 }),
        u.c.request('conversations:typing', { conversationId: id }),
      ].map(codeOf),
    );
    t.deepEqual(refused, Array(5).fill('CONVERSATION_NOT_FOUND'), 'not a member');
    // Stored before the acks above: what the stream lacks now was never delivered.
    const stream = await streamOf(u);
    t.deepEqual(
      stream.map((e) => e.type),
      ['conversations:invited'],
      'the invite, and none of the messages',
    );
    t.like(stream[0]?.data, { conversationId: id, by: owner.userId, title: 'consent' });
  }
  t.is((await fullHistory(friend, id)).length, 2, 'invites take no sequence number');

  // Accepting: a member from the join on.
  const joined = await stranger.c.request('conversations:acceptInvite', { conversationId: id });
  t.like(joined, { folder: 'inbox', lastSeq: 3, unread: 0, invited: [picky.userId] });
  t.deepEqual(ids(joined.members), ids([owner, friend, open, stranger]));
  const readable = await fullHistory(stranger, id);
  t.is(readable.length, 1, 'history from the join on');
  t.like(readable[0], { seq: 3, kind: 'system', system: { action: 'joined', by: stranger.userId, userIds: [stranger.userId] } });
  await send(friend, id, 'hello, stranger');
  t.deepEqual(await streamedMessages(stranger, id), [3, 4], 'delivered from the join on');
  t.deepEqual(await streamedMessages(friend, id), [1, 2, 3, 4], 'the others are told of the join');
  t.like(await stranger.c.request('conversations:acceptInvite', { conversationId: id }), { lastSeq: 4 }, 'accepting again changes nothing');
  t.deepEqual((await stranger.c.request('conversations:invites', {})).items, []);

  // Declining: the invite goes, nothing else happens.
  t.deepEqual(await picky.c.request('conversations:declineInvite', { conversationId: id }), { changed: true });
  t.deepEqual(await picky.c.request('conversations:declineInvite', { conversationId: id }), { changed: false });
  t.is(await codeOf(picky.c.request('conversations:acceptInvite', { conversationId: id })), 'CONVERSATION_NOT_FOUND');
  t.deepEqual((await owner.c.request('conversations:get', { conversationId: id })).invited, []);

  // addMembers decides by the same setting; an invite is sent once and can be withdrawn.
  t.deepEqual(await owner.c.request('conversations:addMembers', { conversationId: id, userIds: [picky.userId] }), { added: [], invited: [picky.userId] });
  t.deepEqual(await owner.c.request('conversations:addMembers', { conversationId: id, userIds: [picky.userId] }), { added: [], invited: [] });
  t.deepEqual(await owner.c.request('conversations:removeMember', { conversationId: id, userId: picky.userId }), { changed: true }, 'withdrawn');
  t.deepEqual((await picky.c.request('conversations:invites', {})).items, []);
  t.is(await codeOf(picky.c.request('conversations:acceptInvite', { conversationId: id })), 'CONVERSATION_NOT_FOUND');
  t.deepEqual(await picky.c.request('conversations:updateSettings', { groupAdds: 'following' }), { groupAdds: 'following' });
  t.deepEqual(await owner.c.request('conversations:addMembers', { conversationId: id, userIds: [picky.userId] }), { added: [picky.userId], invited: [] });
  t.deepEqual(
    (await streamOf(picky)).map((e) => e.type),
    ['conversations:invited', 'conversations:invited', 'conversations:message'],
    'two invites, then the messages from the add on',
  );
  t.is(await lastSeq(owner, id), 5);
});

test('a block stops adds and invites either way; an invite from someone blocked later is left out of the list and cannot be accepted', async (t) => {
  const [x, y, z] = await users(3, 'blockinv');
  await x.c.request('graph:block', { userId: y.userId });
  t.is(await codeOf(group(y, [x])), 'GRAPH_BLOCKED', 'the blocked one cannot invite the blocker');
  t.is(await codeOf(group(x, [y])), 'GRAPH_BLOCKED', 'nor the blocker the blocked one');
  const g = await group(y, [z]);
  t.deepEqual(g.invited, [z.userId]);
  t.is(await codeOf(y.c.request('conversations:addMembers', { conversationId: g.conversationId, userIds: [x.userId] })), 'GRAPH_BLOCKED');
  t.deepEqual((await x.c.request('conversations:invites', {})).items, []);
  t.deepEqual(await streamOf(x), [], 'nothing reached the blocker');

  await z.c.request('graph:block', { userId: y.userId });
  t.deepEqual((await z.c.request('conversations:invites', {})).items, [], 'hidden once blocked');
  t.is(await codeOf(z.c.request('conversations:acceptInvite', { conversationId: g.conversationId })), 'GRAPH_BLOCKED');
  t.is(await codeOf(z.c.request('conversations:get', { conversationId: g.conversationId })), 'CONVERSATION_NOT_FOUND');
  t.deepEqual(await z.c.request('conversations:declineInvite', { conversationId: g.conversationId }), { changed: true }, 'declining still works');
});

// ---- personal-stream quotas of senders (issue 13) ----

test(`a sender over the quota into another user's stream (${QUOTA.perRecipient} bytes a day here) gets STREAM_QUOTA_EXCEEDED; nothing is stored or delivered`, async (t) => {
  const [a, b, c] = await members(3, 'quota');
  const d = (await a.c.request('conversations:openDirect', { userId: b.userId })).conversationId;
  const big = 'q'.repeat(4_000);
  let sent = 0;
  let refusal: unknown;
  let refusedKey = '';
  for (; sent < 100 && refusal === undefined; sent++) {
    refusedKey = cmid();
    await send(a, d, big, refusedKey).catch((err: unknown) => (refusal = err));
  }
  sent -= 1;
  t.true(refusal instanceof FlockRequestError && refusal.code === 'STREAM_QUOTA_EXCEEDED', String(refusal));
  const details = (refusal as FlockRequestError).details;
  t.like(details, { scope: 'recipient', limit: QUOTA.perRecipient });
  t.true(Number(details?.retryAfterMs) > 0 && Number(details?.retryAfterMs) <= 24 * 3_600_000);
  const eventBytes = QUOTA.perRecipient / sent;
  t.true(eventBytes > 4_000 && eventBytes < 4_600, `about ${sent} messages of 4,000 characters fit: ${eventBytes} bytes each`);

  t.is(await lastSeq(a, d), sent, 'the refused message took no sequence number');
  t.deepEqual(await streamedMessages(b, d), range(1, sent), 'and was not delivered');
  t.is(await codeOf(send(a, d, big, refusedKey)), 'STREAM_QUOTA_EXCEEDED', 'its resend key was not recorded either: refused again, not a duplicate');
  t.is(await codeOf(a.c.request('conversations:markRead', { conversationId: d, seq: 1 })), 'ok', 'nothing to deliver: a receipt that changes nothing');
  // The budget is per sender and recipient: b answers, and a still writes to c.
  t.like(await send(b, d, 'got them all'), { duplicate: false, message: { seq: sent + 1 } });
  const other = (await a.c.request('conversations:openDirect', { userId: c.userId })).conversationId;
  t.like(await send(a, other, big), { duplicate: false });
});

test(`a sender over the per-minute quota across recipients (${QUOTA.perMinute} bytes here) gets STREAM_QUOTA_EXCEEDED for a group message`, async (t) => {
  const [a, ...others] = await members(MAX_MEMBERS, 'quotamin');
  const g = (await group(a, others)).conversationId;
  const big = 'm'.repeat(4_000);
  let code = 'ok';
  let sent = 0;
  for (; sent < 100 && code === 'ok'; sent++) code = await codeOf(send(a, g, big));
  t.is(code, 'STREAM_QUOTA_EXCEEDED');
  sent -= 1;
  // Each message goes to the five others: the minute's budget lasts about 1 MiB / (5 x 4.4 KB).
  t.true(sent > 40 && sent < 52, `${sent} sent`);
  t.is(await lastSeq(a, g), 1 + sent);
  t.like(await send(others[0], g, 'someone else may still talk'), { duplicate: false, message: { seq: 2 + sent } });
});

// ---- bounds (issue 13) ----

test(`conversations:unread counts over the ${UNREAD_SCAN} most recently active conversations and says when there are more`, async (t) => {
  const [r, ...senders] = (await members(UNREAD_SCAN + 2, 'unreadcap')) as [Member, ...Member[]];
  await Promise.all(senders.map((s) => r.c.request('graph:follow', { userId: s.userId })));
  const direct: string[] = [];
  for (const [i, s] of senders.entries()) {
    const d = (await s.c.request('conversations:openDirect', { userId: r.userId })).conversationId;
    for (let k = 0; k <= i; k++) await send(s, d, `${i}/${k}`);
    direct.push(d); // oldest activity first: conversation i has i + 1 unread messages
  }
  const countOf = (idx: number[]) => ({ unread: idx.reduce((sum, i) => sum + i + 1, 0), conversations: idx.length, requests: 0, capped: true });
  const newest = range(senders.length - UNREAD_SCAN, senders.length - 1);
  t.deepEqual(await r.c.request('conversations:unread', {}), countOf(newest), 'the oldest conversation is left out');
  // Activity brings the oldest back into the counted ones (now with 2 unread) and pushes the next oldest out.
  await send(senders[0]!, direct[0]!, 'me again');
  t.deepEqual(await r.c.request('conversations:unread', {}), {
    ...countOf(newest.slice(1)),
    unread: countOf(newest.slice(1)).unread + 2,
    conversations: UNREAD_SCAN,
  });
});

// ---- resends (issue 13) ----

test('a resend after more than 500 later messages still returns the stored message, and within the window only', async (t) => {
  const all = await members(MAX_MEMBERS, 'resend500');
  const [a, ...rest] = all;
  const g = (await group(a, rest, 'resend window')).conversationId;
  const key = cmid();
  const first = await send(a, g, 'the one', key);
  // 510 messages from the five others (102 each, at their rate limit) before the retry.
  const PER_SENDER = 102;
  await Promise.all(
    rest.map(async (u) => {
      for (let k = 0; k < PER_SENDER; k++) await sendPaced(u, g, `${k}`);
    }),
  );
  t.is(await lastSeq(a, g), 2 + rest.length * PER_SENDER);
  const retried = await send(a, g, 'the one', key);
  t.true(retried.duplicate, 'recognised after 510 others');
  t.deepEqual(retried.message, first.message);
  t.is(await lastSeq(a, g), 2 + rest.length * PER_SENDER, 'nothing stored twice');
  t.is((await fullHistory(rest[0], g)).filter((m) => m.clientMessageId === key).length, 1);

  // Past the window (CONVERSATION_RESEND_WINDOW_HOURS) the key no longer names the message: the same id makes a new one.
  await cluster.withDb((db) =>
    db
      .collection<{ _id: string; expireAt: Date }>('message_keys')
      .updateOne({ _id: `${g}|${a.userId}|${key}` }, { $set: { expireAt: new Date(Date.now() - 1) } }),
  );
  t.like(await send(a, g, 'the one, a day later', key), { duplicate: false, message: { seq: 3 + rest.length * PER_SENDER } });
});

// ---- helpers ----

/** A fresh access token for a registered user (signs in again). */
async function tokenOf(u: SocialUser): Promise<string> {
  const c = await cluster.connect(u.node);
  const res = await c.request('auth:login', { identifier: u.username, password: 'correct horse 42' });
  c.close();
  return res.tokens.accessToken;
}
