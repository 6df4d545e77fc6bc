// Home timelines over real sockets on two nodes: fan-out on write below the
// threshold and the merge path above it; live delivery to every watching
// follower exactly once, on either node; catch-up after a reconnect without
// gaps or duplicates; follow backfill; unfollow, block, mute and delete
// remove; pagination across both sources; the "for you" ranking.
import test from 'ava';
import { Redis } from 'ioredis';
import { requireEnv } from './helpers/env.ts';
import { eventually } from './helpers/node-process.ts';
import { codeOf } from './helpers/outcome.ts';
import { SocialCluster, type SocialUser } from './helpers/social.ts';

const THRESHOLD = 40;
const cluster = new SocialCluster();
const SLOW = { timeoutMs: 120_000 };
test.before(() => cluster.start('feeds', { ACTOR_ASK_TIMEOUT_MS: '120000', FEED_FANOUT_THRESHOLD: String(THRESHOLD) }));
test.after.always(() => cluster.stop());

type Post = { postId: string; author: { userId: string }; createdAt: number };

function livePosts(u: SocialUser): { posts: Post[]; cursors: string[]; deleted: string[] } {
  const seen = { posts: [] as Post[], cursors: [] as string[], deleted: [] as string[] };
  u.c.socket.on('feeds:post', (e: { post: Post; cursor: string }) => {
    seen.posts.push(e.post);
    seen.cursors.push(e.cursor);
  });
  u.c.socket.on('feeds:deleted', (e: { postId: string }) => seen.deleted.push(e.postId));
  return seen;
}

async function home(u: SocialUser, limit = 50): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 50; i++) {
    const page = await u.c.request('feeds:home', { limit, ...(cursor && { cursor }) }, SLOW);
    out.push(...page.items.map((p) => p.postId));
    if (!page.nextCursor) return out;
    cursor = page.nextCursor;
  }
  throw new Error('too many pages');
}

async function followAll(followers: SocialUser[], author: SocialUser): Promise<void> {
  await Promise.all(followers.map((f) => f.c.request('graph:follow', { userId: author.userId }, SLOW)));
}

for (const [name, followerCount] of [
  ['fan-out on write', 12],
  ['merge at read time (above the threshold)', THRESHOLD + 10],
] as const) {
  test(`${name}: every watching follower on either node gets a new post live exactly once and finds it at the top of the home timeline`, async (t) => {
    const [author] = await cluster.users(1, 'a');
    const followers = await cluster.quickUsers(followerCount, 'f');
    await followAll(followers, author!);
    const live = followers.map(livePosts);
    await Promise.all(followers.map((f) => f.c.request('feeds:watch', {})));
    const first = await author!.c.request('posts:create', { text: 'one' });
    const second = await author!.c.request('posts:create', { text: 'two' });
    t.true(await eventually(async () => live.every((l) => l.posts.length >= 2), 30_000), `live: ${live.map((l) => l.posts.length).join(',')}`);
    // A third post closes the check: a repeat of the first two would have been sent before it.
    const third = await author!.c.request('posts:create', { text: 'three' });
    t.true(await eventually(async () => live.every((l) => l.posts.some((p) => p.postId === third.postId)), 30_000));
    for (const l of live)
      t.deepEqual(
        l.posts.map((p) => p.postId),
        [first.postId, second.postId, third.postId],
        'exactly once, in order',
      );
    t.true(followers.some((f) => f.node === 0) && followers.some((f) => f.node === 1));
    await cluster.eventsSettled('feeds'); // live goes out before the stored feeds are written
    for (const f of [followers[0]!, followers[1]!, followers.at(-1)!]) t.deepEqual((await home(f)).slice(0, 3), [third.postId, second.postId, first.postId]);
    t.deepEqual((await home(author!)).slice(0, 3), [third.postId, second.postId, first.postId], 'authors see their own posts');
    // Which path carried it: the followers' stored feeds hold the post only below the threshold.
    const redis = new Redis(requireEnv('REDIS_URL'));
    try {
      const stored = await redis.zscore(`${cluster.redisPrefix}:feed:${followers[0]!.userId}`, first.postId);
      t.is(stored !== null, followerCount < THRESHOLD, `stored in the follower's feed: ${String(stored)}`);
      t.is(await redis.sismember(`${cluster.redisPrefix}:feed:celebrities`, author!.userId), followerCount < THRESHOLD ? 0 : 1);
    } finally {
      redis.disconnect();
    }
  });
}

test('pages run across stored feeds and merged authors without gaps or repeats, newest first', async (t) => {
  const [reader, small] = await cluster.users(2, 'p');
  const [big] = await cluster.users(1, 'b');
  const crowd = await cluster.quickUsers(THRESHOLD, 'c');
  await followAll([...crowd, reader!], big!);
  await reader!.c.request('graph:follow', { userId: small!.userId });
  const made: string[] = [];
  for (let i = 0; i < 6; i++) {
    made.push((await small!.c.request('posts:create', { text: `small ${i}` })).postId);
    made.push((await big!.c.request('posts:create', { text: `big ${i}` })).postId);
  }
  await eventually(async () => (await home(reader!)).length === made.length, 20_000);
  t.deepEqual(await home(reader!, 5), [...made].reverse(), 'pages of 5');
  t.deepEqual(await home(reader!, 1), [...made].reverse(), 'pages of 1');
});

test('after a reconnect, feeds:since returns exactly what was missed, oldest first', async (t) => {
  const [author] = await cluster.users(1, 's');
  const [reader] = await cluster.quickUsers(1, 'sr');
  await reader!.c.request('graph:follow', { userId: author!.userId });
  const live = livePosts(reader!);
  await reader!.c.request('feeds:watch', {});
  const seen = await author!.c.request('posts:create', { text: 'seen live' });
  t.true(await eventually(async () => live.posts.length === 1));
  const cursor = live.cursors[0]!;
  reader!.c.close();
  const missed: string[] = [];
  for (let i = 0; i < 7; i++) missed.push((await author!.c.request('posts:create', { text: `missed ${i}` })).postId);
  const back = await cluster.connect(reader!.node, await tokenOf(reader!));
  const got: string[] = [];
  let next = cursor;
  for (let i = 0; i < 10; i++) {
    const page = await back.request('feeds:since', { cursor: next, limit: 3 });
    got.push(...page.items.map((p) => p.postId));
    next = page.nextCursor;
    if (!page.more) break;
  }
  t.deepEqual(got, missed);
  t.false(got.includes(seen.postId));
  t.deepEqual((await back.request('feeds:since', { cursor: next, limit: 3 })).items, [], 'nothing twice');
  t.is(await codeOf(back.request('feeds:since', { cursor: 'garbage!' })), 'REQUEST_INVALID');
  t.is(await codeOf(back.request('feeds:since', { cursor: 'Z2FyYmFnZQ', limit: 3 })), 'REQUEST_CURSOR_INVALID');
});

test('follow backfills; unfollow, block and mute remove; deletion removes everywhere and live', async (t) => {
  const [author, reader, other] = await cluster.users(3, 'r');
  const early = await author!.c.request('posts:create', { text: 'before the follow' });
  await reader!.c.request('graph:follow', { userId: other!.userId });
  await home(reader!); // the stored feed exists now
  await reader!.c.request('graph:follow', { userId: author!.userId });
  t.true(await eventually(async () => (await home(reader!)).includes(early.postId)), 'backfilled');

  const live = livePosts(reader!);
  await reader!.c.request('feeds:watch', {});
  const doomed = await author!.c.request('posts:create', { text: 'soon gone' });
  t.true(await eventually(async () => live.posts.some((p) => p.postId === doomed.postId)));
  await author!.c.request('posts:delete', { postId: doomed.postId });
  t.true(await eventually(async () => live.deleted.includes(doomed.postId)), 'feeds:deleted live');
  t.false((await home(reader!)).includes(doomed.postId));

  await reader!.c.request('graph:mute', { userId: author!.userId });
  const muted = await author!.c.request('posts:create', { text: 'while muted' });
  t.false((await home(reader!)).includes(muted.postId));
  // Once the post went live to whoever watches, a later post of someone the reader watches arrives: the muted one would have come first.
  await cluster.eventsSettled('feeds'); // the feeds consumer has handled the post, live emit included
  const marker = await other!.c.request('posts:create', { text: 'a later post' });
  t.true(await eventually(async () => live.posts.some((p) => p.postId === marker.postId)));
  t.false(
    live.posts.some((p) => p.postId === muted.postId),
    'no live post from a muted author',
  );
  await cluster.eventsSettled('feeds'); // the muted post is in the stored feed, hidden by the read
  await reader!.c.request('graph:unmute', { userId: author!.userId });
  t.true((await home(reader!)).includes(muted.postId));

  await reader!.c.request('graph:unfollow', { userId: author!.userId });
  t.false(
    (await home(reader!)).some((id) => [early.postId, muted.postId].includes(id)),
    'unfollow removes at once',
  );
  const afterUnfollow = await author!.c.request('posts:create', { text: 'after unfollow' });
  await cluster.eventsSettled('feeds'); // the feeds consumer has handled the post, live emit included
  const laterMarker = await other!.c.request('posts:create', { text: 'another later post' });
  t.true(await eventually(async () => live.posts.some((p) => p.postId === laterMarker.postId)));
  t.false(
    live.posts.some((p) => p.postId === afterUnfollow.postId),
    'live stops after unfollow',
  );

  await reader!.c.request('graph:follow', { userId: author!.userId });
  t.true(await eventually(async () => (await home(reader!)).includes(afterUnfollow.postId)));
  await author!.c.request('graph:block', { userId: reader!.userId });
  t.false(
    (await home(reader!)).some((id) => id === afterUnfollow.postId),
    'block removes',
  );
});

test('a live post embeds only what every watcher may see; home pages never show a blocked author through a repost or quote', async (t) => {
  const [quoter, closed, open, fan, stranger] = await cluster.users(5, 'v');
  // fan follows everyone; stranger follows the quoter only and blocks `open`.
  await Promise.all([closed, open, quoter].map((u) => fan!.c.request('graph:follow', { userId: u!.userId })));
  await quoter!.c.request('graph:follow', { userId: closed!.userId });
  await stranger!.c.request('graph:follow', { userId: quoter!.userId });
  await stranger!.c.request('graph:block', { userId: open!.userId });
  const liveFan = livePosts(fan!);
  const liveStranger = livePosts(stranger!);
  await Promise.all([fan, stranger].map((u) => u!.c.request('feeds:watch', {})));

  const secret = await closed!.c.request('posts:create', { text: 'followers only: secret', visibility: 'followers' });
  const quote = await quoter!.c.request('posts:create', { text: 'look at this', quoteOf: secret.postId });
  const visible = await open!.c.request('posts:create', { text: 'public, but stranger blocked me #livetag' });
  const repost = await quoter!.c.request('posts:repost', { postId: visible.postId });
  const plainQuote = await quoter!.c.request('posts:create', { text: 'quoting open #livetag', quoteOf: visible.postId });
  await cluster.eventsSettled('feeds');
  const marker = await quoter!.c.request('posts:create', { text: 'a later plain post' });
  t.true(await eventually(async () => [liveFan, liveStranger].every((l) => l.posts.some((p) => p.postId === marker.postId)), 30_000));

  const live = (l: typeof liveFan) => l.posts.map((p) => p.postId);
  t.false(live(liveStranger).includes(quote.postId), 'a quote of a followers-only post is not sent live (not every watcher may see it)');
  t.false(live(liveFan).includes(quote.postId));
  t.false(live(liveStranger).includes(repost.postId), 'a repost of a blocked author does not reach the blocker live');
  t.false(live(liveStranger).includes(plainQuote.postId), 'nor a quote of them');
  t.true(live(liveFan).includes(repost.postId) && live(liveFan).includes(plainQuote.postId), 'everyone else gets them live');
  const shownToFan = liveFan.posts.find((p) => p.postId === plainQuote.postId) as unknown as { original: { text: string } | null };
  t.is(shownToFan.original?.text, 'public, but stranger blocked me #livetag');

  // Pages built for the stranger: the secret and the blocked author's text appear nowhere.
  const leaks = (items: { original: { author: { userId: string } } | null; author: { userId: string } }[]) =>
    items.filter((p) => [closed!.userId, open!.userId].includes(p.original?.author.userId ?? p.author.userId));
  const pages = {
    home: (await stranger!.c.request('feeds:home', { limit: 50 })).items,
    profile: (await stranger!.c.request('posts:byUser', { userId: quoter!.userId, limit: 50 })).items,
    hashtag: (await stranger!.c.request('posts:hashtag', { tag: 'livetag', limit: 50 })).items,
  };
  for (const [name, items] of Object.entries(pages)) t.deepEqual(leaks(items), [], name);
  t.true(
    pages.home.some((p) => p.postId === quote.postId && p.original === null && p.originalUnavailable),
    'the quote itself is there, its original withheld',
  );
  t.true(pages.profile.some((p) => p.postId === plainQuote.postId && p.original === null));
  // The fan, who may see all of it, gets it all.
  const fanHome = (await fan!.c.request('feeds:home', { limit: 50 })).items;
  t.is(fanHome.find((p) => p.postId === quote.postId)?.original?.text, 'followers only: secret');
});

test('for you ranks engaged posts first; bad input gets typed errors', async (t) => {
  const [author, reader, ...fans] = await cluster.users(6, 'y');
  await reader!.c.request('graph:follow', { userId: author!.userId });
  const quiet = await author!.c.request('posts:create', { text: 'quiet' });
  const loud = await author!.c.request('posts:create', { text: 'loud' });
  await Promise.all(fans.map((f) => f.c.request('posts:like', { postId: quiet.postId })));
  const ranked = (await reader!.c.request('feeds:forYou', { limit: 10 })).items.map((p) => p.postId);
  t.deepEqual(ranked.slice(0, 2), [quiet.postId, loud.postId]);
  t.is(await codeOf(reader!.c.request('feeds:home', { limit: 51 })), 'REQUEST_INVALID');
  t.is(await codeOf(reader!.c.request('feeds:home', { cursor: 'bm90LWEtY3Vyc29y' })), 'REQUEST_CURSOR_INVALID');
  t.is(await codeOf(reader!.c.request('feeds:unwatch', {})), 'REQUEST_INVALID');
});

/** The access token a quick user's client was made with. */
async function tokenOf(u: SocialUser): Promise<string> {
  const token = (u.c as unknown as { token?: string }).token;
  if (!token) throw new Error('not a quick user');
  return token;
}
