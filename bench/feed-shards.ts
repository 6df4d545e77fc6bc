// Feed fan-out on write through FeedShard actors, measured side by side with
// the direct writes it replaced, in one run (`npm run bench:feeds`; see
// BENCHMARKS.md, "Feed shards").
//
//   direct   baseline: what the feeds consumer did before feeds were actors,
//            FeedStore.add of a post into FOLLOWERS stored feeds, 500 feeds per
//            script call, one call after another
//   shards   the same post through the feed shards: the followers grouped by
//            shard (ShardBatcher, as consumers/feeds.ts does), one `add` ask per
//            shard, all at once, from runtime A to SHARDS FeedShard actors half
//            of which runtime B hosts (those asks go through Redis)
//   cold     the shards' first post, which activates every shard (a Redis claim
//            and a MongoDB claim each); measured once, before the rounds
//
// The two run in alternating rounds (direct, shards, direct, ...), so load from
// outside the bench falls on both alike. Both runtimes live in this process:
// what it measures is the work of each path, not two machines. After the
// rounds every follower's feed must hold every post (no lost write).
//
// stdout: one JSON line per scenario and a final "targets" line.
// stderr: progress and the table.
// Backing services: MONGO_URL/REDIS_URL (and the rest of the environment) when
// MONGO_URL is set, otherwise resolved through the dev-services module like
// `npm test` does and stopped at the end. The run's database and Redis keys
// are removed at the end.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import { pino } from 'pino';
import { FeedShardActor } from '../actors/contracts/feed-shard.ts';
import { feedShardActor } from '../actors/feed-shard.ts';
import { ActorRuntime } from '../actors/runtime.ts';
import type { ActorServices } from '../actors/services.ts';
import { DEFAULT_FEED_SHARDS, FEED_SHARD_BATCH, ShardBatcher } from '../feeds/shards.ts';
import { defaultFeedSettings, FeedStore, type FeedEntry } from '../feeds/store.ts';
import { emit, intEnv, percentile, progress, round, runBenchmark } from './lib/run.ts';
import { benchServices, removeRun, type BenchServices } from './lib/services.ts';

// ---- parameters ----

const FOLLOWERS = intEnv('BENCH_FEEDS_FOLLOWERS', 10_000);
const ROUNDS = intEnv('BENCH_FEEDS_ROUNDS', 30);
const SHARDS = intEnv('BENCH_FEEDS_SHARDS', DEFAULT_FEED_SHARDS);
/** shards p50 at most this many times direct p50. */
const TARGET_RATIO = 1.5;

const runId = randomBytes(4).toString('hex');
const prefix = `bfeed${runId}`;
const dbName = `flock_bench_feeds_${runId}`;

let backing: BenchServices | undefined;
let connection: Connection | undefined;
let redis: Redis | undefined;
const runtimes: ActorRuntime[] = [];

interface Summary {
  scenario: string;
  followers: number;
  posts: number;
  p50Ms: number;
  p90Ms: number;
  maxMs: number;
  feedsPerSec: number;
}

function summarize(scenario: string, times: number[]): Summary {
  const sorted = [...times].sort((a, b) => a - b);
  const p50 = percentile(sorted, 0.5);
  return {
    scenario,
    followers: FOLLOWERS,
    posts: times.length,
    p50Ms: round(p50, 1),
    p90Ms: round(percentile(sorted, 0.9), 1),
    maxMs: round(sorted.at(-1)!, 1),
    feedsPerSec: Math.round(FOLLOWERS / (p50 / 1000)),
  };
}

async function main(): Promise<void> {
  backing = await benchServices('feeds', progress);
  connection = await mongoose.createConnection(backing.mongoUrl, { dbName, maxPoolSize: backing.poolSize }).asPromise();
  redis = new Redis(backing.redisUrl, { connectionName: 'bench-feeds' });
  const store = new FeedStore(redis, prefix, defaultFeedSettings);
  // Feed shards use the feed store and the shard count only.
  const services = { feeds: store, feedShards: SHARDS } as ActorServices;
  for (const nodeId of ['bench-feeds-a', 'bench-feeds-b'])
    runtimes.push(
      await ActorRuntime.start({
        redisUrl: backing.redisUrl,
        connection,
        nodeId,
        namespace: prefix,
        types: [feedShardActor],
        services,
        log: pino({ level: 'warn', base: { node: nodeId } }, pino.destination(2)),
        idleAfterMs: 10 * 60_000,
      }),
    );
  const [a, b] = runtimes as [ActorRuntime, ActorRuntime];
  const followers = Array.from({ length: FOLLOWERS }, (_, i) => `u_bench${runId}f${i}`);
  let seq = 0;
  const entry = (): FeedEntry[] => [{ postId: `p_${runId}${String(seq++).padStart(14, '0')}`, at: Date.now() }];

  const direct = async () => {
    const entries = entry();
    for (let i = 0; i < followers.length; i += FEED_SHARD_BATCH) await store.add(followers.slice(i, i + FEED_SHARD_BATCH), entries);
  };
  // The cold pass asks odd shards from B, so B activates them (an actor activates where it is first asked):
  // the rounds then ask every shard from A, half of them across runtimes, as a consumer on one node would.
  const shards = async (askerOf: (shard: number) => ActorRuntime = () => a) => {
    const entries = entry();
    const batcher = new ShardBatcher(SHARDS, async (shard, userIds) => {
      await askerOf(shard).ref(FeedShardActor, String(shard)).ask('add', { userIds, entries });
    });
    for (let i = 0; i < followers.length; i += FEED_SHARD_BATCH) await batcher.add(followers.slice(i, i + FEED_SHARD_BATCH));
    await batcher.end();
  };
  const timed = async (fn: () => Promise<void>) => {
    const started = performance.now();
    await fn();
    return performance.now() - started;
  };

  progress(`${FOLLOWERS} followers, ${SHARDS} shards over 2 runtimes; cold: the first post through the shards`);
  const cold = await timed(() => shards((shard) => (shard % 2 === 1 ? b : a)));
  const hosted = [a.activeAddresses().length, b.activeAddresses().length];
  progress(`shards active: ${hosted.join(' on A, ')} on B`);
  progress(`${ROUNDS} rounds: direct, shards`);
  const times = { direct: [] as number[], shards: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    times.direct.push(await timed(direct));
    times.shards.push(await timed(() => shards()));
  }

  // Every feed holds every post: 1 + 2 x ROUNDS entries, up to the cap.
  const expected = Math.min(1 + 2 * ROUNDS, defaultFeedSettings.maxLength);
  const counts = await Promise.all(followers.map((id) => redis!.zcard(store.key(id))));
  const short = counts.filter((n) => n !== expected).length;

  const [directSummary, shardsSummary] = [summarize('direct', times.direct), summarize('shards', times.shards)];
  const results = [directSummary, shardsSummary, { ...summarize('cold', [cold]), hosted }];
  for (const r of results) emit(r);
  const ratio = round(shardsSummary.p50Ms / directSummary.p50Ms, 2);
  const targets = { scenario: 'targets', shardsOverDirectP50: { measured: ratio, target: TARGET_RATIO, met: ratio <= TARGET_RATIO }, feedsMissingAPost: short };
  emit(targets);

  const lines = [
    '',
    `fan-out on write of one post into ${FOLLOWERS.toLocaleString('en-US')} stored feeds, ${ROUNDS} alternating rounds; ms per post`,
    'path     posts     p50     p90     max    feeds/s',
    '-------  -----  ------  ------  ------  ---------',
    ...results.map(
      (r) =>
        `${r.scenario.padEnd(7)}  ${String(r.posts).padStart(5)}  ${r.p50Ms.toFixed(1).padStart(6)}  ${r.p90Ms.toFixed(1).padStart(6)}  ${r.maxMs.toFixed(1).padStart(6)}  ${r.feedsPerSec.toLocaleString('en-US').padStart(9)}`,
    ),
    `feeds missing a post after the run: ${short} of ${FOLLOWERS.toLocaleString('en-US')} (must be 0)`,
    `target shards p50 <= ${TARGET_RATIO}x direct p50: ${targets.shardsOverDirectP50.met ? 'MET' : 'MISSED'} (${ratio}x)`,
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
  if (short > 0) throw new Error(`${short} feeds are missing a post`);
}

async function cleanup(): Promise<void> {
  await Promise.allSettled(runtimes.map((r) => r.stop()));
  await connection?.close().catch(() => {});
  await removeRun({ backing, dbName, redis, keyPattern: `${prefix}:*` }, progress);
}

await runBenchmark(main, cleanup, progress);
