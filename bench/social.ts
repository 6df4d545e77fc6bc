// Social benchmark (`npm run bench:social`; see BENCHMARKS.md, "Social"): the
// write and read paths of posts (issue 5) through two real Flock nodes, each
// measured side by side with its floor, the same work done straight against
// MongoDB with the driver from the bench process (bench/social/floor.ts):
//
//   posts:create      a post with a hashtag and a mention    floor: insert the post document
//   posts:like        users liking LIKE_TARGETS posts        floor: insert the like edge, $inc the counter
//   posts:like-hot    every user liking one post at once      floor: the same on one post
//   posts:thread      a post with THREAD_REPLIES replies,     floor: find the post and its first 20
//                     first page of 20                               replies by createdAt, at once
//   posts:byUser      a profile with PROFILE_POSTS posts,     floor: find the author's 20 newest posts
//                     first page of 20
//
// USERS users sign up over the typed client (auth:register), alternating
// between the two nodes, each on its own socket with its own X-Forwarded-For
// (TRUST_PROXY=true), so per-IP limits stay apart. The per-user limits of the
// posts channel stay in force: the bench keeps a lower bound of every user's
// buckets (bench/lib/budget.ts) and reserves a measured run's requests
// before it starts, so a REQUEST_RATE_LIMITED ack is a finding, reported as an error.
// Each scenario runs CONCURRENCY requests back to back (a worker takes the next
// request when its last one is acked) over all users in turn, after a warm-up
// of CONCURRENCY requests; the floor runs at the same concurrency with as many
// MongoDB connections as the two nodes have together. The floor runs first and
// removes what it wrote, so both start from the same data.
//
// Reported per run: latency from the bench's send to its ack (p50/p90/p99/max),
// acked requests per second, errors by code, CPU per request (the nodes and the
// embedded FerretDB from /proc, Redis from INFO, the bench itself), and the
// MongoDB commands per request by shape with their driver-side time (the
// nodes' through bench/lib/db-probe.ts, preloaded into them), with the
// collection sizes the run started from. Like runs check the stored counters.
//
// stdout: one JSON line per (scenario, system) and a final "checks" line.
// stderr: progress, the nodes' warnings, the tables.
// Backing services: MONGO_URL/REDIS_URL (and the rest of the environment) when
// MONGO_URL is set, otherwise resolved through the dev-services module like
// `npm test` does and stopped at the end. The database is dropped at the end.
// Exit code 0 unless something failed; errors in measured runs are reported.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { postsChannel } from '../channels/posts.ts';
import { FlockClient, FlockRequestError } from '../client/flock-client.ts';
import { RateBudget } from './lib/budget.ts';
import { CommandTally, dbPerOp, mergeStats, type DbPerOp } from './lib/db-commands.ts';
import { Floor } from './social/floor.ts';
import { childPid, processCpuMs, startNode, type FlockNode } from './lib/nodes.ts';
import { emit, intEnv, percentile, pool, progress, round, runBenchmark, sleep } from './lib/run.ts';
import { benchServices, removeRun, type BenchServices } from './lib/services.ts';

// ---- parameters (every loop is bounded by a count and a time limit) ----

/** Users signed up (the crowd), half on each node. */
const USERS = intEnv('BENCH_SOCIAL_USERS', 100);
/** Requests outstanding at once in every scenario but like-hot (which has USERS). */
const CONCURRENCY = intEnv('BENCH_SOCIAL_CONCURRENCY', 8);
/**
 * Measured requests per scenario, spread over the users in turn after a
 * warm-up of CONCURRENCY requests. Sized so that each Flock run lasts 5 to 25 s
 * on the 2-core machine with the embedded FerretDB (see BENCHMARKS.md), and
 * the whole bench about 2 minutes; with 100 users, every user stays far
 * inside each event's burst.
 */
const REQUESTS = {
  create: intEnv('BENCH_SOCIAL_CREATE_REQUESTS', 100),
  like: intEnv('BENCH_SOCIAL_LIKE_REQUESTS', 150),
  thread: intEnv('BENCH_SOCIAL_THREAD_REQUESTS', 40),
  byUser: intEnv('BENCH_SOCIAL_BYUSER_REQUESTS', 60),
};
/** like-hot rounds: each round, every user likes one fresh post at once. */
const HOT_ROUNDS = intEnv('BENCH_SOCIAL_HOT_ROUNDS', 2);
/** Posts the like scenario spreads its likes over (one like per user and post). */
const LIKE_TARGETS = 20;
const THREAD_REPLIES = 50;
const PROFILE_POSTS = 100;
const PAGE = 20;
const TAG = 'flockbench';
const SIGNUP_CONCURRENCY = 16;
const SEED_CONCURRENCY = 10;
/** A measured run stops issuing requests after this long. */
const SCENARIO_MAX_MS = 45_000;
/** After a like run, the stored counters are read until they stop changing, this often, at most this long. */
const SETTLE_POLL_MS = 1_000;
const SETTLE_MAX_MS = 20_000;
/** A measured run may wait this long (unmeasured) for its users' buckets to refill. */
const MAX_REFILL_WAIT_MS = 20_000;
const ACK_TIMEOUT_MS = 30_000;
/** Per-IP limit of the nodes; every bench socket has its own address. */
const IP_LIMIT_PER_SECOND = 1_000;
/** MongoDB command shapes shown per run (costliest first). */
const DB_SHAPES_SHOWN = 8;
/** Whole-run watchdog: past it the bench fails instead of hanging. */
const WATCHDOG_MS = 5 * 60_000;

/** The per-user limits the nodes enforce, straight from the channel definition. */
const LIMITS = {
  'posts:create': postsChannel.events.create.rateLimit,
  'posts:like': postsChannel.events.like.rateLimit,
  'posts:thread': postsChannel.events.thread.rateLimit,
  'posts:byUser': postsChannel.events.byUser.rateLimit,
};
type Budgeted = keyof typeof LIMITS;

// ---- setup ----

const runId = randomBytes(4).toString('hex');
const dbName = `bench_social_${runId}`;
const keyPrefix = `bench-social-${runId}`;

let backing: BenchServices | undefined;
let mongo: MongoClient | undefined;
let mongoUrl: string | undefined;
let redis: Redis | undefined;
const nodes: FlockNode[] = [];
const clients: FlockClient[] = [];
const budget = new RateBudget(LIMITS);
/** The floor's MongoDB commands (the nodes' are tallied by bench/lib/db-probe.ts). */
const floorTally = new CommandTally();

const watchdog = setTimeout(() => {
  progress(`watchdog: the bench ran longer than ${WATCHDOG_MS / 1000} s; aborting`);
  void cleanup().finally(() => process.exit(2));
}, WATCHDOG_MS);
watchdog.unref();

async function startNodes(env: Record<string, string>): Promise<void> {
  const jwtSecret = randomBytes(48).toString('base64');
  const started = performance.now();
  const starting = await Promise.allSettled(
    [0, 1].map((i) =>
      startNode({
        name: `bench-social-${runId}-${i}`,
        env: {
          ...env,
          MONGO_DB: dbName,
          TRUST_PROXY: 'true',
          RATE_LIMIT_IP_PER_SECOND: String(IP_LIMIT_PER_SECOND),
          // The run's own Redis namespace, removed at the end.
          REDIS_KEY_PREFIX: keyPrefix,
          // One cluster: both nodes sign and accept the same tokens.
          JWT_SECRET: jwtSecret,
        },
        dataDir: path.join(backing!.tmpDir, `node${i}`),
        log: (line) => process.stderr.write(`${line}\n`),
      }),
    ),
  );
  for (const s of starting) if (s.status === 'fulfilled') nodes.push(s.value);
  const failed = starting.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  progress(`2 Flock nodes ready after ${Math.round(performance.now() - started)} ms: ${nodes.map((n) => n.url).join(', ')}`);
}

// ---- users ----

interface BenchUser {
  c: FlockClient;
  userId: string;
  username: string;
  node: number;
}

/** Each client claims its own address in 198.18.0.0/15 (reserved for benchmarks, RFC 2544); the run picks the range. */
const ipBase = Math.floor(Math.random() * (1 << 16));
const ipFor = (i: number) => {
  const n = (ipBase + i) % (1 << 17);
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
};
let userSeq = 0;

async function signUp(node: number): Promise<BenchUser> {
  const seq = userSeq++;
  const c = new FlockClient(nodes[node]!.url, {
    timeoutMs: ACK_TIMEOUT_MS,
    socket: { extraHeaders: { 'x-forwarded-for': ipFor(seq) }, reconnection: false },
  });
  clients.push(c);
  await c.connected();
  const username = `sb${runId}_${seq}`;
  const res = await c.request('auth:register', { username, email: `${username}@bench.test`, password: 'correct horse 42', displayName: `bench ${seq}` });
  return { c, userId: res.userId, username, node };
}

// ---- measurement ----

/** One request of a run: who sends it (for the rate budget) and what it does. */
interface Op {
  subject: string;
  run: () => Promise<void>;
}

interface Run {
  samplesMs: number[];
  errors: Record<string, number>;
  firstError: string | undefined;
  /** Requests not sent because the time limit ran out. */
  skipped: number;
  elapsedMs: number;
}

function errorCode(err: unknown): string {
  if (err instanceof FlockRequestError) return err.code;
  if (err instanceof Error && /timed out/i.test(err.message)) return 'ACK_TIMEOUT';
  if (err instanceof Error && err.message.startsWith('check:')) return 'CHECK_FAILED';
  return 'ERROR';
}

/** Runs `ops` in order with `concurrency` outstanding; one latency sample per acked request. */
async function measure(ops: readonly Op[], concurrency: number, maxMs: number): Promise<Run> {
  const run: Run = { samplesMs: [], errors: {}, firstError: undefined, skipped: 0, elapsedMs: 0 };
  let issued = 0;
  const started = performance.now();
  const stopAt = started + maxMs;
  const worker = async () => {
    while (issued < ops.length) {
      const t0 = performance.now();
      if (t0 > stopAt) break;
      const op = ops[issued++]!;
      try {
        await op.run();
        run.samplesMs.push(performance.now() - t0);
      } catch (err) {
        const code = errorCode(err);
        run.errors[code] = (run.errors[code] ?? 0) + 1;
        run.firstError ??= `${code}: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, ops.length) }, worker));
  run.elapsedMs = performance.now() - started;
  run.skipped = ops.length - issued;
  return run;
}

function merge(runs: Run[]): Run {
  const errors: Record<string, number> = {};
  for (const r of runs) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  return {
    samplesMs: runs.flatMap((r) => r.samplesMs),
    errors,
    firstError: runs.find((r) => r.firstError)?.firstError,
    skipped: runs.reduce((s, r) => s + r.skipped, 0),
    elapsedMs: runs.reduce((s, r) => s + r.elapsedMs, 0),
  };
}

interface CpuMark {
  nodesMs: number;
  dbMs: number;
  redisMs: number;
  benchMs: number;
}

let dbPid: number | undefined;

async function cpuMark(): Promise<CpuMark> {
  const info = await redis!.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  const self = process.cpuUsage();
  const nodeCpu = await Promise.all(nodes.map((n) => processCpuMs(n.pid)));
  return {
    nodesMs: nodeCpu.reduce((s, x) => s + x, 0),
    dbMs: dbPid === undefined ? Number.NaN : await processCpuMs(dbPid),
    redisMs: (field('used_cpu_user') + field('used_cpu_sys')) * 1000,
    benchMs: (self.user + self.system) / 1000,
  };
}

type System = 'flock' | 'floor';

interface Result {
  scenario: string;
  system: System;
  what: string;
  concurrency: number;
  requests: number;
  ok: number;
  errors: Record<string, number>;
  skipped: number;
  opsPerSec: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
  maxms: number;
  seconds: number;
  /** CPU per acked request, in ms: both Flock nodes, the database process, Redis, the bench process. */
  cpuMsPerOp: { nodes: number; db: number | null; redis: number; bench: number };
  [extra: string]: unknown;
}

const results: Result[] = [];

function summarize(scenario: string, system: System, what: string, concurrency: number, requests: number, run: Run, cpu0: CpuMark, cpu1: CpuMark): Result {
  const sorted = [...run.samplesMs].sort((x, y) => x - y);
  const ms = (q: number) => round(percentile(sorted, q), 2);
  const per = (x: number) => round(x / Math.max(1, sorted.length), 3);
  return {
    scenario,
    system,
    what,
    concurrency,
    requests,
    ok: sorted.length,
    errors: run.errors,
    skipped: run.skipped,
    opsPerSec: round(sorted.length / (run.elapsedMs / 1000), 1),
    p50ms: ms(0.5),
    p90ms: ms(0.9),
    p99ms: ms(0.99),
    maxms: round(sorted.at(-1) ?? Number.NaN, 2),
    seconds: round(run.elapsedMs / 1000, 2),
    cpuMsPerOp: {
      nodes: per(cpu1.nodesMs - cpu0.nodesMs),
      db: Number.isNaN(cpu1.dbMs) ? null : per(cpu1.dbMs - cpu0.dbMs),
      redis: per(cpu1.redisMs - cpu0.redisMs),
      bench: per(cpu1.benchMs - cpu0.benchMs),
    },
    ...(run.firstError && { firstError: run.firstError }),
  };
}

interface Side {
  what: string;
  /** Unmeasured setup (e.g. the floor's posts to like). */
  prepare?: () => Promise<void>;
  /** Unmeasured requests first (may be empty). */
  warm: Op[];
  /** Measured requests; several rounds run one after another and are merged. */
  rounds: Op[][];
  /** Checked after the side ran (e.g. exact like counts); merged into its result. */
  verify?: () => Promise<Record<string, unknown>>;
}

interface Scenario {
  scenario: string;
  event: Budgeted;
  concurrency: number;
  floor: Side;
  flock: Side;
}

/** Documents in the collections the social paths scan (FerretDB scans whole collections for most filters). */
async function dataset(): Promise<Record<string, number>> {
  const db = mongo!.db(dbName);
  const [posts, edges, actorStates] = await Promise.all(['posts', 'edges', 'actor_states'].map((c) => db.collection(c).countDocuments({})));
  return { posts: posts!, edges: edges!, actorStates: actorStates! };
}

/**
 * The floor, then Flock (its requests reserved in the rate budget first), one
 * JSON line each. The floor's documents are removed in between, so both sides
 * start from the same data.
 */
async function runScenario(s: Scenario, floor: Floor): Promise<void> {
  const sides: [System, Side][] = [
    ['floor', s.floor],
    ['flock', s.flock],
  ];
  const out: Partial<Record<System, Result>> = {};
  for (const [system, side] of sides) {
    const requests = side.rounds.reduce((n, r) => n + r.length, 0);
    await side.prepare?.();
    const counts = new Map<string, number>();
    for (const op of [...side.warm, ...side.rounds.flat()]) counts.set(op.subject, (counts.get(op.subject) ?? 0) + 1);
    if (system === 'flock') {
      const waited = await budget.reserve(s.event, counts, MAX_REFILL_WAIT_MS);
      if (waited >= 100) progress(`${s.scenario}: waited ${Math.round(waited)} ms for the users' ${s.event} buckets to refill`);
    }
    const data = await dataset();
    progress(
      `${s.scenario} ${system}: ${side.warm.length} warm-up + ${requests} requests, ${s.concurrency} outstanding (${Object.entries(data)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ')})`,
    );
    if (side.warm.length > 0) {
      const warm = await measure(side.warm, s.concurrency, SCENARIO_MAX_MS);
      const errors = Object.values(warm.errors).reduce((a, b) => a + b, 0);
      if (errors > 0) progress(`${s.scenario} ${system}: ${errors} warm-up errors (first: ${warm.firstError})`);
    }
    const dbStats = async () => (system === 'floor' ? floorTally.take(true) : mergeStats(await Promise.all(nodes.map((n) => n.dbStats(true)))));
    await dbStats();
    const cpu0 = await cpuMark();
    const runs: Run[] = [];
    for (const ops of side.rounds) runs.push(await measure(ops, s.concurrency, SCENARIO_MAX_MS / side.rounds.length));
    const cpu1 = await cpuMark();
    const commands = await dbStats();
    if (system === 'flock') budget.settle(s.event, counts.keys());
    const result = summarize(s.scenario, system, side.what, s.concurrency, requests, merge(runs), cpu0, cpu1);
    Object.assign(result, { dataset: data, db: dbPerOp(commands, result.ok, DB_SHAPES_SHOWN) });
    if (side.verify) Object.assign(result, await side.verify());
    out[system] = result;
    progress(`${s.scenario} ${system}: ${result.ok} ok in ${result.seconds} s, ${result.opsPerSec}/s, p50 ${result.p50ms} ms, p99 ${result.p99ms} ms`);
    if (system === 'floor') await floor.removeOwn();
  }
  const fl = out.floor!;
  const fk = out.flock!;
  Object.assign(fk, {
    baseline: 'floor',
    p50RatioToFloor: round(fk.p50ms / fl.p50ms, 2),
    p99RatioToFloor: round(fk.p99ms / fl.p99ms, 2),
    opsRatioToFloor: round(fk.opsPerSec / fl.opsPerSec, 3),
  });
  for (const r of [fl, fk]) {
    results.push(r);
    emit(r);
  }
}

/** Throws `check: ...` (counted as CHECK_FAILED) unless `ok`. */
function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`check: ${what}`);
}

// ---- run ----

async function main(): Promise<void> {
  backing = await benchServices('social', progress);
  const { env, redisUrl, poolSize } = backing;
  mongoUrl = backing.mongoUrl;
  redis = new Redis(redisUrl, { connectionName: 'bench-social', maxRetriesPerRequest: 1 });
  dbPid = backing.embedded ? await childPid('flock-ferretdb') : undefined;
  await startNodes(env);
  // As many connections as the two nodes have together.
  mongo = await MongoClient.connect(mongoUrl, { maxPoolSize: 2 * poolSize, monitorCommands: true });
  floorTally.attach(mongo);
  const floor = new Floor(mongo.db(dbName));

  // Sign-up. The profile's author starts posting (paced by its create bucket)
  // while the crowd signs up; nothing is measured meanwhile.
  let t0 = performance.now();
  const author = await signUp(0);
  const threadAuthor = await signUp(1);
  const profileSeeded = (async () => {
    for (let i = 0; i < PROFILE_POSTS; i++) {
      await budget.spend(author.userId, 'posts:create', () => author.c.request('posts:create', { text: `profile post ${i} #${TAG}` }));
    }
  })();
  profileSeeded.catch(() => {}); // awaited below; kept from being unhandled meanwhile
  const users = await pool(USERS, SIGNUP_CONCURRENCY, (i) => signUp(i % 2));
  const signUpMs = performance.now() - t0;
  progress(`${USERS + 2} users signed up in ${Math.round(signUpMs)} ms (${round((USERS + 2) / (signUpMs / 1000), 1)}/s, ${SIGNUP_CONCURRENCY} at once)`);
  const user = (i: number) => users[i % USERS]!;
  const createAs = (u: BenchUser, text: string, replyTo?: string) =>
    budget.spend(u.userId, 'posts:create', () => u.c.request('posts:create', { text, ...(replyTo && { replyTo }) }));

  // Seeding: the thread, the posts to like, the profile.
  t0 = performance.now();
  const root = await createAs(threadAuthor, `a thread to read #${TAG}`);
  await pool(THREAD_REPLIES, SEED_CONCURRENCY, (i) => createAs(user(i), `reply ${i} to the thread`, root.postId));
  const likeTargets = (await pool(LIKE_TARGETS, SEED_CONCURRENCY, (i) => createAs(user(THREAD_REPLIES + i), `like me ${i} #${TAG}`))).map((p) => p.postId);
  const hotPosts = (await pool(HOT_ROUNDS, SEED_CONCURRENCY, (i) => createAs(user(THREAD_REPLIES + LIKE_TARGETS + i), `hot post ${i} #${TAG}`))).map(
    (p) => p.postId,
  );
  await profileSeeded;
  progress(
    `seeded in ${Math.round(performance.now() - t0)} ms more: a thread of ${THREAD_REPLIES} replies, ${LIKE_TARGETS} + ${HOT_ROUNDS} posts to like, a profile of ${PROFILE_POSTS} posts`,
  );

  /**
   * A side of a scenario: request k (k = 0, 1, ...) is user k mod USERS's
   * (k div USERS)-th; the first CONCURRENCY are the warm-up, the next n are measured.
   */
  const sideOf = (what: string, n: number, op: (u: number, r: number) => Op, extra: Partial<Side> = {}): Side => {
    const all = Array.from({ length: CONCURRENCY + n }, (_, k) => op(k % USERS, Math.floor(k / USERS)));
    return { what, warm: all.slice(0, CONCURRENCY), rounds: [all.slice(CONCURRENCY)], ...extra };
  };

  // 1. posts:create
  const createText = (u: number, r: number) => `bench post ${r} #${TAG} for @${user(u + 1).username}`;
  const createOp = (u: number, r: number): Op => ({
    subject: user(u).userId,
    run: async () => {
      const view = await user(u).c.request('posts:create', { text: createText(u, r) });
      check(view.hashtags.includes(TAG) && view.mentions[0] === user(u + 1).userId, 'post with its hashtag and mention');
    },
  });
  const floorCreateOp = (u: number, r: number): Op => ({
    subject: user(u).userId,
    run: () => floor.create(floor.postDoc(user(u).userId, createText(u, r), [user(u + 1).userId])),
  });
  await runScenario(
    {
      scenario: 'posts:create',
      event: 'posts:create',
      concurrency: CONCURRENCY,
      floor: sideOf('insertOne of the post document', REQUESTS.create, floorCreateOp),
      flock: sideOf('posts:create {text with a hashtag and a mention}', REQUESTS.create, createOp),
    },
    floor,
  );

  // 2. posts:like over LIKE_TARGETS posts: user u's r-th like is for post u+r
  //    (mod LIKE_TARGETS), so every like is a new one.
  if (Math.floor((CONCURRENCY + REQUESTS.like - 1) / USERS) >= LIKE_TARGETS)
    throw new Error(`too many likes per user: each user likes each of the ${LIKE_TARGETS} posts at most once`);
  const liked = new Map<string, number>();
  const likeOp = (targets: string[], u: number, r: number, viaFlock: boolean): Op => {
    const postId = targets[(u + r) % targets.length]!;
    return {
      subject: user(u).userId,
      run: async () => {
        if (viaFlock) check((await user(u).c.request('posts:like', { postId })).liked, 'liked');
        else await floor.like(postId, user(u).userId);
        liked.set(postId, (liked.get(postId) ?? 0) + 1);
      },
    };
  };
  /**
   * The stored like counters of `postIds` against the likes acked for them,
   * once they stop changing (a like whose ask timed out may still land).
   */
  const likeCounts = async (postIds: string[]) => {
    const acked = postIds.reduce((s, id) => s + (liked.get(id) ?? 0), 0);
    let stored = -1;
    for (const deadline = performance.now() + SETTLE_MAX_MS; performance.now() < deadline; await sleep(SETTLE_POLL_MS)) {
      const counts = await floor.likes(postIds);
      const now = [...counts.values()].reduce((s, n) => s + n, 0);
      if (now === stored) break;
      stored = now;
    }
    return { likesAcked: acked, likesStored: stored, countsExact: acked === stored };
  };
  /** The floor's own posts to like, by the same authors as Flock's, inserted before its run. */
  const floorPosts = (n: number, firstAuthor: number, text: string) => {
    const docs = Array.from({ length: n }, (_, i) => floor.postDoc(user(firstAuthor + i).userId, `${text} ${i} #${TAG}`, []));
    return { ids: docs.map((d) => d._id), insert: async () => void (await Promise.all(docs.map((d) => floor.create(d)))) };
  };
  const floorTargets = floorPosts(LIKE_TARGETS, THREAD_REPLIES, 'like me');
  await runScenario(
    {
      scenario: 'posts:like',
      event: 'posts:like',
      concurrency: CONCURRENCY,
      floor: sideOf('insertOne of the like edge, then updateOne $inc of the counter', REQUESTS.like, (u, r) => likeOp(floorTargets.ids, u, r, false), {
        prepare: floorTargets.insert,
        verify: () => likeCounts(floorTargets.ids),
      }),
      flock: sideOf(`posts:like {postId} over ${LIKE_TARGETS} posts`, REQUESTS.like, (u, r) => likeOp(likeTargets, u, r, true), {
        verify: () => likeCounts(likeTargets),
      }),
    },
    floor,
  );

  // 3. posts:like-hot: each round, every user likes the same fresh post at once.
  const floorHot = floorPosts(HOT_ROUNDS, THREAD_REPLIES + LIKE_TARGETS, 'hot post');
  const hotRound = (postId: string, viaFlock: boolean) => users.map((_, u) => likeOp([postId], u, 0, viaFlock));
  await runScenario(
    {
      scenario: 'posts:like-hot',
      event: 'posts:like',
      concurrency: USERS,
      floor: {
        what: 'the like floor, every user on one post at once',
        prepare: floorHot.insert,
        warm: [],
        rounds: floorHot.ids.map((id) => hotRound(id, false)),
        verify: () => likeCounts(floorHot.ids),
      },
      flock: {
        what: `posts:like {postId}, all ${USERS} users on one post at once${HOT_ROUNDS > 1 ? `, ${HOT_ROUNDS} posts in turn` : ''}`,
        warm: [],
        rounds: hotPosts.map((id) => hotRound(id, true)),
        verify: () => likeCounts(hotPosts),
      },
    },
    floor,
  );

  // 4. posts:thread: the first page of the thread's replies.
  const threadOp = (u: number): Op => ({
    subject: user(u).userId,
    run: async () => {
      const t = await user(u).c.request('posts:thread', { postId: root.postId, limit: PAGE });
      check(t.replies.items.length === PAGE && t.replies.nextCursor !== null && t.post.counts.replies === THREAD_REPLIES, 'a full first page of replies');
    },
  });
  const floorThreadOp = (u: number): Op => ({
    subject: user(u).userId,
    run: async () => {
      const t = await floor.thread(root.postId, PAGE);
      check(t.post !== null && t.replies.length === PAGE, 'a full first page of replies');
    },
  });
  await runScenario(
    {
      scenario: 'posts:thread',
      event: 'posts:thread',
      concurrency: CONCURRENCY,
      floor: sideOf(`findOne of the post and find of its first ${PAGE} replies by createdAt, at once`, REQUESTS.thread, floorThreadOp),
      flock: sideOf(`posts:thread {postId, limit: ${PAGE}}, ${THREAD_REPLIES} replies`, REQUESTS.thread, threadOp),
    },
    floor,
  );

  // 5. posts:byUser: the first page of the profile.
  const byUserOp = (u: number): Op => ({
    subject: user(u).userId,
    run: async () => {
      const page = await user(u).c.request('posts:byUser', { userId: author.userId, limit: PAGE });
      check(page.items.length === PAGE && page.nextCursor !== null, 'a full first page of posts');
    },
  });
  const floorByUserOp = (u: number): Op => ({
    subject: user(u).userId,
    run: async () => check((await floor.byUser(author.userId, PAGE)).length === PAGE, 'a full first page of posts'),
  });
  await runScenario(
    {
      scenario: 'posts:byUser',
      event: 'posts:byUser',
      concurrency: CONCURRENCY,
      floor: sideOf(`find of the author's ${PAGE} newest posts`, REQUESTS.byUser, floorByUserOp),
      flock: sideOf(`posts:byUser {userId, limit: ${PAGE}}, ${PROFILE_POSTS} posts`, REQUESTS.byUser, byUserOp),
    },
    floor,
  );

  const flockResults = results.filter((r) => r.system === 'flock');
  const sum = (pick: (r: Result) => number) => flockResults.reduce((s, r) => s + pick(r), 0);
  const checks = {
    scenario: 'checks',
    users: USERS,
    signUpPerSec: round((USERS + 2) / (signUpMs / 1000), 1),
    flockErrors: sum((r) => Object.values(r.errors).reduce((a, b) => a + b, 0)),
    rateLimited: sum((r) => r.errors.REQUEST_RATE_LIMITED ?? 0),
    skipped: sum((r) => r.skipped),
    likeCountsExact: results.filter((r) => 'countsExact' in r).every((r) => r.countsExact === true),
    nodeWarnings: Object.fromEntries(nodes.map((n) => [n.name, Object.fromEntries(n.warnings)])),
  };
  emit(checks);
  printTable(checks);
}

// ---- output ----

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

function printTable(checks: { flockErrors: number; rateLimited: number; skipped: number; likeCountsExact: boolean; signUpPerSec: number }): void {
  const fmt = (x: number | null, digits = 1) => (x === null || Number.isNaN(x) ? '-' : x.toFixed(digits));
  const errorsOf = (r: Result) => Object.values(r.errors).reduce((s, n) => s + n, 0);
  const out = [
    '',
    `${USERS} users over 2 Flock nodes; ${CONCURRENCY} requests outstanding (like-hot: ${USERS}); latency in ms from send to ack; db cmds and db ms (driver-side time) and cpu (ms) per acked request`,
    ...table(
      ['scenario', 'system', 'conc', 'ok', 'errors', 'ops/s', 'p50', 'p90', 'p99', 'max', 'db cmds', 'db ms', 'cpu nodes', 'cpu db', 'cpu redis', 'cpu bench'],
      results.map((r) => [
        r.scenario,
        r.system,
        String(r.concurrency),
        String(r.ok),
        String(errorsOf(r) + r.skipped),
        fmt(r.opsPerSec),
        fmt(r.p50ms),
        fmt(r.p90ms),
        fmt(r.p99ms),
        fmt(r.maxms),
        fmt((r.db as DbPerOp).commands),
        fmt((r.db as DbPerOp).ms),
        fmt(r.cpuMsPerOp.nodes, 2),
        fmt(r.cpuMsPerOp.db, 2),
        fmt(r.cpuMsPerOp.redis, 2),
        fmt(r.cpuMsPerOp.bench, 2),
      ]),
    ),
    '',
    'MongoDB commands per acked request (Flock: both nodes), costliest first: count x shape, driver-side ms',
    ...results.flatMap((r) => [
      `  ${r.scenario} ${r.system}:`,
      ...(r.db as DbPerOp).byShape.map((b) => `    ${b.n.toFixed(2).padStart(6)} x ${b.shape.padEnd(60)} ${b.ms.toFixed(1).padStart(8)} ms`),
    ]),
    '',
    'flock / floor',
    ...table(
      ['scenario', '', 'p50', 'p99', 'ops/s'],
      results
        .filter((r) => r.system === 'flock')
        .map((r) => [
          r.scenario,
          '',
          `${fmt(r.p50RatioToFloor as number, 2)}x`,
          `${fmt(r.p99RatioToFloor as number, 2)}x`,
          `${fmt(r.opsRatioToFloor as number, 3)}x`,
        ]),
    ),
    '',
    `sign-up: ${checks.signUpPerSec} users/s; Flock errors: ${checks.flockErrors} (REQUEST_RATE_LIMITED: ${checks.rateLimited}); requests cut by the time limit: ${checks.skipped}; like counts exact: ${checks.likeCountsExact}`,
    '',
  ];
  process.stderr.write(out.join('\n'));
}

async function cleanup(): Promise<void> {
  for (const c of clients) c.close();
  await Promise.allSettled(nodes.map((n) => n.stop()));
  for (const n of nodes) for (const [msg, count] of n.warnings) if (count > 1) progress(`${n.name} logged "${msg}" ${count} times in all`);
  await removeRun({ backing, dbName, mongo, redis, keyPattern: `${keyPrefix}:*` }, progress);
}

await runBenchmark(main, cleanup, progress);
