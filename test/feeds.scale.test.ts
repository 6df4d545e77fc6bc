// The scale check: an author with 1,000 followers spread over both
// nodes, all watching their home timelines. With 999 followers the author is
// below FEED_FANOUT_THRESHOLD (1,000): the post is fanned out on write. The
// 1,000th follow puts the author at the threshold: the next post takes the
// merge path. Either way every follower gets it live exactly once and finds it
// in the home timeline.
import test from 'ava';
import { Redis } from 'ioredis';
import { requireEnv } from './helpers/env.ts';
import { eventually } from './helpers/node-process.ts';
import { SocialCluster, type SocialUser } from './helpers/social.ts';

const FOLLOWERS = 1_000;
const cluster = new SocialCluster();
const SLOW = { timeoutMs: 120_000 };
test.before(() => cluster.start('feedscale', { ACTOR_ASK_TIMEOUT_MS: '120000', FEED_FANOUT_THRESHOLD: String(FOLLOWERS) }));
test.after.always(() => cluster.stop());

test(`an author with ${FOLLOWERS} followers: fan-out on write below the threshold, merge at read time at it; live exactly once on either node, and in the home timelines`, async (t) => {
  t.timeout(600_000);
  const t0 = Date.now();
  const [author] = await cluster.users(1, 'a');
  const followers = await cluster.quickUsers(FOLLOWERS, 'f', { profiles: false });
  t.log(`users: ${Date.now() - t0} ms`);
  const live = new Map<string, string[]>(followers.map((f) => [f.userId, []]));
  for (const f of followers) f.c.socket.on('feeds:post', (e: { post: { postId: string } }) => live.get(f.userId)!.push(e.post.postId));
  const started = Date.now();
  // One author's follows are turns of one actor: sent in chunks so no request waits behind hundreds of others.
  const follow = async (fs: SocialUser[]) => {
    for (let i = 0; i < fs.length; i += 100) await Promise.all(fs.slice(i, i + 100).map((f) => f.c.request('graph:follow', { userId: author!.userId }, SLOW)));
  };
  await follow(followers.slice(0, -1));
  t.log(`follows done at ${Date.now() - started} ms`);
  await Promise.all(followers.map((f) => f.c.request('feeds:watch', {}, SLOW)));

  const redis = new Redis(requireEnv('REDIS_URL'));
  try {
    const fanned = await author!.c.request('posts:create', { text: 'to 999 followers' });
    t.true(await eventually(async () => [...live.values()].slice(0, -1).every((l) => l.length === 1), 60_000), 'fan-out: live to all 999');
    t.is(await redis.sismember(`${cluster.redisPrefix}:feed:celebrities`, author!.userId), 0);

    await follow(followers.slice(-1));
    await eventually(async () => (await author!.c.request('users:get', { userId: author!.userId })).followers === FOLLOWERS, 30_000);
    const merged = await author!.c.request('posts:create', { text: 'to 1000 followers' });
    t.true(await eventually(async () => [...live.values()].every((l) => l.includes(merged.postId)), 60_000), 'merge: live to all 1000');
    t.is(await redis.sismember(`${cluster.redisPrefix}:feed:celebrities`, author!.userId), 1);
    // A third post closes the check: a repeat of the first two would have been sent before it.
    const closing = await author!.c.request('posts:create', { text: 'to 1000 followers, again' });
    t.true(await eventually(async () => [...live.values()].every((l) => l.includes(closing.postId)), 60_000), 'live to all 1000 again');
    const counts = [...live.values()].map((l) => l.length);
    t.deepEqual([...new Set(counts.slice(0, -1))], [3], 'exactly once each');
    t.is(counts.at(-1), 2, 'the last follower saw only the later posts live');
    t.true(followers.filter((f) => f.node === 0).length >= 400 && followers.filter((f) => f.node === 1).length >= 400);

    // The home timelines start with the three posts (the 1,000th follower got the first by backfill). Every
    // follower takes the same path; reading all 1,000 would add minutes on the embedded FerretDB, so 200
    // (every fifth, both nodes) and the last follower are read.
    const readers = [...followers.filter((_, i) => i % 5 === 0), followers.at(-1)!];
    const tops = await Promise.all(readers.map(async (f) => (await f.c.request('feeds:home', { limit: 3 }, SLOW)).items.map((p) => p.postId).join(',')));
    t.deepEqual([...new Set(tops)], [`${closing.postId},${merged.postId},${fanned.postId}`]);
    const stored = await redis.zscore(`${cluster.redisPrefix}:feed:${followers[0]!.userId}`, merged.postId);
    t.is(stored, null, 'the second post went through the merge path');
  } finally {
    redis.disconnect();
  }
});
