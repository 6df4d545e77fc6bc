// Gateway benchmark (`npm run bench:gateway`; see BENCHMARKS.md, "Gateway"):
// memory per connected socket and server CPU per acked request, for Flock and
// two bare Socket.IO baselines, measured one after another in one run with the
// same client load.
//
//   ws-echo   baseline: new Server(httpServer) on node:http (default ws engine),
//             socket.on('echo', (p, ack) => ack({ ok: true, data: p }))
//   uws-echo  baseline: the same echo on io.attachApp(uWS.App())
//   flock     a real Flock node (server/main.ts), requests through the full
//             dispatcher as system:ping (Redis token buckets, schema, ack)
//
// Each server runs in its own process (with --expose-gc, plus
// bench/gateway/flock-probe.ts preloaded into the Flock node) and answers
// stats/GC requests over IPC. The load comes from LOADERS forked processes
// (bench/gateway/load.ts, socket.io-client over websocket only).
//
// Scenarios per server (after a warm-up of a few sockets and requests):
//   memory  GC'd RSS and heap before and after connecting SOCKETS sockets (in
//           steps, with a snapshot after each): bytes per socket
//   cpu     with those sockets connected, REQUESTS acked requests at RATE per second
//           offered (round robin, so RATE / SOCKETS per socket); server CPU
//           (user + system) per acked request, ack latency, errors; also the
//           server's background CPU with no socket connected, and Redis's CPU
//
// On the Flock node each socket sends its own X-Forwarded-For (TRUST_PROXY=true),
// so each socket is its own rate-limit subject, and the per-socket rate stays
// far below system:ping's 5 per second: no request is refused for rate.
//
// stdout: one JSON line per (server, scenario) and a final "targets" line.
// stderr: progress, the tables and the target verdicts.
// Backing services for the Flock node: MONGO_URL/REDIS_URL (and the rest of the
// environment) when MONGO_URL is set, otherwise resolved through the
// dev-services module like `npm test` does and stopped at the end.
// Exit code 0 unless something failed; missed targets are only reported.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { call, type Reply, type ServerStats } from './lib/ipc.ts';
import { intEnv, percentile, progress, round, runBenchmark, sleep } from './lib/run.ts';
import { benchServices, type BenchServices } from './lib/services.ts';
import { forEachLine, freePort } from './lib/nodes.ts';

// ---- parameters (every loop is bounded by a count and a time limit) ----

/**
 * Sockets held open per server (split evenly over the load processes). With
 * 2,000 the GC'd RSS delta (~20 MiB on ws-echo) was within a few MiB of the
 * process's own drift; 10,000 makes the per-socket figures repeat within ~5%.
 */
const SOCKETS = intEnv('BENCH_GATEWAY_SOCKETS', 10_000);
/**
 * Acked requests measured per server, and the offered rate (all load processes
 * together). 100,000 at 4,000/s lasts 25 s, one Socket.IO pingInterval, so every
 * server also answers exactly one heartbeat per socket during the measured run.
 * 4,000/s over 10,000 sockets is 0.4/s per socket, far below system:ping's limit.
 */
const REQUESTS = intEnv('BENCH_GATEWAY_REQUESTS', 100_000);
const RATE = intEnv('BENCH_GATEWAY_RATE', 4_000);
const LOADERS = 2;
/** Warm-up before the memory baseline: a few sockets and requests, then disconnected. */
const WARM_SOCKETS = 200;
const WARM_SOCKET_REQUESTS = 800;
/** Warm-up requests on the full set of sockets before the measured run. */
const WARM_REQUESTS = 4_000;
const SETTLE_MS = 2_000;
/** The memory scenario connects its sockets in steps, with a GC'd snapshot after each. */
const MEMORY_STEPS = 4;
const STEP_SETTLE_MS = 500;
/** Background CPU is measured with no socket connected, over this long. */
const IDLE_MS = 2_000;
const GC_ROUNDS = 4;
/**
 * Node flags of all three servers. --expose-gc lets the bench force GC. The
 * other three keep V8's heap reservation from resizing on its own timers, which
 * otherwise swamps a per-socket RSS delta: the new space (two semi-spaces) grows
 * to 2 x 16 MiB under allocation bursts such as a connect storm and shrinks
 * again when allocation slows, and the memory reducer uncommits pages about 8 s
 * after a major GC. Both happen at moments that differ per process, so GC'd RSS
 * snapshots moved by 20 to 30 MiB, as much as 2,000 sockets take (see BENCHMARKS.md).
 * Fixing the semi-space size at its default maximum is what a busy server runs
 * with anyway; the same flags apply to every server.
 */
const SERVER_NODE_FLAGS = (process.env.BENCH_GATEWAY_SERVER_FLAGS ?? '--expose-gc --no-memory-reducer --min-semi-space-size=16 --max-semi-space-size=16')
  .split(/\s+/)
  .filter(Boolean);
/** A run may take this much longer than REQUESTS / RATE before it is cut off. */
const RUN_SLACK_MS = 10_000;
/** Whole-run watchdog: past it the bench fails instead of hanging. */
const WATCHDOG_MS = 4 * 60_000;

// system:ping allows a burst of 20 and 5 per second per subject (channels/system.ts).
const PING_LIMIT_PER_SECOND = 5;
/** Warm-up sockets use addresses after the measured ones (see ipFor in load.ts). */
const WARM_SOCKET_BASE = 100_000;

const TARGET_FLOCK_MEMORY_RATIO = 0.75;
const EXPECTED_UWS_MEMORY_RATIO = 0.65;
const TARGET_FLOCK_CPU_RATIO = 2;

type ServerName = 'ws-echo' | 'uws-echo' | 'flock';
const SERVERS: { name: ServerName; event: string; what: string }[] = [
  { name: 'ws-echo', event: 'echo', what: 'baseline: Socket.IO on node:http, default ws engine, echo handler' },
  { name: 'uws-echo', event: 'echo', what: 'baseline: Socket.IO on uWS.App(), echo handler' },
  { name: 'flock', event: 'system:whoami', what: 'Flock node (server/main.ts), authenticated sockets, system:whoami through the dispatcher' },
];

// ---- setup ----

const here = path.dirname(fileURLToPath(import.meta.url));
const tsx = import.meta.resolve('tsx');
const runId = randomBytes(4).toString('hex');
/** Access-token key shared by the Flock node and the load generators (which sign one token per socket). */
const jwtSecret = randomBytes(48).toString('base64');
process.env.BENCH_JWT_SECRET = jwtSecret;
const dbName = `bench_gateway_${runId}`;

let backing: BenchServices | undefined;
let flockEnv: Record<string, string> = {};
let redisUrl = '';
let mongoUrl: string | undefined;
let flockStarted = false;
const children = new Set<ChildProcess>();
const loaders: ChildProcess[] = [];
/** Log message (with its error, timestamps removed) -> how often the Flock node logged it. */
const flockLogRepeats = new Map<string, number>();

const watchdog = setTimeout(() => {
  progress(`watchdog: the bench ran longer than ${WATCHDOG_MS / 1000} s; aborting`);
  for (const child of children) child.kill('SIGKILL');
  void (backing?.stop() ?? Promise.resolve()).finally(() => process.exit(2));
}, WATCHDOG_MS);
watchdog.unref();

function track(child: ChildProcess): Promise<void> {
  children.add(child);
  return new Promise((resolve) =>
    child.once('exit', () => {
      children.delete(child);
      resolve();
    }),
  );
}

/** Waits for a child's first { ready: true } IPC message. */
function ready(child: ChildProcess, exited: Promise<void>, what: string, timeoutMs: number): Promise<{ port?: number }> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { ready?: boolean; port?: number }) => {
      if (!m?.ready) return;
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    void exited.then(() => reject(new Error(`${what} exited (code ${child.exitCode}) before it was ready`)));
    setTimeout(() => reject(new Error(`${what} not ready within ${timeoutMs} ms`)), timeoutMs).unref();
  });
}

async function startLoaders(): Promise<void> {
  const entry = path.join(here, 'gateway', 'load.ts');
  await Promise.all(
    Array.from({ length: LOADERS }, async (_, i) => {
      const child = fork(entry, [], { execArgv: ['--import', tsx], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      const exited = track(child);
      loaders.push(child);
      await ready(child, exited, `load generator ${i}`, 30_000);
    }),
  );
}

interface RunningServer {
  name: ServerName;
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

async function startEchoServer(name: 'ws-echo' | 'uws-echo'): Promise<RunningServer> {
  const entry = path.join(here, 'gateway', 'echo-server.ts');
  const child = fork(entry, [name === 'ws-echo' ? 'ws' : 'uws'], {
    execArgv: [...SERVER_NODE_FLAGS, '--import', tsx],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const exited = track(child);
  const { port } = await ready(child, exited, name, 30_000);
  return { name, url: `http://127.0.0.1:${port}`, child, stop: () => stopChild(child, exited) };
}

/**
 * A real Flock node, started the way test/helpers/node-process.ts does it, plus
 * --expose-gc and the IPC probe preloaded. At LOG_LEVEL=warn it does not log
 * "listening", so it gets a free port and is ready once /healthz answers.
 */
async function startFlock(): Promise<RunningServer> {
  const port = await freePort();
  const main = fileURLToPath(new URL('../server/main.ts', import.meta.url));
  const probe = pathToFileURL(path.join(here, 'gateway', 'flock-probe.ts')).href;
  // Extra node flags for investigating, e.g. BENCH_GATEWAY_FLOCK_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
  const extra = process.env.BENCH_GATEWAY_FLOCK_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...extra, '--import', tsx, '--import', probe, main], {
    env: {
      ...process.env,
      ...flockEnv,
      PORT: String(port),
      HOST: '127.0.0.1',
      NODE_ID: `bench-gateway-${runId}`,
      LOG_LEVEL: 'warn',
      MONGO_DB: dbName,
      FLOCK_DATA_DIR: path.join(backing!.tmpDir, 'node'),
      // Each load-generator socket sends its own X-Forwarded-For, so each is its own rate-limit subject.
      TRUST_PROXY: 'true',
      // Per-IP limit across all events; with one address per socket, far above one socket's rate.
      RATE_LIMIT_IP_PER_SECOND: '1000',
      // The load generators sign each socket's access token with this key.
      JWT_SECRET: jwtSecret,
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  flockStarted = true;
  const exited = track(child);
  // Its output (JSON logs at warn and above) goes to stderr so stdout stays
  // clean JSON lines; a log message that repeats is shown once and counted.
  forEachLine(child, (line, entry) => {
    const key = entry && `${String(entry.msg)}|${(JSON.stringify(entry.err) ?? 'undefined').replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>')}`;
    const seen = key === undefined ? 0 : (flockLogRepeats.get(key) ?? 0);
    if (key !== undefined) flockLogRepeats.set(key, seen + 1);
    if (seen === 0) process.stderr.write(`[flock] ${line}\n`);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  let gone = false;
  void exited.then(() => (gone = true));
  for (;;) {
    if (gone) throw new Error(`the Flock node exited (code ${child.exitCode}) before it was ready`);
    if (Date.now() > deadline) throw new Error('the Flock node did not answer /healthz within 90 s');
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await sleep(200);
  }
  const stop = async () => {
    await stopChild(child, exited);
    for (const [key, n] of flockLogRepeats) if (n > 1) progress(`the Flock node logged "${key.split('|')[0]}" ${n} times in all`);
  };
  return { name: 'flock', url, child, stop };
}

// ---- measurement ----

const gcStats = (server: RunningServer) => call<Reply & ServerStats>(server.child, { op: 'gc', rounds: GC_ROUNDS }, 30_000);
const stats = (server: RunningServer) => call<Reply & ServerStats>(server.child, { op: 'stats' }, 10_000);
const cpuUs = (s: ServerStats) => s.cpuUser + s.cpuSystem;

/** Splits `total` over the loaders: [from, count] per loader. */
function split(total: number, base = 0): [number, number][] {
  return loaders.map((_, i) => {
    const from = Math.floor((total * i) / loaders.length);
    const to = Math.floor((total * (i + 1)) / loaders.length);
    return [base + from, to - from];
  });
}

interface ConnectReply extends Reply {
  connected: number;
  failed: number;
  firstError?: string;
  ms: number;
}

async function connectAll(server: RunningServer, total: number, base = 0): Promise<{ connected: number; failed: number; firstError?: string; ms: number }> {
  const started = performance.now();
  const replies = await Promise.all(
    split(total, base).map(([from, count], i) => call<ConnectReply>(loaders[i]!, { op: 'connect', url: server.url, from, count }, 120_000)),
  );
  const connected = replies.reduce((sum, r) => sum + r.connected, 0);
  const failed = replies.reduce((sum, r) => sum + r.failed, 0);
  const firstError = replies.find((r) => r.firstError)?.firstError;
  return { connected, failed, ...(firstError && { firstError }), ms: Math.round(performance.now() - started) };
}

const disconnectAll = () => Promise.all(loaders.map((l) => call(l, { op: 'disconnect' }, 30_000)));

interface RunReply extends Reply {
  sent: number;
  ok: number;
  errors: Record<string, number>;
  samplesUs: number[];
  elapsedMs: number;
  clientCpuUs: number;
  disconnected: number;
}

async function runLoad(event: string, count: number, rate: number) {
  const maxMs = (count / rate) * 1000 + RUN_SLACK_MS;
  const replies = await Promise.all(
    split(count).map(([, n], i) => call<RunReply>(loaders[i]!, { op: 'run', event, count: n, ratePerSec: (rate * n) / count, maxMs }, maxMs + 30_000)),
  );
  const errors: Record<string, number> = {};
  for (const r of replies) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
  return {
    sent: replies.reduce((s, r) => s + r.sent, 0),
    ok: replies.reduce((s, r) => s + r.ok, 0),
    errors,
    samplesUs: replies.flatMap((r) => r.samplesUs).sort((x, y) => x - y),
    elapsedMs: Math.max(...replies.map((r) => r.elapsedMs)),
    clientCpuUs: replies.reduce((s, r) => s + r.clientCpuUs, 0),
    disconnected: replies.reduce((s, r) => s + r.disconnected, 0),
  };
}

/** Redis server CPU (user + system) in microseconds, from INFO cpu. */
async function redisCpuUs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return Math.round((field('used_cpu_user') + field('used_cpu_sys')) * 1e6);
}

interface MemoryResult {
  server: ServerName;
  scenario: 'memory';
  sockets: number;
  connected: number;
  failed: number;
  connectMs: number;
  rssBefore: number;
  rssAfter: number;
  heapBefore: number;
  heapAfter: number;
  rssPerSocket: number;
  heapPerSocket: number;
  externalPerSocket: number;
  nonHeapPerSocket: number;
  rssRatioToWsEcho: number;
  heapRatioToWsEcho: number;
  [extra: string]: unknown;
}

interface CpuResult {
  server: ServerName;
  scenario: 'cpu';
  event: string;
  sockets: number;
  requests: number;
  sent: number;
  ok: number;
  errors: Record<string, number>;
  offeredPerSec: number;
  perSocketPerSec: number;
  achievedPerSec: number;
  seconds: number;
  serverCpuUs: number;
  cpuUsPerRequest: number;
  cpuRatioToWsEcho: number;
  serverCpuShare: number;
  backgroundCpuUsPerSec: number;
  cpuUsPerRequestNetOfBackground: number;
  redisCpuUsPerRequest: number;
  clientCpuUsPerRequest: number;
  p50us: number;
  p99us: number;
  maxus: number;
  [extra: string]: unknown;
}

const memoryResults = new Map<ServerName, MemoryResult>();
const cpuResults = new Map<ServerName, CpuResult>();

function emit(result: object): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function measureServer(server: RunningServer, event: string, redis: Redis): Promise<void> {
  // Warm-up: the code paths for connecting and requests are compiled and the
  // heap has grown once before the baseline snapshot.
  progress(`${server.name}: warm-up (${WARM_SOCKETS} sockets, ${WARM_SOCKET_REQUESTS} requests)`);
  const warm = await connectAll(server, WARM_SOCKETS, WARM_SOCKET_BASE);
  if (warm.connected !== WARM_SOCKETS) throw new Error(`${server.name}: ${warm.failed} warm-up sockets failed to connect: ${warm.firstError}`);
  await runLoad(event, WARM_SOCKET_REQUESTS, WARM_SOCKETS * 2);
  await disconnectAll();
  await sleep(1_000);

  // Background CPU with no socket connected: timers, leases, pollers.
  const idle0 = await stats(server);
  await sleep(IDLE_MS);
  const idle1 = await stats(server);
  const backgroundCpuUsPerSec = ((cpuUs(idle1) - cpuUs(idle0)) / IDLE_MS) * 1000;

  // memory
  const before = await gcStats(server);
  progress(`${server.name}: memory: connecting ${SOCKETS} sockets`);
  const snapshot = (sockets: number, s: ServerStats) => ({ sockets, rss: s.rss, rssAnon: s.rssAnon, heapUsed: s.heapUsed, heapTotal: s.heapTotal });
  const steps = [snapshot(0, before)];
  const conn = { connected: 0, failed: 0, ms: 0, firstError: undefined as string | undefined };
  let after = before;
  for (let k = 0; k < MEMORY_STEPS; k++) {
    const from = Math.floor((SOCKETS * k) / MEMORY_STEPS);
    const to = Math.floor((SOCKETS * (k + 1)) / MEMORY_STEPS);
    const step = await connectAll(server, to - from, from);
    conn.connected += step.connected;
    conn.failed += step.failed;
    conn.ms += step.ms;
    conn.firstError ??= step.firstError;
    await sleep(k === MEMORY_STEPS - 1 ? SETTLE_MS : STEP_SETTLE_MS);
    after = await gcStats(server);
    steps.push(snapshot(conn.connected, after));
  }
  if (conn.connected !== SOCKETS) throw new Error(`${server.name}: ${conn.failed} of ${SOCKETS} sockets failed to connect: ${conn.firstError}`);
  const ws = memoryResults.get('ws-echo');
  const rssPerSocket = (after.rss - before.rss) / SOCKETS;
  const heapPerSocket = (after.heapUsed - before.heapUsed) / SOCKETS;
  const memory: MemoryResult = {
    server: server.name,
    scenario: 'memory',
    sockets: SOCKETS,
    connected: conn.connected,
    failed: conn.failed,
    connectMs: conn.ms,
    rssBefore: before.rss,
    rssAfter: after.rss,
    heapBefore: before.heapUsed,
    heapAfter: after.heapUsed,
    rssPerSocket: Math.round(rssPerSocket),
    heapPerSocket: Math.round(heapPerSocket),
    externalPerSocket: Math.round((after.external - before.external) / SOCKETS),
    nonHeapPerSocket: Math.round(rssPerSocket - heapPerSocket),
    rssRatioToWsEcho: ws ? round(rssPerSocket / ws.rssPerSocket, 3) : 1,
    heapRatioToWsEcho: ws ? round(heapPerSocket / ws.heapPerSocket, 3) : 1,
    steps,
    serverFlags: SERVER_NODE_FLAGS,
  };
  const uws = memoryResults.get('uws-echo');
  if (server.name === 'flock' && ws && uws) {
    // Flock's RSS can grow by less than its heap plus uWS's native per-socket
    // memory when those allocations land in free memory the larger process
    // already holds. This bound charges Flock at least uws-echo's non-heap bytes.
    const conservative = heapPerSocket + Math.max(memory.nonHeapPerSocket, uws.nonHeapPerSocket);
    Object.assign(memory, {
      conservativeRssPerSocket: Math.round(conservative),
      conservativeRssRatioToWsEcho: round(conservative / ws.rssPerSocket, 3),
    });
  }
  if (server.name === 'flock')
    Object.assign(memory, { targetRssRatio: TARGET_FLOCK_MEMORY_RATIO, targetMet: memory.rssRatioToWsEcho <= TARGET_FLOCK_MEMORY_RATIO });
  if (server.name === 'uws-echo') Object.assign(memory, { expectedRssRatio: EXPECTED_UWS_MEMORY_RATIO });
  memoryResults.set(server.name, memory);
  emit(memory);

  // cpu: a warm-up, then the measured run.
  progress(`${server.name}: cpu: ${WARM_REQUESTS} warm-up + ${REQUESTS} measured ${event} requests at ${RATE}/s over ${SOCKETS} sockets`);
  await runLoad(event, WARM_REQUESTS, RATE);
  const s0 = await stats(server);
  const r0 = await redisCpuUs(redis);
  const run = await runLoad(event, REQUESTS, RATE);
  const s1 = await stats(server);
  const r1 = await redisCpuUs(redis);
  const serverCpu = cpuUs(s1) - cpuUs(s0);
  const acked = run.samplesUs.length;
  const cpuPerRequest = serverCpu / Math.max(1, acked);
  const netOfBackground = (serverCpu - (backgroundCpuUsPerSec * run.elapsedMs) / 1000) / Math.max(1, acked);
  const wsCpu = cpuResults.get('ws-echo');
  const cpu: CpuResult = {
    server: server.name,
    scenario: 'cpu',
    event,
    sockets: SOCKETS,
    requests: REQUESTS,
    sent: run.sent,
    ok: run.ok,
    errors: run.errors,
    offeredPerSec: RATE,
    perSocketPerSec: round(RATE / SOCKETS, 2),
    achievedPerSec: Math.round(acked / (run.elapsedMs / 1000)),
    seconds: round(run.elapsedMs / 1000, 2),
    serverCpuUs: serverCpu,
    cpuUsPerRequest: round(cpuPerRequest, 1),
    cpuRatioToWsEcho: wsCpu ? round(cpuPerRequest / wsCpu.cpuUsPerRequest, 3) : 1,
    serverCpuShare: round(serverCpu / 1000 / run.elapsedMs, 3),
    backgroundCpuUsPerSec: Math.round(backgroundCpuUsPerSec),
    cpuUsPerRequestNetOfBackground: round(netOfBackground, 1),
    redisCpuUsPerRequest: round((r1 - r0) / Math.max(1, acked), 1),
    clientCpuUsPerRequest: round(run.clientCpuUs / Math.max(1, acked), 1),
    p50us: Math.round(percentile(run.samplesUs, 0.5)),
    p99us: Math.round(percentile(run.samplesUs, 0.99)),
    maxus: Math.round(run.samplesUs.at(-1) ?? Number.NaN),
    socketsDisconnectedDuringRun: run.disconnected,
  };
  if (server.name === 'flock') Object.assign(cpu, { targetCpuRatio: TARGET_FLOCK_CPU_RATIO, targetMet: cpu.cpuRatioToWsEcho <= TARGET_FLOCK_CPU_RATIO });
  cpuResults.set(server.name, cpu);
  emit(cpu);

  await disconnectAll();
}

// ---- output ----

function fmtBytes(n: number): string {
  return `${(n / 1024).toFixed(1)} KiB`;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

function printTables(targets: {
  memory: { measured: number; met: boolean };
  conservativeMemory: { measured: number; met: boolean };
  cpu: { measured: number; met: boolean };
  uwsMemory: number;
}): void {
  const mem = SERVERS.map((s) => memoryResults.get(s.name)).filter((m): m is MemoryResult => m !== undefined);
  const cpu = SERVERS.map((s) => cpuResults.get(s.name)).filter((c): c is CpuResult => c !== undefined);
  const errorsOf = (c: CpuResult) => Object.values(c.errors).reduce((s, n) => s + n, 0);
  const out = [
    '',
    `memory: ${SOCKETS.toLocaleString('en-US')} connected sockets, after GC (server flags: ${SERVER_NODE_FLAGS.join(' ')})`,
    ...table(
      ['server', 'rss before', 'rss after', 'rss/socket', 'heap/socket', 'non-heap/socket', 'rss ratio', 'heap ratio'],
      mem.map((m) => [
        m.server,
        `${(m.rssBefore / 2 ** 20).toFixed(1)} MiB`,
        `${(m.rssAfter / 2 ** 20).toFixed(1)} MiB`,
        fmtBytes(m.rssPerSocket),
        fmtBytes(m.heapPerSocket),
        fmtBytes(m.nonHeapPerSocket),
        `${m.rssRatioToWsEcho.toFixed(2)}x`,
        `${m.heapRatioToWsEcho.toFixed(2)}x`,
      ]),
    ),
    '',
    `cpu: ${REQUESTS.toLocaleString('en-US')} acked requests offered at ${RATE.toLocaleString('en-US')}/s over ${SOCKETS.toLocaleString('en-US')} sockets (${round(RATE / SOCKETS, 2)}/s per socket); bg = background CPU with no socket connected`,
    ...table(
      ['server', 'acked', 'errors', 'req/s', 'cpu µs/req', 'ratio', 'bg µs/s', 'net µs/req', 'redis µs/req', 'p50 µs', 'p99 µs', 'max µs'],
      cpu.map((c) => [
        c.server,
        c.ok.toLocaleString('en-US'),
        String(errorsOf(c)),
        c.achievedPerSec.toLocaleString('en-US'),
        c.cpuUsPerRequest.toFixed(1),
        `${c.cpuRatioToWsEcho.toFixed(2)}x`,
        c.backgroundCpuUsPerSec.toLocaleString('en-US'),
        c.cpuUsPerRequestNetOfBackground.toFixed(1),
        c.redisCpuUsPerRequest.toFixed(1),
        c.p50us.toLocaleString('en-US'),
        c.p99us.toLocaleString('en-US'),
        c.maxus.toLocaleString('en-US'),
      ]),
    ),
    '',
    `uws-echo memory per socket: ${targets.uwsMemory}x ws-echo (expected about ${EXPECTED_UWS_MEMORY_RATIO}x)`,
    `target flock memory per socket <= ${TARGET_FLOCK_MEMORY_RATIO}x ws-echo: ${targets.memory.met ? 'MET' : 'MISSED'} (${targets.memory.measured}x; ` +
      `charging uws-echo's non-heap bytes per socket: ${targets.conservativeMemory.met ? 'met' : 'missed'}, ${targets.conservativeMemory.measured}x)`,
    `target flock CPU per acked request <= ${TARGET_FLOCK_CPU_RATIO}x ws-echo: ${targets.cpu.met ? 'MET' : 'MISSED'} (${targets.cpu.measured}x)`,
    '',
  ];
  process.stderr.write(out.join('\n'));
}

// ---- run ----

async function main(): Promise<void> {
  if (RATE / SOCKETS >= PING_LIMIT_PER_SECOND) {
    throw new Error(`${RATE}/s over ${SOCKETS} sockets is ${RATE / SOCKETS}/s per socket, at or above system:ping's ${PING_LIMIT_PER_SECOND}/s per subject`);
  }
  backing = await benchServices('gateway', progress);
  ({ env: flockEnv, redisUrl, mongoUrl } = backing);
  const redis = new Redis(redisUrl, { connectionName: 'bench-gateway', maxRetriesPerRequest: 1 });
  try {
    await startLoaders();
    progress(`${LOADERS} load generators ready; run ${runId}`);
    for (const { name, event, what } of SERVERS) {
      const started = performance.now();
      progress(`${name}: starting (${what})`);
      const server = name === 'flock' ? await startFlock() : await startEchoServer(name);
      try {
        progress(`${name}: listening at ${server.url} after ${Math.round(performance.now() - started)} ms`);
        await measureServer(server, event, redis);
      } finally {
        await server.stop();
      }
    }
  } finally {
    redis.disconnect();
  }
  const flockMem = memoryResults.get('flock')!;
  const flockCpu = cpuResults.get('flock')!;
  const targets = {
    scenario: 'targets',
    flockMemoryPerSocketOverWsEcho: {
      measured: flockMem.rssRatioToWsEcho,
      target: `<= ${TARGET_FLOCK_MEMORY_RATIO}`,
      met: flockMem.rssRatioToWsEcho <= TARGET_FLOCK_MEMORY_RATIO,
    },
    flockCpuPerRequestOverWsEcho: {
      measured: flockCpu.cpuRatioToWsEcho,
      target: `<= ${TARGET_FLOCK_CPU_RATIO}`,
      met: flockCpu.cpuRatioToWsEcho <= TARGET_FLOCK_CPU_RATIO,
    },
    flockConservativeMemoryPerSocketOverWsEcho: {
      measured: flockMem.conservativeRssRatioToWsEcho as number,
      target: `<= ${TARGET_FLOCK_MEMORY_RATIO}`,
      met: (flockMem.conservativeRssRatioToWsEcho as number) <= TARGET_FLOCK_MEMORY_RATIO,
    },
    uwsEchoMemoryPerSocketOverWsEcho: { measured: memoryResults.get('uws-echo')!.rssRatioToWsEcho, expected: EXPECTED_UWS_MEMORY_RATIO },
    flockRequestErrors: Object.values(flockCpu.errors).reduce((s, n) => s + n, 0),
  };
  emit(targets);
  printTables({
    memory: targets.flockMemoryPerSocketOverWsEcho,
    conservativeMemory: targets.flockConservativeMemoryPerSocketOverWsEcho,
    cpu: targets.flockCpuPerRequestOverWsEcho,
    uwsMemory: targets.uwsEchoMemoryPerSocketOverWsEcho.measured,
  });
}

async function cleanup(): Promise<void> {
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
  for (const child of children) child.kill('SIGKILL');
  if (flockStarted && mongoUrl) {
    const client = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 5_000 });
    try {
      await client.db(dbName).dropDatabase();
    } catch (err) {
      progress(`dropping ${dbName} failed: ${String(err)}`);
    } finally {
      await client.close().catch(() => {});
    }
  }
  await backing?.stop();
}

await runBenchmark(main, cleanup, progress);
