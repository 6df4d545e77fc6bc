// Actor runtime benchmarks, each measured side by side with its baseline in
// one run (`npm run bench:actors`; see BENCHMARKS.md).
//
//   direct-call      baseline: a plain async function doing a CachedCounter's work
//   local-ask        asks to a CachedCounter active on this runtime (64 outstanding)
//   durable-ask      asks to a durable Counter (one MongoDB write per message), sequential
//   durable-ask-c64  the same over 64 Counters with 64 outstanding asks
//   cold-activation  first ask to never-seen Counters (Redis claim + MongoDB claim/load)
//   redis-rtt        baseline: ioredis PING round trip
//   pubsub-rtt       baseline: PUBLISH -> subscriber in runtime B's process -> PUBLISH back
//   cross-node-ask   asks from this runtime (A) to a CachedCounter active on runtime B
//                    in a forked process (bench/actor-node.ts), sequential
//   cross-node-ask-c64  the same with 64 outstanding asks
// redis-rtt, pubsub-rtt and cross-node-ask run in interleaved rounds, so
// machine drift during the run affects the baselines and the runtime alike.
//
// stdout: one JSON line per scenario and a final "targets" line (nothing else,
// so `npm run -s bench:actors > out.jsonl` gives clean JSON lines).
// stderr: progress and the human-readable table.
// Backing services: MONGO_URL/REDIS_URL when set, otherwise resolved (and
// stopped at the end) through the dev-services module like `npm test` does.
// Exit code 0 unless something failed; missed targets are only reported.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import { pino } from 'pino';
import { ActorRuntime } from '../actors/runtime.ts';
import { CachedCounter, Counter, fixtureActorTypes } from '../testkit/actors.ts';
import { percentile, progress, round, runBenchmark } from './lib/run.ts';
import { benchServices, type BenchServices } from './lib/services.ts';

// ---- parameters (every loop is bounded by a count and a time limit) ----

const CONCURRENCY = 64;
const LOCAL = { n: 200_000, warmup: 10_000, maxMs: 20_000 };
const DURABLE_SEQ = { n: 2_000, warmup: 100, maxMs: 15_000 };
const DURABLE_PAR = { n: 20_000, warmup: 640, maxMs: 12_000, actors: 64 };
const COLD = { n: 500, warmup: 20, maxMs: 45_000 };
const RTT = { n: 5_000, rounds: 5, warmup: 500, maxMs: 15_000 };
const CROSS_PAR = { n: 50_000, warmup: 2_000, maxMs: 12_000 };
/** Whole-run watchdog: past it the bench fails instead of hanging. */
const WATCHDOG_MS = 4 * 60_000;

const TARGET_LOCAL_OPS = 50_000;
const TARGET_CROSS_RATIO = 3;

// ---- measurement ----

interface Run {
  samplesMs: number[];
  elapsedMs: number;
}

/** Runs `op` n times (or until maxMs) with `concurrency` calls outstanding; one latency sample per call. */
async function measure(op: (i: number, worker: number) => Promise<unknown>, n: number, concurrency: number, maxMs: number): Promise<Run> {
  const samplesMs: number[] = [];
  let issued = 0;
  const started = performance.now();
  const stopAt = started + maxMs;
  const worker = async (w: number) => {
    while (issued < n) {
      const t0 = performance.now();
      if (t0 > stopAt) break;
      const i = issued++;
      await op(i, w);
      samplesMs.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return { samplesMs, elapsedMs: performance.now() - started };
}

function merge(runs: Run[]): Run {
  return { samplesMs: runs.flatMap((r) => r.samplesMs), elapsedMs: runs.reduce((sum, r) => sum + r.elapsedMs, 0) };
}

interface Result {
  scenario: string;
  opsPerSec: number;
  p50us: number;
  p90us: number;
  p99us: number;
  maxus: number;
  n: number;
  concurrency: number;
  seconds: number;
  [extra: string]: unknown;
}

const results: Result[] = [];

function summarize(scenario: string, run: Run, concurrency: number): Result {
  const sorted = [...run.samplesMs].sort((x, y) => x - y);
  const us = (q: number) => round(percentile(sorted, q) * 1000, 1);
  return {
    scenario,
    opsPerSec: Math.round(sorted.length / (run.elapsedMs / 1000)),
    p50us: us(0.5),
    p90us: us(0.9),
    p99us: us(0.99),
    maxus: round((sorted.at(-1) ?? Number.NaN) * 1000, 1),
    n: sorted.length,
    concurrency,
    seconds: Math.round(run.elapsedMs) / 1000,
  };
}

/** Prints one scenario's JSON line (with any extra fields) and keeps it for the table. */
function report(result: Result, extra: Record<string, unknown> = {}): Result {
  const full: Result = { ...result, ...extra };
  results.push(full);
  process.stdout.write(`${JSON.stringify(full)}\n`);
  return full;
}

// ---- setup ----

const runId = randomBytes(4).toString('hex');
const namespace = `bench${runId}`;
const dbName = `bench_actors_${runId}`;
const remoteKey = 'remote';

let backing: BenchServices | undefined;
let connection: Connection | undefined;
let runtimeA: ActorRuntime | undefined;
let nodeB: { child: ChildProcess; exited: Promise<void> } | undefined;
const redisClients: Redis[] = [];
let redisUrl = '';

const watchdog = setTimeout(() => {
  progress(`watchdog: the bench ran longer than ${WATCHDOG_MS / 1000} s; aborting`);
  nodeB?.child.kill('SIGKILL');
  void (backing?.stop() ?? Promise.resolve()).finally(() => process.exit(2));
}, WATCHDOG_MS);
watchdog.unref();

interface NodeMessage {
  ready?: boolean;
  runtimeId?: string;
  active?: string[];
  id?: number;
}

async function startNodeB(mongoUrl: string, poolSize: number): Promise<{ runtimeId: string; active: string[] }> {
  const entry = fileURLToPath(new URL('./actor-node.ts', import.meta.url));
  const child = fork(entry, [], {
    execArgv: ['--import', import.meta.resolve('tsx')],
    env: {
      ...process.env,
      MONGO_URL: mongoUrl,
      REDIS_URL: redisUrl,
      BENCH_DB: dbName,
      BENCH_NAMESPACE: namespace,
      BENCH_REMOTE_KEY: remoteKey,
      BENCH_POOL_SIZE: String(poolSize),
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  nodeB = { child, exited };
  return new Promise((resolve, reject) => {
    const onMessage = (m: NodeMessage) => {
      if (!m.ready) return;
      child.off('message', onMessage);
      resolve({ runtimeId: m.runtimeId!, active: m.active ?? [] });
    };
    child.on('message', onMessage);
    void exited.then(() => reject(new Error(`runtime B exited (code ${child.exitCode}) before it was ready`)));
    setTimeout(() => reject(new Error('runtime B not ready within 60 s')), 60_000).unref();
  });
}

let ipcSeq = 0;
function activeOnB(): Promise<string[]> {
  const child = nodeB!.child;
  const id = ipcSeq++;
  return new Promise((resolve, reject) => {
    const onMessage = (m: NodeMessage) => {
      if (m.id !== id) return;
      child.off('message', onMessage);
      resolve(m.active ?? []);
    };
    child.on('message', onMessage);
    child.send({ op: 'active', id });
    setTimeout(() => reject(new Error('runtime B did not answer over IPC')), 10_000).unref();
  });
}

async function stopNodeB(): Promise<void> {
  if (!nodeB) return;
  const { child, exited } = nodeB;
  if (child.exitCode === null && child.signalCode === null) {
    if (child.connected) child.send({ op: 'stop' });
    else child.kill('SIGTERM');
    const timeout = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timeout);
  }
}

async function cleanup(): Promise<void> {
  await stopNodeB().catch(() => {});
  await runtimeA?.stop().catch(() => {});
  if (connection) {
    await connection.dropDatabase().catch((err: unknown) => progress(`dropping ${dbName} failed: ${String(err)}`));
    await connection.close().catch(() => {});
  }
  if (redisUrl) {
    // Remove whatever the runtimes left under the namespace (directory entries, the epoch counter).
    const redis = new Redis(redisUrl, { connectionName: 'bench-cleanup', maxRetriesPerRequest: 1 });
    try {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    } catch (err) {
      progress(`redis cleanup failed: ${String(err)}`);
    }
    redisClients.push(redis);
  }
  await Promise.allSettled(redisClients.map((r) => r.quit()));
  await backing?.stop();
}

// ---- scenarios ----

async function main(): Promise<void> {
  backing = await benchServices('actors', progress);
  const { mongoUrl, poolSize } = backing;
  redisUrl = backing.redisUrl;
  connection = await mongoose.createConnection(mongoUrl, { dbName, maxPoolSize: poolSize }).asPromise();
  runtimeA = await ActorRuntime.start({
    redisUrl,
    connection,
    nodeId: 'bench-a',
    namespace,
    types: fixtureActorTypes,
    log: pino({ level: 'warn', base: { node: 'bench-a' } }, pino.destination(2)),
    idleAfterMs: 10 * 60_000,
  });
  const a = runtimeA;
  progress(`runtime A ${a.id}; namespace ${namespace}; db ${dbName}`);

  // 1. local asks vs. a direct call doing the same work.
  const schema = CachedCounter.messages.increment.input;
  let directCount = 0;
  const direct = async (input: unknown): Promise<{ count: number }> => {
    const parsed = schema.safeParse(input);
    if (!parsed.success) throw new Error('invalid input');
    directCount += parsed.data.by;
    return { count: directCount };
  };
  progress(`direct-call: ${LOCAL.n} calls, ${CONCURRENCY} outstanding`);
  await measure(() => direct({ by: 1 }), LOCAL.warmup, CONCURRENCY, LOCAL.maxMs);
  const directCall = report(summarize('direct-call', await measure(() => direct({ by: 1 }), LOCAL.n, CONCURRENCY, LOCAL.maxMs), CONCURRENCY));

  const local = a.ref(CachedCounter, 'local');
  await local.ask('get', {}); // activates it on A
  if (!a.activeAddresses().includes('cached-counter/local')) throw new Error('local actor is not active on runtime A');
  progress(`local-ask: ${LOCAL.n} asks, ${CONCURRENCY} outstanding`);
  await measure(() => local.ask('increment', { by: 1 }), LOCAL.warmup, CONCURRENCY, LOCAL.maxMs);
  const localRun = await measure(() => local.ask('increment', { by: 1 }), LOCAL.n, CONCURRENCY, LOCAL.maxMs);
  const { count: localCount } = await local.ask('get', {});
  const localAsk = summarize('local-ask', localRun, CONCURRENCY);
  report(localAsk, {
    baseline: 'direct-call',
    opsRatioToBaseline: round3(localAsk.opsPerSec / directCall.opsPerSec),
    countChecked: localCount === LOCAL.warmup + localRun.samplesMs.length,
    targetOpsPerSec: TARGET_LOCAL_OPS,
    targetMet: localAsk.opsPerSec >= TARGET_LOCAL_OPS,
  });

  // 2. durable asks: one MongoDB write per message.
  const durable = a.ref(Counter, 'durable-seq');
  progress(`durable-ask: ${DURABLE_SEQ.n} sequential asks`);
  await measure(() => durable.ask('increment', { by: 1 }), DURABLE_SEQ.warmup, 1, DURABLE_SEQ.maxMs);
  report(summarize('durable-ask', await measure(() => durable.ask('increment', { by: 1 }), DURABLE_SEQ.n, 1, DURABLE_SEQ.maxMs), 1), { actors: 1 });

  const durables = Array.from({ length: DURABLE_PAR.actors }, (_, i) => a.ref(Counter, `durable-par-${i}`));
  const durablePar = (_i: number, w: number) => durables[w % durables.length]!.ask('increment', { by: 1 });
  progress(`durable-ask-c64: up to ${DURABLE_PAR.n} asks over ${DURABLE_PAR.actors} actors, ${CONCURRENCY} outstanding`);
  await measure(durablePar, DURABLE_PAR.warmup, CONCURRENCY, DURABLE_PAR.maxMs);
  report(summarize('durable-ask-c64', await measure(durablePar, DURABLE_PAR.n, CONCURRENCY, DURABLE_PAR.maxMs), CONCURRENCY), {
    actors: DURABLE_PAR.actors,
  });

  // 3. cold activations of never-seen durable actors.
  progress(`cold-activation: first ask to ${COLD.n} new Counters, sequential`);
  await measure((i) => a.ref(Counter, `cold-warm-${i}`).ask('get', {}), COLD.warmup, 1, COLD.maxMs);
  const activeBefore = a.activeAddresses().length;
  const coldRun = await measure((i) => a.ref(Counter, `cold-${i}`).ask('get', {}), COLD.n, 1, COLD.maxMs);
  report(summarize('cold-activation', coldRun, 1), { message: 'get', activated: a.activeAddresses().length - activeBefore });

  // 4. cross-node asks vs. raw Redis round trips, measured in interleaved rounds
  //    (PING, pub/sub echo, cross-node ask, PING, ...) so drift hits all three alike.
  const redis = new Redis(redisUrl, { connectionName: 'bench-a-rtt' });
  const pongSub = new Redis(redisUrl, { connectionName: 'bench-a-pong-sub' });
  redisClients.push(redis, pongSub);
  const remoteAddress = `cached-counter/${remoteKey}`;
  const inboxSubscribers = async (runtimeId: string) => {
    const reply = (await redis.pubsub('NUMSUB', `${namespace}:actors:inbox:${runtimeId}`)) as [string, number | string];
    return Number(reply[1]);
  };
  if ((await inboxSubscribers(a.id)) !== 1)
    throw new Error(`runtime A's inbox has no subscriber: it cannot receive replies (see BENCHMARKS.md, "inbox subscription lost")`);

  // A runtime can come up without its inbox subscription (an ioredis race in
  // ActorRuntime.open, see BENCHMARKS.md); then nothing reaches its actors.
  // That is reported, and B is started again, at most twice.
  let lostInboxRestarts = 0;
  let b: { runtimeId: string; active: string[] };
  for (;;) {
    progress('starting runtime B in a child process');
    b = await startNodeB(mongoUrl, poolSize);
    if (!b.active.includes(remoteAddress)) throw new Error(`runtime B did not activate ${remoteAddress}`);
    if ((await inboxSubscribers(b.runtimeId)) === 1) break;
    progress(`RUNTIME BUG: runtime B ${b.runtimeId} started without a subscriber on its inbox channel; restarting it`);
    await stopNodeB();
    nodeB = undefined;
    if (++lostInboxRestarts > 2) throw new Error('runtime B lost its inbox subscription three times in a row');
  }
  progress(`runtime B ${b.runtimeId} is ready with ${remoteAddress} active`);

  let waiter: ((message: string) => void) | undefined;
  pongSub.on('message', (_channel: string, message: string) => {
    const w = waiter;
    waiter = undefined;
    w?.(message);
  });
  await pongSub.subscribe(`${namespace}:bench:pong`);
  const pingChannel = `${namespace}:bench:ping`;
  const pubsubRoundTrip = (token: string) =>
    new Promise<void>((resolve, reject) => {
      waiter = (message) => (message === token ? resolve() : reject(new Error(`pub/sub echo out of order: ${message} != ${token}`)));
      redis.publish(pingChannel, token).then((receivers) => {
        if (receivers !== 1) reject(new Error(`pub/sub echo has ${receivers} subscribers`));
      }, reject);
    });
  const remote = a.ref(CachedCounter, remoteKey);
  const ping = () => redis.ping();
  const echo = (i: number) => pubsubRoundTrip(`m${i}`);
  const crossAsk = () => remote.ask('increment', { by: 1 });

  progress(`redis-rtt, pubsub-rtt, cross-node-ask: ${RTT.rounds} interleaved rounds of ${RTT.n / RTT.rounds} sequential calls each`);
  await measure(ping, RTT.warmup, 1, RTT.maxMs);
  await measure((i) => pubsubRoundTrip(`w${i}`), RTT.warmup, 1, RTT.maxMs);
  await measure(crossAsk, RTT.warmup, 1, RTT.maxMs);
  const rounds: Record<'ping' | 'echo' | 'cross', Run[]> = { ping: [], echo: [], cross: [] };
  const perRoundMs = RTT.maxMs / RTT.rounds;
  for (let r = 0; r < RTT.rounds; r++) {
    rounds.ping.push(await measure(ping, RTT.n / RTT.rounds, 1, perRoundMs));
    rounds.echo.push(await measure(echo, RTT.n / RTT.rounds, 1, perRoundMs));
    rounds.cross.push(await measure(crossAsk, RTT.n / RTT.rounds, 1, perRoundMs));
  }
  const redisRtt = report(summarize('redis-rtt', merge(rounds.ping), 1), { command: 'PING' });
  const pubsubRtt = report(summarize('pubsub-rtt', merge(rounds.echo), 1), { path: 'A PUBLISH -> B subscriber -> B PUBLISH -> A subscriber' });
  const crossNode = summarize('cross-node-ask', merge(rounds.cross), 1);
  const activeOnAAfter = a.activeAddresses().includes(remoteAddress);
  const activeOnBAfter = (await activeOnB()).includes(remoteAddress);
  const ratio = round3(crossNode.p50us / redisRtt.p50us);
  report(crossNode, {
    baseline: 'redis-rtt',
    p50RatioToBaseline: ratio,
    p50RatioToPubsubRtt: round3(crossNode.p50us / pubsubRtt.p50us),
    actorActiveOnA: activeOnAAfter,
    actorActiveOnB: activeOnBAfter,
    lostInboxRestarts,
    targetP50Ratio: TARGET_CROSS_RATIO,
    targetMet: ratio <= TARGET_CROSS_RATIO,
  });
  if (activeOnAAfter || !activeOnBAfter) throw new Error(`${remoteAddress} is not (only) on runtime B: the cross-node figures are not cross-node`);

  progress(`cross-node-ask-c64: up to ${CROSS_PAR.n} asks, ${CONCURRENCY} outstanding`);
  await measure(crossAsk, CROSS_PAR.warmup, CONCURRENCY, CROSS_PAR.maxMs);
  report(summarize('cross-node-ask-c64', await measure(crossAsk, CROSS_PAR.n, CONCURRENCY, CROSS_PAR.maxMs), CONCURRENCY), {
    actorActiveOnA: a.activeAddresses().includes(remoteAddress),
  });

  // Targets, then the table for humans.
  const targets = {
    scenario: 'targets',
    localAskOpsPerSec: { measured: localAsk.opsPerSec, target: `>= ${TARGET_LOCAL_OPS}`, met: localAsk.opsPerSec >= TARGET_LOCAL_OPS },
    crossNodeP50OverRedisP50: { measured: ratio, target: `<= ${TARGET_CROSS_RATIO}`, met: ratio <= TARGET_CROSS_RATIO },
    crossNodeActorActiveOnA: activeOnAAfter,
    lostInboxRestarts,
  };
  process.stdout.write(`${JSON.stringify(targets)}\n`);
  printTable(targets, { directCall, localAsk, redisRtt, pubsubRtt, crossNode });
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function printTable(
  targets: {
    localAskOpsPerSec: { measured: number; met: boolean };
    crossNodeP50OverRedisP50: { measured: number; met: boolean };
    crossNodeActorActiveOnA: boolean;
    lostInboxRestarts: number;
  },
  r: Record<'directCall' | 'localAsk' | 'redisRtt' | 'pubsubRtt' | 'crossNode', Result>,
): void {
  const header = ['scenario', 'n', 'conc', 'ops/s', 'p50 µs', 'p90 µs', 'p99 µs', 'max µs'];
  const rows = results.map((x) => [
    x.scenario,
    String(x.n),
    String(x.concurrency),
    x.opsPerSec.toLocaleString('en-US'),
    fmt(x.p50us),
    fmt(x.p90us),
    fmt(x.p99us),
    fmt(x.maxus),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [
    '',
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    '',
    `local-ask / direct-call throughput: ${round3(r.localAsk.opsPerSec / r.directCall.opsPerSec)}x`,
    `cross-node-ask p50 / redis-rtt p50: ${round3(r.crossNode.p50us / r.redisRtt.p50us)}x; / pubsub-rtt p50: ${round3(r.crossNode.p50us / r.pubsubRtt.p50us)}x`,
    `cross-node actor active on A after the run: ${targets.crossNodeActorActiveOnA} (must be false)`,
    `runtime B restarts because it came up without its inbox subscription: ${targets.lostInboxRestarts}`,
    `target local-ask >= ${TARGET_LOCAL_OPS.toLocaleString('en-US')}/s: ${targets.localAskOpsPerSec.met ? 'MET' : 'MISSED'} (${r.localAsk.opsPerSec.toLocaleString('en-US')}/s)`,
    `target cross-node p50 <= ${TARGET_CROSS_RATIO}x redis p50: ${targets.crossNodeP50OverRedisP50.met ? 'MET' : 'MISSED'} (${targets.crossNodeP50OverRedisP50.measured}x)`,
    '',
  ];
  process.stderr.write(out.join('\n'));
}

function fmt(us: number): string {
  return us >= 100 ? Math.round(us).toLocaleString('en-US') : us.toFixed(1);
}

await runBenchmark(main, cleanup, progress);
