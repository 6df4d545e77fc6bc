// Fan-out benchmark (`npm run bench:fanout`; see BENCHMARKS.md, "Feeds
// fan-out (issue 6)"): an author with FOLLOWERS connected followers, spread
// over two Flock nodes and all watching their home timelines, posts; measured
// side by side, in one run and in alternating rounds, with a bare
// Socket.IO-on-uWebSockets room broadcast of the same payload to as many
// sockets over two processes.
//
//   flock merge   posts:create by an author at the fan-out threshold: the post is
//                 stored, the feeds consumer (consumers/feeds.ts) hydrates it and
//                 does io.to(feed:{author}).emit('feeds:post'); followers merge
//                 it into their home timelines at read time
//   flock write   the same by an author just below the threshold: the consumer
//                 emits first, then writes the post into every follower's
//                 stored feed (fan-out on write; timed until every feed has it)
//   bare-classic  two processes of bare Socket.IO on uWS with the classic Redis
//                 adapter (as Flock), the sockets in one room; an author socket
//                 sends `publish` and the server does io.to(room).emit() of the
//                 payload a Flock follower received (bench/lib/bare-socketio-server.ts)
//   bare-sharded  the same with createShardedAdapter (Redis 7 sharded pub/sub)
//   home          feeds:home {limit: 20} by HOME_READS followers (each once),
//                 HOME_CONCURRENCY outstanding, after the posts above; then
//                 HOME_SERIAL_READS more, one at a time
//
// All three systems hold their FOLLOWERS sockets at once (socket i on server
// i mod 2), in LOADERS forked load processes (bench/fanout/load.ts), and the
// rounds alternate (flock merge, bare-classic, bare-sharded, flock merge, ...),
// each starting once the one before reached every socket, so load from outside
// the bench (the machine is shared) falls on all three alike. The write posts
// come after, each followed by a wait until every follower's stored feed holds
// it, then the home reads.
//
// For each post: the time from the author's send to the first, the median and
// the last of the followers' receipts (one clock in every process,
// bench/fanout/clock.ts, checked at start), and deliveries per second =
// followers reached / time to the last. Every follower must get every post
// exactly once: lost and duplicate deliveries are counted per post. CPU per
// post is summed over each round's window (send to last receipt) per process.
//
// Setup, not measured: the graph is written straight into MongoDB
// (bench/fanout/dataset.ts); each Flock socket signs in with an access token
// signed with the nodes' JWT_SECRET; WATCH_SAMPLE sockets call the real
// feeds:watch (timed, and projected to all), and every socket is then joined
// to the same rooms through the nodes' adapter (bench/fanout/watch-rooms.ts).
//
// stdout: one JSON line per scenario and a final "targets" line.
// stderr: progress, the nodes' warnings, the tables.
// Backing services: MONGO_URL/REDIS_URL (and the rest of the environment) when
// MONGO_URL is set, otherwise resolved through the dev-services module like
// `npm test` does and stopped at the end. The database and the run's Redis keys
// are removed at the end. Exit code 0 unless something failed; a missed target,
// lost or duplicate deliveries are reported.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { io as ioClient, type Socket } from 'socket.io-client';
import { serverEvents } from '../channels/server-events.ts';
import { FlockClient } from '../client/flock-client.ts';
import { rooms } from '../server/delivery.ts';
import { now } from './fanout/clock.ts';
import { accessToken } from './fanout/token.ts';
import { dataset, followerId, writeDataset, type Dataset } from './fanout/dataset.ts';
import type { CompleteMessage, ConnectReply, DeliveriesReply, KeyDeliveries, LoadRequest, RequestReply } from './fanout/load.ts';
import { joinWatchRooms } from './fanout/watch-rooms.ts';
import { call, type Reply } from './lib/ipc.ts';
import { dbPerOp, mergeStats, type DbPerOp, type DbStats } from './lib/db-commands.ts';
import { childPid, processCpuMs, startNode, type FlockNode } from './lib/nodes.ts';
import { emit, intEnv, percentile, progress, round, runBenchmark, sleep } from './lib/run.ts';
import { benchServices, removeRun, type BenchServices } from './lib/services.ts';

// ---- parameters (every loop is bounded by a count and a time limit) ----

/** Connected followers of each author, and sockets of each bare baseline; half on each server. */
const FOLLOWERS = intEnv('BENCH_FANOUT_FOLLOWERS', 10_000);
/** Measured rounds: one post of the merge author and one broadcast of each baseline per round, after WARM_POSTS each. */
const POSTS = intEnv('BENCH_FANOUT_POSTS', 15);
/** Measured posts of the fan-out-on-write author, each one at a time. */
const WRITE_POSTS = intEnv('BENCH_FANOUT_WRITE_POSTS', 5);
const WARM_POSTS = 1;
/** Pause after a round reached every socket (or timed out) before the next. */
const POST_GAP_MS = 300;
/** A post not delivered to every follower within this long is reported as such. */
const DELIVERY_TIMEOUT_MS = 20_000;
const WRITE_DELIVERY_TIMEOUT_MS = 150_000;
/** After a write post, the bench waits (at most this long) until every follower's stored feed holds it. */
const FANOUT_SETTLE_MAX_MS = 150_000;
const FANOUT_POLL_MS = 50;
/** Late duplicates are looked for this long after the last post. */
const SETTLE_MS = 1_000;
/** Background CPU of everything running is measured with nothing sent, this long. */
const IDLE_MS = 3_000;
/** Real feeds:watch calls timed (the rest join through the adapter), at once, at most this long. */
const WATCH_SAMPLE = intEnv('BENCH_FANOUT_WATCH_SAMPLE', 3);
const WATCH_MAX_MS = 30_000;
/**
 * Home timeline reads: how many (each by another follower) and how many
 * outstanding at once; then HOME_SERIAL_READS more one at a time, for the cost
 * of a read without queueing.
 */
const HOME_READS = intEnv('BENCH_FANOUT_HOME_READS', 32);
const HOME_CONCURRENCY = intEnv('BENCH_FANOUT_HOME_CONCURRENCY', 8);
const HOME_SERIAL_READS = intEnv('BENCH_FANOUT_HOME_SERIAL_READS', 6);
const HOME_MAX_MS = 60_000;
const PAGE = 20;
const LOADERS = 2;
const ACK_TIMEOUT_MS = 60_000;
const CONNECT_TIMEOUT_MS = 180_000;
/** MongoDB command shapes shown per Flock scenario (costliest first). */
const DB_SHAPES_SHOWN = 6;
/** Whole-run watchdog: past it the bench fails instead of hanging. */
const WATCHDOG_MS = 12 * 60_000;

const TARGET_RATIO = 0.7;

/** The systems under test; also the loaders' socket groups. */
type System = 'flock' | 'bare-classic' | 'bare-sharded';

// ---- setup ----

const here = path.dirname(fileURLToPath(import.meta.url));
const tsx = import.meta.resolve('tsx');
const runId = randomBytes(4).toString('hex');
const dbName = `bench_fanout_${runId}`;
/** The run's Redis namespace (REDIS_KEY_PREFIX of the nodes, keys of the bare adapters); removed at the end. */
const prefix = `bfan${runId}`;
const jwtSecret = randomBytes(48).toString('base64');
const data: Dataset = dataset(runId, FOLLOWERS);

let backing: BenchServices | undefined;
let mongo: MongoClient | undefined;
let mongoUrl: string | undefined;
let redis: Redis | undefined;
let dbPid: number | undefined;
const nodes: FlockNode[] = [];
const loaders: ChildProcess[] = [];
const servers = new Set<ChildProcess>();
const clients: { close(): void }[] = [];

const watchdog = setTimeout(() => {
  progress(`watchdog: the bench ran longer than ${WATCHDOG_MS / 1000} s; aborting`);
  void cleanup().finally(() => process.exit(2));
}, WATCHDOG_MS);
watchdog.unref();

async function startNodes(env: Record<string, string>): Promise<void> {
  const started = performance.now();
  const starting = await Promise.allSettled(
    [0, 1].map((i) =>
      startNode({
        name: `bench-fanout-${runId}-${i}`,
        env: {
          ...env,
          MONGO_DB: dbName,
          REDIS_KEY_PREFIX: prefix,
          // Each follower socket claims its own address (bench/fanout/load.ts), so per-IP limits stay apart.
          TRUST_PROXY: 'true',
          RATE_LIMIT_IP_PER_SECOND: '1000',
          // One cluster: both nodes accept the tokens the bench and its loaders sign.
          JWT_SECRET: jwtSecret,
          FEED_FANOUT_THRESHOLD: String(data.fanoutThreshold),
          ACTOR_ASK_TIMEOUT_MS: String(ACK_TIMEOUT_MS),
        },
        dataDir: path.join(backing!.tmpDir, `node${i}`),
        log: (line) => process.stderr.write(`${line}\n`),
      }),
    ),
  );
  for (const s of starting) if (s.status === 'fulfilled') nodes.push(s.value);
  const failed = starting.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  progress(`2 Flock nodes ready after ${Math.round(performance.now() - started)} ms (FEED_FANOUT_THRESHOLD=${data.fanoutThreshold})`);
}

// ---- child processes ----

/** Waits for a child's first { ready: true } IPC message. */
function ready(child: ChildProcess, what: string, timeoutMs: number): Promise<{ port?: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: { ready?: boolean; port?: number }) => {
      if (!m?.ready) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`${what} exited (code ${code}) before it was ready`)));
  });
}

/** Loader completions: `${group}|${key}` -> loaders whose every socket of the group has the key. */
const completions = new Map<string, number>();
const waiters = new Map<string, () => void>();

function isComplete(m: unknown): m is CompleteMessage {
  const c = m as Partial<CompleteMessage> | null;
  return typeof c === 'object' && c !== null && c.op === 'complete' && typeof c.group === 'string' && typeof c.key === 'string';
}

async function startLoaders(): Promise<void> {
  await Promise.all(
    Array.from({ length: LOADERS }, async (_, i) => {
      const child = fork(path.join(here, 'fanout', 'load.ts'), [], { execArgv: ['--import', tsx], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      loaders.push(child);
      child.on('message', (m: unknown) => {
        if (!isComplete(m)) return;
        const id = `${m.group}|${m.key}`;
        const n = (completions.get(id) ?? 0) + 1;
        completions.set(id, n);
        if (n === LOADERS) waiters.get(id)?.();
      });
      await ready(child, `load generator ${i}`, 30_000);
    }),
  );
}

type LoadOp = LoadRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

function ask<T extends Reply>(loader: ChildProcess, request: LoadOp, timeoutMs: number): Promise<T> {
  return call<T>(loader, request, timeoutMs);
}

/** [from, count] of each loader's share of n. */
function shares(n: number): [number, number][] {
  const per = Math.ceil(n / LOADERS);
  return loaders.map((_, i) => [i * per, Math.max(0, Math.min(per, n - i * per))]);
}

/** Resolves true once every loader reported that every socket of the group got `key`, false after `timeoutMs`. */
function whenDelivered(group: System, key: string, timeoutMs: number): Promise<boolean> {
  const id = `${group}|${key}`;
  if (completions.get(id) === LOADERS) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      waiters.delete(id);
      resolve(false);
    }, timeoutMs);
    waiters.set(id, () => {
      clearTimeout(timer);
      waiters.delete(id);
      resolve(true);
    });
  });
}

/** Each loader's clock minus the bench's (ms), from the reading with the shortest of 10 round trips; receipt times are corrected by it. */
const clockOffsets: number[] = [];

async function clockCheck(): Promise<{ offsetMs: number; rttMs: number }> {
  let worst = { offsetMs: 0, rttMs: 0 };
  for (const loader of loaders) {
    let best = { rttMs: Number.POSITIVE_INFINITY, offsetMs: 0 };
    for (let k = 0; k < 10; k++) {
      const t0 = now();
      const { now: theirs } = await ask<Reply & { now: number }>(loader, { op: 'clock' }, 5_000);
      const t1 = now();
      if (t1 - t0 < best.rttMs) best = { rttMs: t1 - t0, offsetMs: theirs - (t0 + t1) / 2 };
    }
    clockOffsets.push(best.offsetMs);
    if (Math.abs(best.offsetMs) >= Math.abs(worst.offsetMs)) worst = best;
  }
  return { offsetMs: round(worst.offsetMs, 3), rttMs: round(worst.rttMs, 3) };
}

/** Connects FOLLOWERS sockets of a system, socket i to urls[i mod 2], split over the loaders. */
async function connectGroup(group: System, urls: string[], withAuth: boolean): Promise<number> {
  const started = performance.now();
  const replies = await Promise.all(
    shares(FOLLOWERS).map(([from, count], i) =>
      ask<ConnectReply>(
        loaders[i]!,
        { op: 'connect', group, urls, from, count, auth: withAuth ? { secret: jwtSecret, userPrefix: data.followerPrefix } : null },
        CONNECT_TIMEOUT_MS,
      ),
    ),
  );
  const connected = replies.reduce((s, r) => s + r.connected, 0);
  if (connected !== FOLLOWERS)
    throw new Error(`${group}: ${FOLLOWERS - connected} of ${FOLLOWERS} sockets failed to connect: ${replies.find((r) => r.firstError)?.firstError}`);
  return performance.now() - started;
}

interface BareServer {
  url: string;
  pid: number;
}

async function startBareServer(kind: 'classic' | 'sharded', redisUrl: string): Promise<BareServer> {
  const child = fork(path.join(here, 'lib', 'bare-socketio-server.ts'), [kind, redisUrl, `${prefix}:bare-${kind}`], {
    execArgv: ['--import', tsx],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  servers.add(child);
  child.once('exit', () => servers.delete(child));
  const { port } = await ready(child, `bare ${kind} server`, 60_000);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid! };
}

// ---- measurement ----

interface Sent {
  key: string;
  t0: number;
  ackMs: number;
}

interface CpuMark {
  serversMs: number;
  redisMs: number;
  dbMs: number;
  loadersMs: number;
  benchMs: number;
}

async function cpuMark(serverPids: number[]): Promise<CpuMark> {
  const info = await redis!.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  const sum = async (pids: number[]) => (await Promise.all(pids.map(processCpuMs))).reduce((s, x) => s + x, 0);
  const self = process.cpuUsage();
  return {
    serversMs: await sum(serverPids),
    redisMs: (field('used_cpu_user') + field('used_cpu_sys')) * 1000,
    dbMs: dbPid === undefined ? Number.NaN : await processCpuMs(dbPid),
    loadersMs: await sum(loaders.map((l) => l.pid!)),
    benchMs: (self.user + self.system) / 1000,
  };
}

function addCpu(into: CpuMark, a: CpuMark, b: CpuMark): void {
  for (const k of Object.keys(into) as (keyof CpuMark)[]) into[k] += b[k] - a[k];
}

const zeroCpu = (): CpuMark => ({ serversMs: 0, redisMs: 0, dbMs: 0, loadersMs: 0, benchMs: 0 });

/** One system under test: its server processes, how its author posts, and what the bench collected of its rounds. */
interface Target {
  system: System;
  path: string;
  what: string;
  pids: number[];
  send: (label: string, k: number) => Promise<Sent>;
  timeoutMs: number;
  sent: Sent[];
  errors: Record<string, number>;
  timedOut: number;
  cpu: CpuMark;
  db: DbStats[];
}

/** A round: one post of the target, once it reached every socket (or timed out); its CPU and (Flock) MongoDB commands are added to the target's. */
async function postOnce(t: Target, label: string, k: number, measured: boolean): Promise<Sent | undefined> {
  const flock = t.system === 'flock';
  if (flock && measured) await dbTake();
  const cpu0 = await cpuMark(t.pids);
  let sent: Sent | undefined;
  try {
    sent = await t.send(label, k);
    if (!(await whenDelivered(t.system, sent.key, Math.max(1_000, t.timeoutMs - (now() - sent.t0))))) {
      if (measured) t.timedOut++;
      progress(`${t.system} ${t.path}: ${sent.key} not delivered to every socket within ${t.timeoutMs / 1000} s`);
    }
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const name = typeof code === 'string' ? code : err instanceof Error && /timed out/i.test(err.message) ? 'ACK_TIMEOUT' : 'ERROR';
    if (measured) t.errors[name] = (t.errors[name] ?? 0) + 1;
    progress(`${t.system} ${t.path}: post ${label} ${k} failed: ${String(err)}`);
  }
  if (measured) {
    addCpu(t.cpu, cpu0, await cpuMark(t.pids));
    if (flock) t.db.push(await dbTake());
    if (sent) t.sent.push(sent);
  }
  await sleep(POST_GAP_MS);
  return sent;
}

/** The nodes' MongoDB commands since the last take (bench/lib/db-probe.ts). */
async function dbTake(): Promise<DbStats> {
  return mergeStats(await Promise.all(nodes.map((n) => n.dbStats(true))));
}

interface Collected {
  byKey: Map<string, KeyDeliveries>;
  sample: unknown;
  otherReceipts: number;
  droppedSockets: number;
}

/** What every loader recorded for a group's `keys`, merged (receipt times of all loaders, on the bench's clock, in one ascending list). */
async function collect(group: System, keys: string[]): Promise<Collected> {
  const replies = await Promise.all(loaders.map((l) => ask<DeliveriesReply>(l, { op: 'deliveries', group, keys }, 60_000)));
  const byKey = new Map<string, KeyDeliveries>();
  for (const key of keys) {
    const parts = replies.map((r) => r.keys.find((k) => k.key === key)!);
    byKey.set(key, {
      key,
      delivered: parts.reduce((s, p) => s + p.delivered, 0),
      duplicates: parts.reduce((s, p) => s + p.duplicates, 0),
      missing: parts.reduce((s, p) => s + p.missing, 0),
      // On the bench's clock.
      times: parts.flatMap((p, i) => p.times.map((x) => x - clockOffsets[i]!)).sort((a, b) => a - b),
    });
  }
  return {
    byKey,
    sample: replies.find((r) => r.sample !== undefined)?.sample,
    otherReceipts: replies.reduce((s, r) => s + r.otherReceipts, 0),
    droppedSockets: replies.reduce((s, r) => s + r.droppedSockets, 0),
  };
}

interface FanoutResult {
  scenario: 'fanout';
  system: System;
  path: string;
  what: string;
  followers: number;
  posts: number;
  errors: Record<string, number>;
  timedOut: number;
  deliveriesExpected: number;
  delivered: number;
  missing: number;
  duplicates: number;
  /** From the author's send, in ms, over the posts: p50 and p99 (nearest rank) of each. */
  ackMs: { p50: number; p99: number };
  firstMs: { p50: number; p99: number };
  medianSocketMs: { p50: number; p99: number };
  lastMs: { p50: number; p99: number; max: number };
  /** Followers reached / time to the last delivery, p50 over the posts. */
  deliveriesPerSec: number;
  /** Followers reached / (last - first delivery): the broadcast alone, p50 over the posts. */
  broadcastDeliveriesPerSec: number;
  /** CPU ms per post over the rounds' windows (send to last receipt): the system's servers (both), Redis, FerretDB, loaders, bench. */
  cpuMsPerPost: { servers: number; redis: number; db: number | null; loaders: number; bench: number };
  perPost: { firstMs: number; lastMs: number; delivered: number; duplicates: number }[];
  [extra: string]: unknown;
}

const results: FanoutResult[] = [];

function summarize(t: Target, got: Collected): FanoutResult {
  const per = t.sent.map((s) => {
    const d = got.byKey.get(s.key)!;
    const at = (i: number) => (d.times.length === 0 ? Number.NaN : d.times[Math.min(d.times.length - 1, i)]! - s.t0);
    return {
      ackMs: s.ackMs,
      firstMs: at(0),
      medianMs: at(Math.floor(d.times.length / 2)),
      lastMs: at(d.times.length - 1),
      delivered: d.delivered,
      duplicates: d.duplicates,
      missing: d.missing,
    };
  });
  const sorted = (pick: (p: (typeof per)[number]) => number) => per.map(pick).sort((a, b) => a - b);
  const q = (xs: number[], p: number) => round(percentile(xs, p), 1);
  const two = (xs: number[]) => ({ p50: q(xs, 0.5), p99: q(xs, 0.99) });
  const last = sorted((p) => p.lastMs);
  const n = Math.max(1, t.sent.length);
  const cpu = (x: number) => round(x / n, 1);
  return {
    scenario: 'fanout',
    system: t.system,
    path: t.path,
    what: t.what,
    followers: FOLLOWERS,
    posts: t.sent.length,
    errors: t.errors,
    timedOut: t.timedOut,
    deliveriesExpected: t.sent.length * FOLLOWERS,
    delivered: per.reduce((s, p) => s + p.delivered, 0),
    missing: per.reduce((s, p) => s + p.missing, 0),
    duplicates: per.reduce((s, p) => s + p.duplicates, 0),
    ackMs: two(sorted((p) => p.ackMs)),
    firstMs: two(sorted((p) => p.firstMs)),
    medianSocketMs: two(sorted((p) => p.medianMs)),
    lastMs: { ...two(last), max: q(last, 1) },
    deliveriesPerSec: round(
      percentile(
        sorted((p) => p.delivered / (p.lastMs / 1000)),
        0.5,
      ),
    ),
    broadcastDeliveriesPerSec: round(
      percentile(
        sorted((p) => p.delivered / ((p.lastMs - p.firstMs) / 1000)),
        0.5,
      ),
    ),
    cpuMsPerPost: {
      servers: cpu(t.cpu.serversMs),
      redis: cpu(t.cpu.redisMs),
      db: dbPid === undefined ? null : cpu(t.cpu.dbMs),
      loaders: cpu(t.cpu.loadersMs),
      bench: cpu(t.cpu.benchMs),
    },
    perPost: per.map((p) => ({ firstMs: round(p.firstMs, 1), lastMs: round(p.lastMs, 1), delivered: p.delivered, duplicates: p.duplicates })),
    ...(t.system === 'flock' && { db: dbPerOp(mergeStats(t.db), t.sent.length, DB_SHAPES_SHOWN, 1) }),
    otherReceipts: got.otherReceipts,
    droppedSockets: got.droppedSockets,
  };
}

/**
 * Waits until every follower's stored feed (`{prefix}:feed:{userId}`) holds the
 * post and no event is pending in the feeds consumer group, at most
 * FANOUT_SETTLE_MAX_MS. Each poll asks only about the feeds still missing it.
 */
async function untilStored(postId: string, t0: number): Promise<WriteSettle> {
  const stream = `${prefix}:social:events`;
  let missing = Array.from({ length: FOLLOWERS }, (_, i) => followerId(data, i));
  let storedMs: number | null = null;
  for (;;) {
    if (missing.length > 0) {
      const scores = (await missing.reduce((p, id) => p.zscore(`${prefix}:feed:${id}`, postId), redis!.pipeline()).exec()) ?? [];
      missing = missing.filter((_, i) => scores[i]?.[1] == null);
      if (missing.length === 0) storedMs = round(now() - t0);
    }
    const [pending] = (await redis!.xpending(stream, 'feeds')) as [number, ...unknown[]];
    if (missing.length === 0 && pending === 0) return { storedMs, missing: 0 };
    if (now() - t0 > FANOUT_SETTLE_MAX_MS) {
      progress(`flock write: after ${FANOUT_SETTLE_MAX_MS / 1000} s, ${missing.length} stored feeds lack the post and ${pending} events are pending; going on`);
      return { storedMs, missing: missing.length };
    }
    await sleep(FANOUT_POLL_MS);
  }
}

/** A write post: ms from its send until every follower's stored feed held it (null: not within the limit). */
interface WriteSettle {
  storedMs: number | null;
  missing: number;
}

interface HomeResult {
  scenario: 'home';
  system: 'flock';
  what: string;
  concurrency: number;
  requests: number;
  /** Not sent: the time limit ran out. */
  skipped: number;
  ok: number;
  errors: Record<string, number>;
  firstError?: string;
  opsPerSec: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
  maxms: number;
  cpuMsPerRead: { nodes: number; redis: number; db: number | null };
  db: DbPerOp;
}

/** `count` feeds:home by as many followers (each loader's sockets from `from` on), `concurrency` outstanding in all. */
async function homeReads(count: number, concurrency: number, from: number, storedPosts: number, totalPosts: number): Promise<HomeResult> {
  progress(`flock home: ${count} feeds:home {limit: ${PAGE}} by as many followers, ${concurrency} at once`);
  // Split over the loaders, or all on the first when one at a time.
  const plan = concurrency === 1 ? [{ count, concurrency }] : shares(count).map(([, n], i) => ({ count: n, concurrency: shares(concurrency)[i]![1] }));
  const pids = nodes.map((n) => n.pid);
  await dbTake();
  const cpu0 = await cpuMark(pids);
  const started = performance.now();
  const reads = await Promise.all(
    plan.map((p, i) =>
      ask<RequestReply>(
        loaders[i]!,
        {
          op: 'request',
          group: 'flock',
          event: 'feeds:home',
          payload: { limit: PAGE },
          from,
          count: p.count,
          concurrency: p.concurrency,
          maxMs: HOME_MAX_MS,
          expectItems: PAGE,
        },
        HOME_MAX_MS + ACK_TIMEOUT_MS,
      ),
    ),
  );
  const elapsedMs = performance.now() - started;
  const cpu1 = await cpuMark(pids);
  const db = await dbTake();
  const samples = reads.flatMap((r) => r.samplesMs).sort((a, b) => a - b);
  const errors: Record<string, number> = {};
  for (const r of reads) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  const ok = reads.reduce((s, r) => s + r.ok, 0);
  const per = (a: number, b: number) => round((b - a) / Math.max(1, ok), 1);
  const firstError = reads.find((r) => r.firstError)?.firstError;
  const result: HomeResult = {
    scenario: 'home',
    system: 'flock',
    what: `feeds:home {limit: ${PAGE}}, a full hydrated page, ${totalPosts} posts to choose from: ${storedPosts} of the author below the threshold from the stored feed, the rest merged from the author at it`,
    concurrency,
    requests: count,
    skipped: count - reads.reduce((s, r) => s + r.sent, 0),
    ok,
    errors,
    ...(firstError && { firstError }),
    opsPerSec: round(ok / (elapsedMs / 1000), 1),
    p50ms: round(percentile(samples, 0.5), 1),
    p90ms: round(percentile(samples, 0.9), 1),
    p99ms: round(percentile(samples, 0.99), 1),
    maxms: round(samples.at(-1) ?? Number.NaN, 1),
    cpuMsPerRead: {
      nodes: per(cpu0.serversMs, cpu1.serversMs),
      redis: per(cpu0.redisMs, cpu1.redisMs),
      db: Number.isNaN(cpu1.dbMs) ? null : per(cpu0.dbMs, cpu1.dbMs),
    },
    db: dbPerOp(db, ok, DB_SHAPES_SHOWN, 1),
  };
  progress(`flock home: ${ok} ok, p50 ${result.p50ms} ms, p99 ${result.p99ms} ms, ${result.opsPerSec}/s`);
  return result;
}

async function flockAuthor(url: string, userId: string, seq: number): Promise<FlockClient> {
  const token = await accessToken(jwtSecret, userId);
  // An address outside the followers' 198.18.0.0/15.
  const c = new FlockClient(url, {
    token,
    timeoutMs: ACK_TIMEOUT_MS,
    socket: { extraHeaders: { 'x-forwarded-for': `198.51.100.${seq}` }, reconnection: false },
  });
  clients.push(c);
  await c.connected();
  return c;
}

async function bareAuthor(url: string): Promise<Socket> {
  const socket = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  clients.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}

const postText = (label: string, k: number) =>
  `${label} ${k}: a new post for every follower watching, with a hashtag #fanoutbench and a sentence or two of text, as posts go.`;

type FeedsPost = ReturnType<(typeof serverEvents)['feeds:post']['payload']['parse']>;

interface Setup {
  insertMs: number;
  documents: Record<string, number>;
  connectMs: Record<System, number>;
  watch: { sample: number; ok: number; errors: Record<string, number>; p50ms: number; maxms: number; perSec: number; projectedAllSec: number };
  adapterJoinMs: number;
  clock: { offsetMs: number; rttMs: number };
  idleCpuMsPerSec: { flockNodes: number; bareServers: number; db: number | null; redis: number; loaders: number };
  writeSettle: WriteSettle[];
  loadAverage: { start: number[]; end: number[] };
}

// ---- run ----

async function main(): Promise<void> {
  const loadStart = os.loadavg().map((x) => round(x, 2));
  backing = await benchServices('fanout', progress);
  const { env, redisUrl } = backing;
  mongoUrl = backing.mongoUrl;
  redis = new Redis(redisUrl, { connectionName: 'bench-fanout', maxRetriesPerRequest: 1 });
  dbPid = backing.embedded ? await childPid('flock-ferretdb') : undefined;
  mongo = await MongoClient.connect(mongoUrl);

  // The graph, the nodes, the loaders and the bare servers, all at once.
  let t = performance.now();
  const [inserted, , , classicPair, shardedPair] = await Promise.all([
    (async () => {
      const documents = await writeDataset(mongo.db(dbName), data);
      const ms = performance.now() - t;
      progress(`wrote ${documents.accounts} accounts, ${documents.profiles} profiles, ${documents.edges} follow edges in ${Math.round(ms)} ms`);
      return { documents, ms };
    })(),
    startNodes(env),
    startLoaders(),
    Promise.all([startBareServer('classic', redisUrl), startBareServer('classic', redisUrl)]),
    Promise.all([startBareServer('sharded', redisUrl), startBareServer('sharded', redisUrl)]),
  ]);
  const clock = await clockCheck();
  progress(
    `everything started in ${Math.round(performance.now() - t)} ms; ${LOADERS} load processes, largest clock offset to the bench ${clock.offsetMs} ms (round trip ${clock.rttMs} ms), corrected for`,
  );

  // Flock: sockets, a timed sample of feeds:watch, everyone else's rooms through the adapter.
  const connectMs = {} as Record<System, number>;
  progress(`flock: connecting ${FOLLOWERS} signed-in sockets, socket i to node i mod 2`);
  connectMs.flock = round(
    await connectGroup(
      'flock',
      nodes.map((n) => n.url),
      true,
    ),
  );
  progress(`flock: connected in ${connectMs.flock} ms; timing ${WATCH_SAMPLE} real feeds:watch calls at once`);
  const w = await ask<RequestReply>(
    loaders[0]!,
    { op: 'request', group: 'flock', event: 'feeds:watch', payload: {}, from: 0, count: WATCH_SAMPLE, concurrency: WATCH_SAMPLE, maxMs: WATCH_MAX_MS },
    WATCH_MAX_MS + ACK_TIMEOUT_MS,
  );
  const watchSorted = [...w.samplesMs].sort((a, b) => a - b);
  const watchPerSec = w.ok / (w.elapsedMs / 1000);
  const watch = {
    sample: WATCH_SAMPLE,
    ok: w.ok,
    errors: w.errors,
    p50ms: round(percentile(watchSorted, 0.5)),
    maxms: round(watchSorted.at(-1) ?? Number.NaN),
    perSec: round(watchPerSec, 3),
    projectedAllSec: round(FOLLOWERS / watchPerSec),
  };
  progress(
    `flock: feeds:watch ${w.ok}/${WATCH_SAMPLE} ok ${JSON.stringify(w.errors)}, p50 ${watch.p50ms} ms, ${watch.perSec}/s: all ${FOLLOWERS} would take ~${watch.projectedAllSec} s`,
  );
  t = performance.now();
  await joinWatchRooms({
    redisUrl,
    adapterKey: `${prefix}:sio`,
    userIds: Array.from({ length: FOLLOWERS }, (_, i) => followerId(data, i)),
    authors: [data.writeAuthor, data.mergeAuthor],
  });
  const adapterJoinMs = round(performance.now() - t);
  progress(`flock: every socket joined its feeds:watch rooms through the adapter in ${adapterJoinMs} ms`);

  // The baselines: sockets, all in one room.
  const room = rooms.feed(data.mergeAuthor);
  for (const [system, pair] of [
    ['bare-classic', classicPair],
    ['bare-sharded', shardedPair],
  ] as const) {
    progress(`${system}: connecting ${FOLLOWERS} sockets, socket i to server i mod 2`);
    connectMs[system] = round(
      await connectGroup(
        system,
        pair.map((s) => s.url),
        false,
      ),
    );
    const joins = await Promise.all(loaders.map((l) => ask<RequestReply>(l, { op: 'join', group: system, room }, CONNECT_TIMEOUT_MS)));
    const joined = joins.reduce((s, r) => s + r.ok, 0);
    if (joined !== FOLLOWERS) throw new Error(`${system}: ${FOLLOWERS - joined} sockets did not join the room: ${joins.find((r) => r.firstError)?.firstError}`);
    progress(`${system}: connected in ${connectMs[system]} ms, all in one room`);
  }

  // The systems under test.
  const merger = await flockAuthor(nodes[0]!.url, data.mergeAuthor, 1);
  const writer = await flockAuthor(nodes[0]!.url, data.writeAuthor, 2);
  const create =
    (author: FlockClient) =>
    async (label: string, k: number): Promise<Sent> => {
      const t0 = now();
      const view = await author.request('posts:create', { text: postText(label, k) });
      return { key: view.postId, t0, ackMs: now() - t0 };
    };
  const target = (system: System, fanPath: string, what: string, pids: number[], send: Target['send'], timeoutMs = DELIVERY_TIMEOUT_MS): Target => ({
    system,
    path: fanPath,
    what,
    pids,
    send,
    timeoutMs,
    sent: [],
    errors: {},
    timedOut: 0,
    cpu: zeroCpu(),
    db: [],
  });
  const nodePids = nodes.map((n) => n.pid);
  const flockMerge = target(
    'flock',
    'merge',
    `posts:create by an author with ${FOLLOWERS + 1} followers (>= FEED_FANOUT_THRESHOLD ${data.fanoutThreshold}): merged at read time, live by io.to(feed:{author}).emit`,
    nodePids,
    create(merger),
  );
  const flockWrite = target(
    'flock',
    'write',
    `posts:create by an author with ${FOLLOWERS} followers (< FEED_FANOUT_THRESHOLD): written into every follower's stored feed, then live by io.to(feed:{author}).emit`,
    nodePids,
    create(writer),
    WRITE_DELIVERY_TIMEOUT_MS,
  );

  // Flock's warm-up post gives the payload the baselines broadcast.
  let payload: FeedsPost | undefined;
  for (let k = 0; k < WARM_POSTS; k++) {
    const warm = await postOnce(flockMerge, 'warm-up', k, false);
    if (!warm || completions.get(`flock|${warm.key}`) !== LOADERS) throw new Error('flock: a warm-up post did not reach every follower');
    if (k === WARM_POSTS - 1) {
      const parsed = serverEvents['feeds:post'].payload.safeParse((await collect('flock', [warm.key])).sample);
      if (!parsed.success) throw new Error(`flock: no feeds:post payload to send in the baselines: ${parsed.error.message}`);
      payload = parsed.data;
    }
  }
  const sample = payload!;
  progress(`the baselines broadcast the payload a follower got: ${Buffer.byteLength(JSON.stringify(sample))} bytes of JSON`);
  const publish =
    (kind: 'classic' | 'sharded', author: Socket) =>
    async (label: string, k: number): Promise<Sent> => {
      const key = `p_${kind[0]}${label[0]}${k}`.padEnd(sample.post.postId.length, 'x');
      const t0 = now();
      await author.timeout(ACK_TIMEOUT_MS).emitWithAck('publish', { room, event: 'feeds:post', payload: { ...sample, post: { ...sample.post, postId: key } } });
      return { key, t0, ackMs: now() - t0 };
    };
  const bare = (kind: 'classic' | 'sharded', pair: BareServer[], author: Socket) =>
    target(
      `bare-${kind}`,
      '-',
      `bare Socket.IO on uWS, ${kind === 'classic' ? 'classic Redis adapter (as Flock)' : 'createShardedAdapter (Redis 7 sharded pub/sub, dynamic channels)'}, 2 servers: io.to(room).emit(payload) on the first`,
      pair.map((s) => s.pid),
      publish(kind, author),
    );
  const bareClassic = bare('classic', classicPair, await bareAuthor(classicPair[0].url));
  const bareSharded = bare('sharded', shardedPair, await bareAuthor(shardedPair[0].url));
  for (const b of [bareClassic, bareSharded]) {
    for (let k = 0; k < WARM_POSTS; k++) {
      const warm = await postOnce(b, 'warm-up', k, false);
      if (!warm || completions.get(`${b.system}|${warm.key}`) !== LOADERS) throw new Error(`${b.system}: a warm-up broadcast did not reach every socket`);
    }
  }

  // Background CPU with everything connected and nothing sent.
  const allServerPids = [...nodePids, ...bareClassic.pids, ...bareSharded.pids];
  const idle0 = await Promise.all([cpuMark(nodePids), cpuMark([...bareClassic.pids, ...bareSharded.pids])]);
  await sleep(IDLE_MS);
  const idle1 = await Promise.all([cpuMark(nodePids), cpuMark([...bareClassic.pids, ...bareSharded.pids])]);
  const perSec = (a: number, b: number) => round(((b - a) / IDLE_MS) * 1000, 1);
  const idleCpuMsPerSec = {
    flockNodes: perSec(idle0[0].serversMs, idle1[0].serversMs),
    bareServers: perSec(idle0[1].serversMs, idle1[1].serversMs),
    db: dbPid === undefined ? null : perSec(idle0[0].dbMs, idle1[0].dbMs),
    redis: perSec(idle0[0].redisMs, idle1[0].redisMs),
    loaders: perSec(idle0[0].loadersMs, idle1[0].loadersMs),
  };
  progress(`background CPU, ms per second: ${JSON.stringify(idleCpuMsPerSec)} (${allServerPids.length} server processes up)`);

  // The measured rounds, alternating.
  progress(`${POSTS} rounds: a post of the merge author, then a broadcast of each baseline, each to ${FOLLOWERS} sockets`);
  for (let k = 0; k < POSTS; k++) {
    for (const t of [flockMerge, bareClassic, bareSharded]) await postOnce(t, 'post', k, true);
  }

  // Fan-out on write, each post followed by a wait until the consumers are idle.
  progress(
    `flock write: ${WRITE_POSTS} post(s) by an author with ${FOLLOWERS} followers (below the threshold), up to ${WRITE_DELIVERY_TIMEOUT_MS / 1000} s each`,
  );
  const writeSettle: Setup['writeSettle'] = [];
  for (let k = 0; k < WRITE_POSTS; k++) {
    const sent = await postOnce(flockWrite, 'write', k, true);
    if (!sent) continue;
    const settled = await untilStored(sent.key, sent.t0);
    writeSettle.push(settled);
    progress(
      `flock write: post ${k} reached ${completions.get(`flock|${sent.key}`) === LOADERS ? 'every' : 'not every'} follower live; ` +
        (settled.storedMs === null
          ? `${settled.missing} stored feeds still lack it`
          : `every stored feed held it ${Math.round(settled.storedMs).toLocaleString('en-US')} ms after the send`),
    );
  }
  // The MongoDB commands of the fan-out into the stored feeds belong to the write posts.
  flockWrite.db.push(await dbTake());

  // Enough posts for a full home page, then the reads.
  const posts = WARM_POSTS + flockMerge.sent.length + flockWrite.sent.length;
  for (let k = 0; k <= PAGE - posts; k++) await postOnce(flockMerge, 'top-up', k, false);
  const totalPosts = Math.max(posts, PAGE + 1);
  const homes = [
    await homeReads(HOME_READS, HOME_CONCURRENCY, WATCH_SAMPLE, flockWrite.sent.length, totalPosts),
    // Other followers again: the loaders' sockets past the ones read above.
    await homeReads(HOME_SERIAL_READS, 1, WATCH_SAMPLE + HOME_READS, flockWrite.sent.length, totalPosts),
  ];

  await sleep(SETTLE_MS);
  for (const t of [flockMerge, flockWrite, bareClassic, bareSharded]) {
    results.push(
      summarize(
        t,
        await collect(
          t.system,
          t.sent.map((s) => s.key),
        ),
      ),
    );
  }
  const setupReport: Setup = {
    insertMs: round(inserted.ms),
    documents: inserted.documents,
    connectMs,
    watch,
    adapterJoinMs,
    clock,
    idleCpuMsPerSec,
    writeSettle,
    loadAverage: { start: loadStart, end: os.loadavg().map((x) => round(x, 2)) },
  };
  for (const r of results) emit(r);
  for (const h of homes) emit(h);
  const classic = results.find((r) => r.system === 'bare-classic')!;
  const ratio = (r: FanoutResult | undefined) => (r && r.posts > 0 ? round(r.deliveriesPerSec / classic.deliveriesPerSec, 3) : null);
  const mergeRatio = ratio(results.find((r) => r.path === 'merge'));
  const writeRatio = ratio(results.find((r) => r.path === 'write'));
  const targets: Targets = {
    scenario: 'targets',
    setup: setupReport,
    flockMergeDeliveriesPerSecOverBare: { measured: mergeRatio, target: `>= ${TARGET_RATIO}`, met: mergeRatio !== null && mergeRatio >= TARGET_RATIO },
    flockWriteDeliveriesPerSecOverBare: { measured: writeRatio, target: `>= ${TARGET_RATIO}`, met: writeRatio !== null && writeRatio >= TARGET_RATIO },
    shardedOverClassic: ratio(results.find((r) => r.system === 'bare-sharded')),
    lost: results.reduce((s, r) => s + r.missing, 0),
    duplicates: results.reduce((s, r) => s + r.duplicates, 0),
    nodeWarnings: Object.fromEntries(nodes.map((n) => [n.name, Object.fromEntries(n.warnings)])),
  };
  emit(targets);
  printTables(setupReport, homes, targets);
}

interface Targets {
  scenario: 'targets';
  setup: Setup;
  flockMergeDeliveriesPerSecOverBare: { measured: number | null; target: string; met: boolean };
  flockWriteDeliveriesPerSecOverBare: { measured: number | null; target: string; met: boolean };
  shardedOverClassic: number | null;
  lost: number;
  duplicates: number;
  nodeWarnings: Record<string, Record<string, number>>;
}

// ---- output ----

function table(header: string[], rows: string[][], leftColumns = 2): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

function printTables(setup: Setup, homes: HomeResult[], targets: Targets): void {
  const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
  const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  const classic = results.find((b) => b.system === 'bare-classic')!;
  const verdict = (name: string, v: Targets['flockMergeDeliveriesPerSecOverBare']) =>
    `target ${name} deliveries/s >= ${TARGET_RATIO}x bare-classic: ${v.measured === null ? 'not measured' : `${v.met ? 'MET' : 'MISSED'} (${v.measured.toFixed(3)}x)`}`;
  const shapes = (name: string, d: DbPerOp) => [
    `  ${name}: ${d.commands} commands, ${d.ms} ms`,
    ...d.byShape.map((b) => `    ${b.n.toFixed(1).padStart(7)} x ${b.shape.padEnd(64)} ${b.ms.toFixed(1).padStart(9)} ms`),
  ];
  const out = [
    '',
    `setup: ${setup.documents.accounts} accounts and ${setup.documents.edges} follow edges written in ${int(setup.insertMs)} ms; sockets connected in ${int(setup.connectMs.flock)} ms (flock, signed in), ` +
      `${int(setup.connectMs['bare-classic'])} and ${int(setup.connectMs['bare-sharded'])} ms (bare); feeds:watch ${setup.watch.ok}/${setup.watch.sample} ok, p50 ${int(setup.watch.p50ms)} ms, ` +
      `${setup.watch.perSec}/s (~${int(setup.watch.projectedAllSec)} s for all ${FOLLOWERS}); the rest joined through the adapter in ${int(setup.adapterJoinMs)} ms`,
    `largest clock offset of a load process ${setup.clock.offsetMs} ms (measured with a ${setup.clock.rttMs} ms round trip, corrected for); load average ${setup.loadAverage.start.join(' ')} at start, ${setup.loadAverage.end.join(' ')} at end`,
    `background CPU with everything connected, ms/s: flock nodes ${setup.idleCpuMsPerSec.flockNodes}, FerretDB ${setup.idleCpuMsPerSec.db ?? '-'}, bare servers ${setup.idleCpuMsPerSec.bareServers}, Redis ${setup.idleCpuMsPerSec.redis}, loaders ${setup.idleCpuMsPerSec.loaders}`,
    '',
    `fan-out to ${FOLLOWERS.toLocaleString('en-US')} sockets over 2 servers (${LOADERS} load processes); ms from the author's send, p50 over the posts; deliv/s = sockets reached / time to the last, p50`,
    ...table(
      [
        'system',
        'path',
        'posts',
        'delivered',
        'lost',
        'dup',
        'ack',
        'first',
        'median',
        'last p50',
        'last p99',
        'deliv/s',
        'bcast/s',
        'ratio',
        'cpu srv',
        'cpu redis',
        'cpu db',
        'cpu load',
      ],
      results.map((r) => [
        r.system,
        r.path,
        String(r.posts),
        int(r.delivered),
        int(r.missing),
        int(r.duplicates),
        ms(r.ackMs.p50),
        ms(r.firstMs.p50),
        ms(r.medianSocketMs.p50),
        ms(r.lastMs.p50),
        ms(r.lastMs.p99),
        int(r.deliveriesPerSec),
        int(r.broadcastDeliveriesPerSec),
        `${(r.deliveriesPerSec / classic.deliveriesPerSec).toFixed(3)}x`,
        ms(r.cpuMsPerPost.servers),
        ms(r.cpuMsPerPost.redis),
        r.cpuMsPerPost.db === null ? '-' : ms(r.cpuMsPerPost.db),
        ms(r.cpuMsPerPost.loaders),
      ]),
    ),
    '  ack: posts:create acked, or the bare server acked `publish` after its emit; first / median / last: the first, the median and the last socket to receive the post;',
    '  last p99 is the nearest-rank p99 (the slowest post below 100 posts); bcast/s = sockets / (last - first); ratio = deliv/s over bare-classic;',
    "  cpu: ms per post over each round's window (send to last receipt): the system's own servers (both), Redis, FerretDB, the load processes",
    `flock write, stored: ${setup.writeSettle.map((w) => (w.storedMs === null ? `${int(w.missing)} of ${FOLLOWERS} feeds still lacked the post` : `every follower's stored feed held the post ${int(w.storedMs)} ms after the send`)).join('; ')}`,
    '',
    ...homes.map(
      (home) =>
        `home: ${home.ok}/${home.requests} feeds:home {limit: ${PAGE}} with ${PAGE} items (${home.skipped} not sent in ${HOME_MAX_MS / 1000} s), ${home.concurrency} at once: p50 ${ms(home.p50ms)} ms, p90 ${ms(home.p90ms)} ms, p99 ${ms(home.p99ms)} ms, max ${ms(home.maxms)} ms, ` +
        `${home.opsPerSec}/s; errors ${JSON.stringify(home.errors)}; cpu per read: nodes ${home.cpuMsPerRead.nodes} ms, FerretDB ${home.cpuMsPerRead.db ?? '-'} ms, Redis ${home.cpuMsPerRead.redis} ms`,
    ),
    '',
    "the nodes' MongoDB commands per post / per read, costliest first: count x shape, driver-side ms (waiting in FerretDB's queue included, summed over commands in flight at once)",
    ...results.filter((r) => r.system === 'flock').flatMap((r) => shapes(`flock ${r.path}`, r.db as DbPerOp)),
    ...homes.flatMap((home) => shapes(`home, ${home.concurrency} at once`, home.db)),
    '',
    verdict('flock merge', targets.flockMergeDeliveriesPerSecOverBare),
    verdict('flock write', targets.flockWriteDeliveriesPerSecOverBare),
    `bare-sharded / bare-classic deliveries/s: ${targets.shardedOverClassic === null ? '-' : `${targets.shardedOverClassic.toFixed(3)}x`}; lost deliveries ${targets.lost}, duplicates ${targets.duplicates}`,
    '',
  ];
  process.stderr.write(out.join('\n'));
}

async function cleanup(): Promise<void> {
  for (const c of clients) c.close();
  // The loaders close their sockets and exit when their IPC channel closes.
  await Promise.allSettled(
    loaders.map(async (l) => {
      if (l.exitCode !== null || l.signalCode !== null) return;
      const exited = new Promise((resolve) => l.once('exit', resolve));
      l.disconnect();
      const timer = setTimeout(() => l.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  for (const s of servers) s.kill('SIGTERM');
  await Promise.allSettled(nodes.map((n) => n.stop()));
  for (const n of nodes) for (const [msg, count] of n.warnings) if (count > 1) progress(`${n.name} logged "${msg}" ${count} times in all`);
  await removeRun({ backing, dbName, mongo, redis, keyPattern: `${prefix}:*` }, progress);
}

await runBenchmark(main, cleanup, progress);
