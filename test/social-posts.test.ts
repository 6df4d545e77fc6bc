// Posts over real sockets on two nodes: create, reply, quote, repost, like,
// edit, delete and moderator removal; exact counts under concurrent likes
// from both nodes; visibility (followers-only, private accounts, deletion) on
// every read path; hashtags, mentions and trending; typed errors that change
// nothing.
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { newPostId } from '../social/ids.ts';
import { requireEnv } from './helpers/env.ts';
import { codeOf } from './helpers/outcome.ts';
import { SocialCluster, type SocialUser } from './helpers/social.ts';

const cluster = new SocialCluster();
// One post's likes are turns of one actor, one after another; on the embedded
// FerretDB each turn's two fenced writes take tens of milliseconds, so 400
// queued turns may need more than a minute on a busy machine. These tests
// assert counts, not latency (bench/social.ts measures that).
const SLOW = { timeoutMs: 120_000 };
test.before(() => cluster.start('posts', { ACTOR_ASK_TIMEOUT_MS: '120000' }));
test.after.always(() => cluster.stop());

async function allPages<T>(fetch: (cursor?: string) => Promise<{ items: T[]; nextCursor: string | null }>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 100; i++) {
    const page = await fetch(cursor);
    out.push(...page.items);
    if (!page.nextCursor) return out;
    cursor = page.nextCursor;
  }
  throw new Error('too many pages');
}

test('posts, replies and quotes carry author, counts, parsed hashtags and mentions, and thread together', async (t) => {
  const [a, b, c] = await cluster.users(3);
  const root = await a!.c.request('posts:create', { text: `Grüße aus #Zürich und #東京 @${b!.username}! mail me at x@${c!.username}.com #123 #Café` });
  t.is(root.kind, 'post');
  t.is(root.author.userId, a!.userId);
  t.deepEqual(root.hashtags, ['zürich', '東京', 'café']);
  t.deepEqual(root.mentions, [b!.userId]);
  t.deepEqual(root.counts, { likes: 0, replies: 0, reposts: 0, quotes: 0 });
  t.deepEqual(root.viewer, { liked: false, reposted: false });

  const r1 = await b!.c.request('posts:create', { text: 'first reply', replyTo: root.postId });
  const r2 = await c!.c.request('posts:create', { text: 'second reply', replyTo: root.postId });
  const r11 = await a!.c.request('posts:create', { text: 'reply to the reply', replyTo: r1.postId });
  t.is(r11.rootId, root.postId);
  t.is(r11.parentId, r1.postId);
  const q = await c!.c.request('posts:create', { text: 'look at this', quoteOf: root.postId });
  t.is(q.kind, 'quote');
  t.is(q.original?.postId, root.postId);

  const thread = await c!.c.request('posts:thread', { postId: r11.postId });
  t.deepEqual(
    thread.ancestors.map((p) => p.postId),
    [root.postId, r1.postId],
  );
  const rootThread = await b!.c.request('posts:thread', { postId: root.postId, limit: 1 });
  t.is(rootThread.post.counts.replies, 2);
  t.is(rootThread.post.counts.quotes, 1);
  const replies = await allPages((cursor) =>
    b!.c.request('posts:thread', { postId: root.postId, limit: 1, ...(cursor && { cursor }) }).then((th) => th.replies),
  );
  t.deepEqual(
    replies.map((p) => p.postId),
    [r1.postId, r2.postId],
    'direct replies, oldest first',
  );

  const events = await recentEvents(200);
  const created = events.find((e) => e.type === 'posts:created' && e.data.postId === root.postId);
  t.deepEqual(created?.data.mentions, [b!.userId], 'the mention is a domain event');
});

test('an idempotency key makes a resend return the same post', async (t) => {
  const a = await cluster.user(0);
  const first = await a.c.request('posts:create', { text: 'once only', idempotencyKey: 'key-0000001' });
  const again = await (await cluster.connect(1, await tokenOf(a))).request('posts:create', { text: 'once only', idempotencyKey: 'key-0000001' });
  t.is(again.postId, first.postId);
  const page = await a.c.request('posts:byUser', { userId: a.userId });
  t.is(page.items.length, 1);
});

test('200 concurrent likes from different users on both nodes count exactly 200, and 200 like-then-unlike pairs count 0', async (t) => {
  const author = await cluster.user(0);
  const likers = await cluster.quickUsers(200, 'liker');
  const p = await author.c.request('posts:create', { text: 'like me' });
  const p2 = await author.c.request('posts:create', { text: 'like and unlike me' });
  const results = await Promise.all(likers.map((l) => l.c.request('posts:like', { postId: p.postId }, SLOW)));
  t.true(results.every((r) => r.liked));
  await Promise.all(likers.slice(0, 50).map((l) => l.c.request('posts:like', { postId: p.postId }, SLOW)));
  t.is((await author.c.request('posts:get', { postId: p.postId })).counts.likes, 200);
  t.true((await likers[7]!.c.request('posts:get', { postId: p.postId })).viewer.liked);
  const likersListed = await allPages((cursor) => author.c.request('posts:likers', { postId: p.postId, limit: 50, ...(cursor && { cursor }) }));
  t.is(new Set(likersListed.map((u) => u.userId)).size, 200);

  await Promise.all(
    likers.map(async (l) => {
      await l.c.request('posts:like', { postId: p2.postId }, SLOW);
      await l.c.request('posts:unlike', { postId: p2.postId }, SLOW);
    }),
  );
  t.is((await author.c.request('posts:get', { postId: p2.postId })).counts.likes, 0);
  t.false((await likers[7]!.c.request('posts:get', { postId: p2.postId })).viewer.liked);
});

test('followers-only posts and private accounts never reach non-followers, on any read path', async (t) => {
  const [author, follower, stranger] = await cluster.users(3);
  await follower!.c.request('graph:follow', { userId: author!.userId });
  const tag = `secret${Date.now()}`;
  const open = await author!.c.request('posts:create', { text: `open #${tag}` });
  const closed = await author!.c.request('posts:create', { text: `closed #${tag}`, visibility: 'followers' });
  const reply = await follower!.c.request('posts:create', { text: 'reply to closed', replyTo: closed.postId });
  const quote = await follower!.c.request('posts:create', { text: 'quoting closed', quoteOf: closed.postId });

  const seenBy = async (u: SocialUser) => ({
    get: await codeOf(u.c.request('posts:get', { postId: closed.postId })),
    profile: (await u.c.request('posts:byUser', { userId: author!.userId })).items.map((p) => p.postId),
    tag: (await u.c.request('posts:hashtag', { tag })).items.map((p) => p.postId),
    thread: await codeOf(u.c.request('posts:thread', { postId: reply.postId })),
    quote: await u.c.request('posts:get', { postId: quote.postId }),
  });
  const f = await seenBy(follower!);
  t.is(f.get, 'ok');
  t.deepEqual(f.profile, [closed.postId, open.postId]);
  t.deepEqual(f.tag, [closed.postId, open.postId]);
  t.is(f.quote.original?.postId, closed.postId);
  const s = await seenBy(stranger!);
  t.is(s.get, 'POST_NOT_FOUND');
  t.deepEqual(s.profile, [open.postId]);
  t.deepEqual(s.tag, [open.postId]);
  t.is(s.quote.original, null);
  t.true(s.quote.originalUnavailable);
  t.is(await codeOf(stranger!.c.request('posts:like', { postId: closed.postId })), 'POST_NOT_FOUND');
  t.is(await codeOf(stranger!.c.request('posts:create', { text: 'sneaky', replyTo: closed.postId })), 'POST_NOT_FOUND');
  t.is(await codeOf(stranger!.c.request('posts:repost', { postId: closed.postId })), 'POST_NOT_FOUND');
  t.is(await codeOf(follower!.c.request('posts:repost', { postId: closed.postId })), 'POST_FORBIDDEN', 'followers-only posts cannot be reposted');

  // Going private hides even public posts from non-followers.
  await author!.c.request('users:updateProfile', { private: true });
  t.is(await codeOf(stranger!.c.request('posts:get', { postId: open.postId })), 'POST_NOT_FOUND');
  t.is(await codeOf(stranger!.c.request('posts:byUser', { userId: author!.userId })), 'GRAPH_PRIVATE_ACCOUNT');
  t.deepEqual((await stranger!.c.request('posts:hashtag', { tag })).items, []);
  t.is((await follower!.c.request('posts:get', { postId: open.postId })).postId, open.postId);
});

test('reposts are one per user and post, counted, undoable, and resolve reposts of reposts', async (t) => {
  const [author, r1, r2] = await cluster.users(3);
  const p = await author!.c.request('posts:create', { text: 'repost me' });
  const rp = await r1!.c.request('posts:repost', { postId: p.postId });
  t.is(rp.kind, 'repost');
  t.is(rp.original?.postId, p.postId);
  t.is((await r1!.c.request('posts:repost', { postId: p.postId })).postId, rp.postId, 'idempotent');
  const rp2 = await r2!.c.request('posts:repost', { postId: rp.postId });
  t.is(rp2.repostOf, p.postId, 'a repost of a repost reposts the original');
  let view = await r1!.c.request('posts:get', { postId: p.postId });
  t.is(view.counts.reposts, 2);
  t.true(view.viewer.reposted);
  t.deepEqual(
    (await author!.c.request('posts:byUser', { userId: r1!.userId })).items.map((x) => x.postId),
    [rp.postId],
  );

  t.deepEqual(await r1!.c.request('posts:undoRepost', { postId: p.postId }), { changed: true });
  t.deepEqual(await r1!.c.request('posts:undoRepost', { postId: p.postId }), { changed: false });
  view = await r1!.c.request('posts:get', { postId: p.postId });
  t.is(view.counts.reposts, 1);
  t.false(view.viewer.reposted);
  t.deepEqual((await author!.c.request('posts:byUser', { userId: r1!.userId })).items, []);
  t.is((await r1!.c.request('posts:repost', { postId: p.postId })).postId, rp.postId, 'reposting again brings the same repost back');
  t.is((await author!.c.request('posts:get', { postId: p.postId })).counts.reposts, 2);
});

test('edits keep history; only authors edit or delete; deletion empties every list; moderators remove with a reason', async (t) => {
  const [author, other, mod] = await cluster.users(3);
  const tag = `gone${Date.now()}`;
  const p = await author!.c.request('posts:create', { text: `first #${tag}` });
  const reply = await other!.c.request('posts:create', { text: 'a reply', replyTo: p.postId });
  const quote = await other!.c.request('posts:create', { text: 'a quote', quoteOf: p.postId });
  const edited = await author!.c.request('posts:edit', { postId: p.postId, text: `second #${tag} #extra` });
  t.is(edited.text, `second #${tag} #extra`);
  t.deepEqual(edited.hashtags, [tag, 'extra']);
  t.is(edited.edits, 1);
  t.truthy(edited.editedAt);
  const history = await other!.c.request('posts:history', { postId: p.postId });
  t.deepEqual(
    history.edits.map((e) => e.text),
    [`first #${tag}`],
  );

  t.is(await codeOf(other!.c.request('posts:edit', { postId: p.postId, text: 'hijack' })), 'POST_FORBIDDEN');
  t.is(await codeOf(other!.c.request('posts:delete', { postId: p.postId })), 'POST_FORBIDDEN');
  t.is(await codeOf(other!.c.request('posts:remove', { postId: p.postId, reason: 'spam' })), 'AUTH_FORBIDDEN');
  t.is((await author!.c.request('posts:get', { postId: p.postId })).text, `second #${tag} #extra`, 'unchanged');

  // The author deletes the reply's parent? No: the replier deletes the reply, and the parent's count follows.
  t.deepEqual(await other!.c.request('posts:delete', { postId: reply.postId }), { changed: true });
  t.is((await author!.c.request('posts:get', { postId: p.postId })).counts.replies, 0);
  t.deepEqual((await author!.c.request('posts:thread', { postId: p.postId })).replies.items, []);

  t.deepEqual(await author!.c.request('posts:delete', { postId: p.postId }), { changed: true });
  t.deepEqual(await author!.c.request('posts:delete', { postId: p.postId }), { changed: false });
  t.is(await codeOf(other!.c.request('posts:get', { postId: p.postId })), 'POST_NOT_FOUND');
  t.is(await codeOf(author!.c.request('posts:get', { postId: p.postId })), 'POST_NOT_FOUND');
  t.deepEqual((await other!.c.request('posts:byUser', { userId: author!.userId })).items, []);
  t.deepEqual((await other!.c.request('posts:hashtag', { tag })).items, []);
  t.true((await other!.c.request('posts:get', { postId: quote.postId })).originalUnavailable);
  t.is(await codeOf(other!.c.request('posts:like', { postId: p.postId })), 'POST_NOT_FOUND');
  t.is(await codeOf(other!.c.request('posts:create', { text: 'late reply', replyTo: p.postId })), 'POST_NOT_FOUND');

  // Moderator removal.
  await setRoles(mod!.userId, ['user', 'moderator']);
  const modSocket = await cluster.connect(1, await tokenOf(mod!));
  const bad = await other!.c.request('posts:create', { text: 'something awful' });
  t.deepEqual(await modSocket.request('posts:remove', { postId: bad.postId, reason: 'harassment' }), { changed: true });
  t.is(await codeOf(other!.c.request('posts:get', { postId: bad.postId })), 'POST_NOT_FOUND');
  const stored = await postDoc(bad.postId);
  t.deepEqual(stored?.removal, { by: mod!.userId, reason: 'harassment' });
});

test('bad post input gets typed errors and changes nothing', async (t) => {
  const [a, b] = await cluster.users(2);
  const p = await a!.c.request('posts:create', { text: 'original' });
  t.is(await codeOf(a!.c.request('posts:create', { text: 'x'.repeat(2001) })), 'REQUEST_INVALID');
  t.is(await codeOf(a!.c.request('posts:create', { text: '🙂'.repeat(2000) })), 'ok', 'the limit counts characters, not UTF-16 units');
  t.is(await codeOf(a!.c.request('posts:create', { text: '   ' })), 'REQUEST_INVALID');
  t.is(await codeOf(a!.c.request('posts:create', {})), 'REQUEST_INVALID');
  t.is(await codeOf(a!.c.request('posts:create', { text: 'both', replyTo: p.postId, quoteOf: p.postId })), 'REQUEST_INVALID');
  t.is(await codeOf(a!.c.request('posts:create', { text: 'media', mediaIds: ['not-a-media-id'] })), 'REQUEST_INVALID');
  t.is(await codeOf(a!.c.request('posts:create', { text: 'reply', replyTo: 'p_AAAAAAAAAAAAAAAAAAAAAA' })), 'POST_NOT_FOUND');
  t.is(await codeOf(a!.c.request('posts:get', { postId: 'nope' })), 'REQUEST_INVALID');
  t.is(await codeOf(a!.c.request('posts:like', { postId: 'p_AAAAAAAAAAAAAAAAAAAAAA' })), 'POST_NOT_FOUND');
  t.is(await codeOf(a!.c.request('posts:byUser', { userId: a!.userId, cursor: 'bm90LWpzb24' })), 'REQUEST_CURSOR_INVALID');
  t.is(await codeOf(a!.c.request('posts:hashtag', { tag: '!!!' })), 'REQUEST_INVALID');
  t.is(await codeOf(a!.c.request('posts:byUser', { userId: 'u_nobody' })), 'USER_NOT_FOUND');
  t.is(await codeOf(b!.c.request('posts:edit', { postId: p.postId, text: 'mine now' })), 'POST_FORBIDDEN');
  t.is(await codeOf(a!.c.request('posts:edit', { postId: p.postId, text: 'y'.repeat(2001) })), 'REQUEST_INVALID');
  const after = await b!.c.request('posts:get', { postId: p.postId });
  t.is(after.text, 'original');
  t.is(after.edits, 0);
  t.deepEqual(after.counts, { likes: 0, replies: 0, reposts: 0, quotes: 0 });
  t.is((await a!.c.request('posts:byUser', { userId: a!.userId })).items.length, 2);
});

test('trending counts each author once per tag and window, and profile pages paginate without gaps', async (t) => {
  const tag = `trend${Date.now().toString(36)}`;
  const authors = await cluster.users(6, 'tr');
  await Promise.all(authors.map((u) => u.c.request('posts:create', { text: `#${tag} number one` })));
  await authors[0]!.c.request('posts:create', { text: `#${tag} again, same author` });
  const top = await authors[1]!.c.request('posts:trending', { limit: 50 });
  t.deepEqual(
    top.tags.find((x) => x.tag === tag),
    { tag, count: 6 },
  );

  const writer = authors[2]!;
  const ids: string[] = [];
  for (let i = 0; i < 23; i++) ids.push((await writer.c.request('posts:create', { text: `post ${i}` })).postId);
  const listed = await allPages((cursor) => authors[3]!.c.request('posts:byUser', { userId: writer.userId, limit: 5, ...(cursor && { cursor }) }));
  t.deepEqual(
    listed.map((p) => p.postId).filter((id) => ids.includes(id)),
    [...ids].reverse(),
  );
});

/** How the effects of a change are stored: as JSON of the effect (now), or as the bookkeeping objects of 0.1 (read for one release). */
const stored = {
  current: {
    like: (member: string) => JSON.stringify({ kind: 'edge', edge: 'like', member, status: 'active' }),
    link: (target: string) => JSON.stringify({ kind: 'link', childKind: 'reply', target }),
  },
  legacy: {
    like: (member: string) => ({ op: 'edge', kind: 'like', ref: member, status: 'active' }),
    link: (target: string) => ({ op: 'link', kind: 'reply', ref: target, status: '' }),
  },
};

for (const format of ['current', 'legacy'] as const) {
  test(`an owner that crashed after writing a post but before its effects (${format} format): the next activation finishes them`, (t) =>
    crashedEffects(t, stored[format]));
}

async function crashedEffects(t: ExecutionContext, effects: (typeof stored)[keyof typeof stored]): Promise<void> {
  const [author, liker, other] = await cluster.users(3);
  const parent = await author!.c.request('posts:create', { text: 'parent' });
  // What a PostActor leaves when it dies between its document write and the
  // effects recorded in `pending`: a like counted but its edge not written,
  // and a reply whose parent was never told.
  const base = {
    text: 'crashed',
    mediaIds: [],
    visibility: 'public',
    rootId: null,
    quoteOf: null,
    repostOf: null,
    hashtags: [],
    mentions: [],
    replies: 0,
    reposts: 0,
    quotes: 0,
    edits: [],
    editedAt: null,
    deleted: false,
    deletedAt: null,
    removal: null,
    epoch: 0,
  };
  const likedId = newPostId();
  const replyId = newPostId();
  await cluster.withDb(async (db) => {
    await db.collection('posts').insertMany([
      {
        _id: likedId,
        ...base,
        kind: 'post',
        authorId: author!.userId,
        parentId: null,
        likes: 1,
        createdAt: new Date(),
        pending: [effects.like(liker!.userId)],
      },
      {
        _id: replyId,
        ...base,
        kind: 'reply',
        authorId: other!.userId,
        parentId: parent.postId,
        rootId: parent.postId,
        likes: 0,
        createdAt: new Date(),
        pending: [effects.link(parent.postId)],
      },
    ] as never[]);
  });
  t.false((await liker!.c.request('posts:get', { postId: likedId })).viewer.liked, 'reads do not activate the actor');
  t.is((await author!.c.request('posts:get', { postId: parent.postId })).counts.replies, 0);

  // Any message wakes each actor; the effects left over are redone before it.
  t.deepEqual(await other!.c.request('posts:like', { postId: likedId }), { liked: true, likes: 2 });
  await author!.c.request('posts:like', { postId: replyId });
  const liked = await liker!.c.request('posts:get', { postId: likedId });
  t.true(liked.viewer.liked);
  t.is(liked.counts.likes, 2);
  t.deepEqual(await liker!.c.request('posts:like', { postId: likedId }), { liked: true, likes: 2 }, 'the redone like is not counted twice');
  t.is((await author!.c.request('posts:get', { postId: parent.postId })).counts.replies, 1);
  t.deepEqual(
    (await author!.c.request('posts:thread', { postId: parent.postId })).replies.items.map((p) => p.postId),
    [replyId],
  );
}

// ---- helpers ----

async function recentEvents(count: number): Promise<{ type: string; data: Record<string, unknown> }[]> {
  const redis = new Redis(requireEnv('REDIS_URL'));
  try {
    const entries = await redis.xrevrange(`${cluster.redisPrefix}:social:events`, '+', '-', 'COUNT', count);
    return entries.map(([, fields]) => JSON.parse(fields[1]!) as { type: string; data: Record<string, unknown> });
  } finally {
    redis.disconnect();
  }
}

function postDoc(id: string) {
  return cluster.withDb((db) => db.collection<{ _id: string; removal: unknown }>('posts').findOne({ _id: id }));
}

async function setRoles(userId: string, roles: string[]): Promise<void> {
  await cluster.withDb((db) => db.collection<{ _id: string }>('accounts').updateOne({ _id: userId }, { $set: { roles } }));
}

/** A fresh access token for the user (signs in again, so new roles apply). */
async function tokenOf(u: SocialUser): Promise<string> {
  const c = await cluster.connect(u.node);
  const res = await c.request('auth:login', { identifier: u.username, password: 'correct horse 42' });
  c.close();
  return res.tokens.accessToken;
}
