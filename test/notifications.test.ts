// Notifications over real sockets on two nodes: domain events (likes, replies,
// quotes, reposts, mentions, follows, follow requests) become notifications of
// the right kind, grouped while unread, delivered live on the recipient's
// personal stream, with an exact unread count under concurrent likes; never
// for one's own actions, blocked or muted users, or muted kinds; offline users
// get one push outbox entry per notification version, sent by the pushOutbox
// job; a deleted post takes back the notifications about it.
import test from 'ava';
import { eventually } from './helpers/node-process.ts';
import { codeOf } from './helpers/outcome.ts';
import { SocialCluster, type SocialUser } from './helpers/social.ts';
import type { StreamEvent } from '../client/flock-client.ts';

const cluster = new SocialCluster();
const SLOW = { timeoutMs: 120_000 };
test.before(() => cluster.start('notif', { ACTOR_ASK_TIMEOUT_MS: '120000' }));
test.after.always(() => cluster.stop());

type Changed = Extract<StreamEvent, { type: 'notifications:changed' }>;
type Notification = Changed['data']['notification'];

/** The notification events pushed live to a user's socket. */
function liveNotifications(u: SocialUser): Changed[] {
  const seen: Changed[] = [];
  u.c.on('stream:event', (e) => {
    if (e.type === 'notifications:changed') seen.push(e);
  });
  return seen;
}

async function inbox(u: SocialUser): Promise<Notification[]> {
  return (await u.c.request('notifications:list', { limit: 50 })).items;
}

async function inboxWhen(u: SocialUser, ok: (items: Notification[]) => boolean, timeoutMs = 30_000): Promise<Notification[]> {
  let items: Notification[] = [];
  await eventually(async () => ok((items = await inbox(u))), timeoutMs, 200);
  return items;
}

test('likes group into one notification while it is unread; reading closes the group; the author hears it live', async (t) => {
  const [author, ...likers] = await cluster.users(5, 'n');
  const live = liveNotifications(author!);
  const post = await author!.c.request('posts:create', { text: 'like me' });
  await likers[0]!.c.request('posts:like', { postId: post.postId });
  let items = await inboxWhen(author!, (i) => i.length === 1);
  t.is(items[0]!.kind, 'like');
  t.is(items[0]!.subjectId, post.postId);
  t.is(items[0]!.actorCount, 1);
  t.is((await author!.c.request('notifications:unread', {})).unread, 1);

  for (const l of likers.slice(1, 3)) await l.c.request('posts:like', { postId: post.postId });
  items = await inboxWhen(author!, (i) => i[0]?.actorCount === 3);
  t.is(items.length, 1, 'one grouped notification');
  t.deepEqual(
    items[0]!.actors.map((a) => a.userId),
    [likers[2]!.userId, likers[1]!.userId, likers[0]!.userId],
    'latest actors first',
  );
  t.is((await author!.c.request('notifications:unread', {})).unread, 1, 'a group counts once');
  t.true(await eventually(async () => live.some((e) => e.data.notification.actorCount === 3 && e.data.unread === 1)), 'pushed live with the count');

  // Unlike and like again: the same liker does not count twice.
  await likers[0]!.c.request('posts:unlike', { postId: post.postId });
  await likers[0]!.c.request('posts:like', { postId: post.postId });
  // likers[2] liked last so far: likers[0] comes first once the new like is folded in.
  items = await inboxWhen(author!, (i) => i[0]?.actors[0]?.userId === likers[0]!.userId);
  t.is(items[0]!.actorCount, 3);

  t.is((await author!.c.request('notifications:markRead', { ids: [items[0]!.notificationId] })).unread, 0);
  await likers[3]!.c.request('posts:like', { postId: post.postId });
  items = await inboxWhen(author!, (i) => i.length === 2);
  t.is(items[0]!.actorCount, 1, 'a read group is closed: the next like starts a new notification');
  t.false(items[0]!.read);
  t.true(items[1]!.read);
  t.is((await author!.c.request('notifications:markAllRead', {})).unread, 0);
  t.true((await inbox(author!)).every((n) => n.read));
});

test('concurrent likes from both nodes: one notification, every liker counted once, unread exactly 1', async (t) => {
  const [author] = await cluster.users(1, 'c');
  const likers = await cluster.quickUsers(40, 'cl');
  const post = await author!.c.request('posts:create', { text: 'popular' });
  await Promise.all(likers.map((l) => l.c.request('posts:like', { postId: post.postId }, SLOW)));
  const items = await inboxWhen(author!, (i) => i[0]?.actorCount === 40, 90_000);
  t.is(items.length, 1);
  t.is(items[0]!.actorCount, 40);
  t.is((await author!.c.request('notifications:unread', {})).unread, 1);
});

test('replies, quotes, reposts, mentions, follows and follow requests notify the right user with the right kind', async (t) => {
  const [a, b, c] = await cluster.users(3, 'k');
  const post = await a!.c.request('posts:create', { text: 'root' });
  const reply = await b!.c.request('posts:create', { text: 'a reply', replyTo: post.postId });
  const quote = await c!.c.request('posts:create', { text: 'a quote', quoteOf: post.postId });
  await b!.c.request('posts:repost', { postId: post.postId });
  const mention = await b!.c.request('posts:create', { text: `hello @${c!.username}` });
  await b!.c.request('graph:follow', { userId: a!.userId });
  await a!.c.request('users:updateProfile', { private: true });
  await c!.c.request('graph:follow', { userId: a!.userId });

  const items = await inboxWhen(a!, (i) => i.length === 5);
  const byKind = new Map(items.map((n) => [n.kind, n]));
  t.deepEqual([...byKind.keys()].sort(), ['follow', 'follow_request', 'quote', 'reply', 'repost']);
  t.is(byKind.get('reply')!.postId, reply.postId);
  t.is(byKind.get('reply')!.subjectId, post.postId);
  t.is(byKind.get('quote')!.postId, quote.postId);
  t.is(byKind.get('repost')!.actors[0]!.userId, b!.userId);
  t.is(byKind.get('follow')!.actors[0]!.userId, b!.userId);
  t.is(byKind.get('follow_request')!.actors[0]!.userId, c!.userId);
  // Pages of 2 run through the same 5, latest activity first.
  const paged: string[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 5; i++) {
    const page = await a!.c.request('notifications:list', { limit: 2, ...(cursor && { cursor }) });
    paged.push(...page.items.map((n) => n.notificationId));
    if (!page.nextCursor) break;
    cursor = page.nextCursor;
  }
  t.deepEqual(
    paged,
    items.map((n) => n.notificationId),
  );
  const cItems = await inboxWhen(c!, (i) => i.some((n) => n.kind === 'mention'));
  t.is(cItems.find((n) => n.kind === 'mention')!.postId, mention.postId);
});

test('deleting a post takes back the notifications about it: out of the inbox and the unread count, live to the recipients', async (t) => {
  const [author, liker, mentioned] = await cluster.users(3, 'r');
  const retracted: { notificationIds: string[]; unread: number }[] = [];
  author!.c.on('stream:event', (e) => {
    if (e.type === 'notifications:retracted') retracted.push(e.data);
  });
  const kept = await author!.c.request('posts:create', { text: 'stays' });
  const doomed = await author!.c.request('posts:create', { text: `goes, with @${mentioned!.username}` });
  await liker!.c.request('posts:like', { postId: doomed.postId });
  await liker!.c.request('posts:like', { postId: kept.postId });
  await liker!.c.request('posts:create', { text: 'a reply', replyTo: doomed.postId });
  await inboxWhen(author!, (i) => i.length === 3);
  t.is((await author!.c.request('notifications:unread', {})).unread, 3);
  await inboxWhen(mentioned!, (i) => i.some((n) => n.kind === 'mention'));

  await author!.c.request('posts:delete', { postId: doomed.postId });
  const items = await inboxWhen(author!, (i) => i.length === 1);
  t.deepEqual(
    items.map((n) => [n.kind, n.subjectId]),
    [['like', kept.postId]],
  );
  t.is((await author!.c.request('notifications:unread', {})).unread, 1);
  t.true(await eventually(async () => retracted.some((r) => r.notificationIds.length === 2 && r.unread === 1)), 'told live');
  t.deepEqual(await inboxWhen(mentioned!, (i) => i.length === 0), []);
  t.is((await mentioned!.c.request('notifications:unread', {})).unread, 0);

  t.is((await author!.c.request('notifications:markAllRead', {})).unread, 0);
});

test('no notification for your own actions, from blocked or muted users, or of a muted kind; followers-only posts mention only those who may see them', async (t) => {
  const [a, blocked, muted, friend, stranger] = await cluster.users(5, 'r');
  const post = await a!.c.request('posts:create', { text: 'mine' });
  await a!.c.request('posts:like', { postId: post.postId });
  await a!.c.request('graph:mute', { userId: muted!.userId });
  await muted!.c.request('posts:like', { postId: post.postId });
  await a!.c.request('graph:block', { userId: blocked!.userId });
  await blocked!.c.request('posts:create', { text: `hey again @${a!.username}` });
  t.deepEqual((await a!.c.request('notifications:setPreferences', { mutedKinds: ['repost'] })).mutedKinds, ['repost']);
  await friend!.c.request('posts:repost', { postId: post.postId });
  await friend!.c.request('posts:create', { text: 'nice', replyTo: post.postId });
  // A followers-only post mentioning someone who does not follow the author.
  await friend!.c.request('posts:create', { text: `secret @${stranger!.username}`, visibility: 'followers' });
  // Once every event so far has been handled, what did not make a notification never will.
  await cluster.eventsSettled('notifications');
  const kinds = (await inbox(a!)).map((n) => `${n.kind}:${n.actors[0]?.userId}`);
  t.deepEqual(kinds, [`reply:${friend!.userId}`], `got ${kinds.join(', ')}`);
  t.deepEqual((await a!.c.request('notifications:preferences', {})).mutedKinds, ['repost']);
  t.deepEqual(await inbox(stranger!), []);
});

test('an offline user gets one push outbox entry per notification version, and the job sends it', async (t) => {
  const [author, liker] = await cluster.users(2, 'p');
  const post = await author!.c.request('posts:create', { text: 'while you sleep' });
  // The liker watches the author's presence, so the like comes once the author is known to be offline.
  const offline = new Promise<void>((resolve) => liker!.c.on('presence:update', (change) => change.userId === author!.userId && !change.online && resolve()));
  await liker!.c.request('presence:watch', { userIds: [author!.userId] });
  author!.c.close();
  await Promise.race([offline, new Promise((_, reject) => setTimeout(() => reject(new Error('the author was not seen offline within 60 s')), 60_000))]);
  await liker!.c.request('posts:like', { postId: post.postId });
  await cluster.withDb(async (db) => {
    const outbox = db.collection('push_outbox');
    t.true(await eventually(async () => (await outbox.countDocuments({ userId: author!.userId, status: 'sent' })) === 1, 30_000, 250), 'sent by the job');
    const entries = await outbox.find({ userId: author!.userId }).toArray();
    t.is(entries.length, 1);
    t.is(entries[0]!.attempts, 1);
    t.like(JSON.parse(String(entries[0]!.payload)) as unknown, { kind: 'like' });
  });
});

test('bad input is refused with typed errors and changes nothing', async (t) => {
  const [a, b] = await cluster.users(2, 'b');
  const post = await a!.c.request('posts:create', { text: 'x' });
  await b!.c.request('posts:like', { postId: post.postId });
  const [mine] = await inboxWhen(a!, (i) => i.length === 1);
  t.is(await codeOf(a!.c.request('notifications:list', { cursor: 'not-a-cursor' })), 'REQUEST_CURSOR_INVALID');
  t.is(await codeOf(a!.c.request('notifications:setPreferences', { mutedKinds: ['nope'] } as never)), 'REQUEST_INVALID');
  t.is(await codeOf(a!.c.request('notifications:markRead', { ids: [] })), 'REQUEST_INVALID');
  t.is(await codeOf(a!.c.request('notifications:markRead', { ids: Array.from({ length: 101 }, (_, i) => `x${i}`) })), 'REQUEST_INVALID');
  // Someone else's notification id: nothing happens to it.
  t.is((await b!.c.request('notifications:markRead', { ids: [mine!.notificationId] })).unread, 0);
  t.false((await inbox(a!))[0]!.read);
  t.is((await a!.c.request('notifications:unread', {})).unread, 1);
});
