// Feed shards against real Redis and MongoDB: two actor runtimes ("nodes") in
// one process host the FeedShard actors, the only writers of stored home
// feeds. The end-to-end fan-out through the feeds consumer is in
// feeds.test.ts and feeds.scale.test.ts.
import test from 'ava';
import type { Connection } from 'mongoose';
import { pino } from 'pino';
import { randomBytes } from 'node:crypto';
import { ActorRuntime } from '../actors/runtime.ts';
import type { ActorServices } from '../actors/services.ts';
import { feedShardActor } from '../actors/feed-shard.ts';
import { FeedShardActor } from '../actors/contracts/feed-shard.ts';
import { FEED_SHARD_BATCH, feedShardOf, ShardBatcher } from '../feeds/shards.ts';
import { defaultFeedSettings, FeedStore } from '../feeds/store.ts';
import { requireEnv } from './helpers/env.ts';
import { codeOf } from './helpers/outcome.ts';
import { testServices } from './helpers/services.ts';

const services = testServices('feed-shards');
const SHARDS = 8;
const MAX_LENGTH = 20;
let connection: Connection;
let store: FeedStore;
let a: ActorRuntime;
let b: ActorRuntime;

const userId = () => `u_${randomBytes(6).toString('base64url')}`;
const postId = () => `p_${randomBytes(16).toString('base64url').slice(0, 22)}`;
/** Users that all hash to `shard`. */
const usersOf = (shard: number, count: number) => {
  const found: string[] = [];
  while (found.length < count) {
    const id = userId();
    if (feedShardOf(id, SHARDS) === shard) found.push(id);
  }
  return found;
};
const feedOf = async (user: string) => (await store.range(user, { limit: 1_000 })).map((e) => e.postId);

test.before(async () => {
  connection = await services.mongo();
  store = new FeedStore(services.redis(), services.prefix, { ...defaultFeedSettings, maxLength: MAX_LENGTH });
  // Only what feed shards use: the other stores are never reached.
  const actorServices = { feeds: store, feedShards: SHARDS } as ActorServices;
  const start = (nodeId: string) =>
    ActorRuntime.start({
      redisUrl: requireEnv('REDIS_URL'),
      connection,
      nodeId,
      namespace: services.prefix,
      types: [feedShardActor],
      services: actorServices,
      log: pino({ level: 'silent' }),
      leaseMs: 2_000,
      idleAfterMs: 60_000,
      defaultTimeoutMs: 10_000,
    });
  [a, b] = await Promise.all([start('a'), start('b')]);
});
test.after.always(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await services.cleanup();
});

test('a user always hashes to the same shard, and users spread evenly over the shards', (t) => {
  t.is(feedShardOf('u_alice', 64), feedShardOf('u_alice', 64));
  t.deepEqual(
    ['u_alice', 'u_bob', 'u_1'].map((id) => feedShardOf(id, 64)),
    [15, 12, 4],
    'FNV-1a: the same on every node and in every release',
  );
  t.is(feedShardOf('u_alice', 1), 0);
  const counts = new Array<number>(64).fill(0);
  for (let i = 0; i < 64_000; i++) counts[feedShardOf(`u_${i.toString(36)}`, 64)]!++;
  t.true(
    Math.min(...counts) > 800 && Math.max(...counts) < 1_200,
    `between ${Math.min(...counts)} and ${Math.max(...counts)} users per shard (1,000 on average)`,
  );
});

test('the batcher hands every user once, to its own shard, in batches of at most FEED_SHARD_BATCH', async (t) => {
  const seen: { shard: number; userIds: string[] }[] = [];
  const batcher = new ShardBatcher(4, async (shard, userIds) => {
    seen.push({ shard, userIds });
  });
  const users = Array.from({ length: 3_000 }, (_, i) => `u_${i}`);
  for (let i = 0; i < users.length; i += 700) await batcher.add(users.slice(i, i + 700));
  await batcher.end();
  t.deepEqual(seen.flatMap((s) => s.userIds).sort(), [...users].sort(), 'each user once');
  t.true(
    seen.every((s) => s.userIds.length <= FEED_SHARD_BATCH && s.userIds.every((id) => feedShardOf(id, 4) === s.shard)),
    'batches are bounded and hold only their shard',
  );
  t.true(seen.length <= Math.ceil(3_000 / FEED_SHARD_BATCH) + 4, `${seen.length} messages for 3,000 users over 4 shards`);
});

test('a shard adds entries to its users’ feeds from either node, capped and idempotent; removes what it is told', async (t) => {
  const [alice, bob] = usersOf(3, 2) as [string, string];
  const old = Array.from({ length: MAX_LENGTH + 5 }, (_, i) => ({ postId: postId(), at: 1_000 + i }));
  t.deepEqual(await a.ref(FeedShardActor, '3').ask('add', { userIds: [alice, bob], entries: old.slice(0, 10) }), { feeds: 2 });
  t.deepEqual(await b.ref(FeedShardActor, '3').ask('add', { userIds: [alice, bob], entries: old.slice(10) }), { feeds: 2 });
  await b.ref(FeedShardActor, '3').ask('add', { userIds: [alice], entries: old.slice(10) }); // redone: changes nothing
  const newest = old
    .slice(-MAX_LENGTH)
    .reverse()
    .map((e) => e.postId);
  t.deepEqual(await feedOf(alice), newest, 'newest first, cut at FEED_MAX_LENGTH');
  t.deepEqual(await feedOf(bob), newest);
  t.deepEqual(await a.ref(FeedShardActor, '3').ask('remove', { userId: alice, postIds: [newest[0]!, newest[1]!, postId()] }), { removed: 2 });
  t.deepEqual(await feedOf(alice), newest.slice(2));
});

test('a backfill goes only into feeds that exist', async (t) => {
  const [known, unknown] = usersOf(5, 2) as [string, string];
  const first = { postId: postId(), at: 5_000 };
  await a.ref(FeedShardActor, '5').ask('add', { userIds: [known], entries: [first] });
  const backfill = [{ postId: postId(), at: 4_000 }];
  t.deepEqual(await b.ref(FeedShardActor, '5').ask('add', { userIds: [known, unknown], entries: backfill, onlyExisting: true }), { feeds: 1 });
  t.deepEqual(await feedOf(known), [first.postId, backfill[0]!.postId]);
  t.false(await store.exists(unknown), 'a missing feed stays missing: the read path rebuilds it');
});

test('a feed the fan-out creates (new, or lost by Redis) is complete only from its floor up; a capped feed keeps its newest entries', async (t) => {
  const [user] = usersOf(6, 1) as [string];
  t.is(await store.floor(user), null, 'no feed, no floor');
  const first = { postId: postId(), at: 7_000 };
  await a.ref(FeedShardActor, '6').ask('add', { userIds: [user], entries: [first] });
  t.is(await store.floor(user), 7_000, 'older posts of the accounts followed may be missing: pages that reach this time merge them');
  await a.ref(FeedShardActor, '6').ask('add', {
    userIds: [user],
    entries: [
      { postId: postId(), at: 6_000 },
      { postId: postId(), at: 8_000 },
    ],
  });
  t.is(await store.floor(user), 7_000, 'later writes keep it');
  t.is((await feedOf(user)).length, 3, 'reads never return the floor marker');
  const many = Array.from({ length: MAX_LENGTH }, (_, i) => ({ postId: postId(), at: 9_000 + i }));
  await a.ref(FeedShardActor, '6').ask('add', { userIds: [user], entries: many });
  t.is(await store.floor(user), null, 'the cap trims the floor with the oldest entries: what is left is above it');
  t.deepEqual(
    await feedOf(user),
    [...many].reverse().map((e) => e.postId),
    'the newest entries',
  );
});

test('a shard refuses feeds it does not own and bad input with typed errors, and writes nothing', async (t) => {
  const [mine] = usersOf(1, 1) as [string];
  const [stranger] = usersOf(2, 1) as [string];
  const entries = [{ postId: postId(), at: 1 }];
  t.is(await codeOf(a.ref(FeedShardActor, '1').ask('add', { userIds: [mine, stranger], entries })), 'FEED_WRONG_SHARD');
  t.is(await codeOf(a.ref(FeedShardActor, '1').ask('remove', { userId: stranger, postIds: [entries[0]!.postId] })), 'FEED_WRONG_SHARD');
  t.is(await codeOf(a.ref(FeedShardActor, '1').ask('add', { userIds: ['not-a-user'], entries })), 'ACTOR_MESSAGE_INVALID');
  t.is(await codeOf(a.ref(FeedShardActor, '1').ask('add', { userIds: [mine], entries: [{ postId: 'x', at: 1 }] })), 'ACTOR_MESSAGE_INVALID');
  t.is(await codeOf(a.ref(FeedShardActor, '1').ask('add', { userIds: [mine], entries: [] })), 'ACTOR_MESSAGE_INVALID');
  const tooMany = usersOf(1, FEED_SHARD_BATCH + 1);
  t.is(await codeOf(a.ref(FeedShardActor, '1').ask('add', { userIds: tooMany, entries })), 'ACTOR_MESSAGE_INVALID', 'a batch is bounded');
  t.false(await store.exists(mine));
  t.false(await store.exists(stranger));
  t.false(await store.exists(tooMany[0]!));
});
