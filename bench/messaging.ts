// Messaging benchmark (`npm run bench:messaging`; see BENCHMARKS.md,
// "Messaging"): 1:1 conversations (issue 7) through two real Flock nodes,
// persistence included, side by side with its ceiling, a plain Socket.IO relay
// that only forwards (bench/lib/bare-socketio-server.ts: two processes on
// uWebSockets.js joined by the same Redis adapter Flock uses).
//
// CONVERSATIONS conversations of two users each, one member on each node (or
// relay process), so every message crosses between processes. Both members
// send. USERS = 2 x CONVERSATIONS users sign up over the typed client, each on
// its own socket with its own X-Forwarded-For (TRUST_PROXY=true); one of each
// pair opens the conversation (conversations:openDirect), on alternate nodes,
// so half the ConversationActors live on each node (an actor is activated
// where it is first asked) and half of all sends reach their actor on the
// other node. The same users hold a second socket on the relay, in their
// conversation's room.
//
//   paced      PACED_MESSAGES messages offered at a fixed PACED_RATE per second
//              in all (open loop, the senders in turn): latency when the system
//              keeps up
//   saturated  CONCURRENCY messages outstanding (closed loop: the next one
//              once the last is acked and delivered), the conversations and
//              their members in turn, for SATURATED_MS (at most SATURATED_MAX
//              messages): the most messages per second, and the latency at
//              that load
//
// Flock: conversations:send {conversationId, clientMessageId, text}, acked
// once the message is stored (and delivered: the actor runtime runs a turn's
// afterCommit effects before it replies); both members get it as a
// stream:event of type conversations:message. Relay: send {to: conversation
// room, payload}; both members get it as `message`. Each side of a scenario
// gets a warm-up first (at least one message per conversation, for at least
// 2 s). Latency runs from the send to the first arrival at the other member's
// socket (delivery) and to the sender's ack (ack), on the bench's clock.
// Flock's per-user send limit stays in force: the bench keeps a lower bound of
// every sender's bucket (bench/lib/budget.ts), reserves the paced run's
// messages before it starts and sends the others only when the bound shows a
// token, so a REQUEST_RATE_LIMITED ack is a finding.
//
// Reported per run: messages sent, acked, delivered, lost and duplicated,
// delivered messages per second, delivery and ack latency (p50/p90/p99/max),
// errors by code, CPU per delivered message (the two server processes, the
// embedded FerretDB, Redis, the bench) and, for Flock, its MongoDB commands per
// message by shape (bench/lib/db-probe.ts). Checked over the whole run:
// each acked message reached its recipient and its sender's own socket exactly
// once; Flock's seqs arrived at every member as 1, 2, 3, ... matching the acks,
// each personal-stream event chained to the one before (prev), and MongoDB
// holds one message per acked send; the relay kept each sender's order.
//
// stdout: one JSON line per (scenario, system) and a final "checks" line.
// stderr: progress, the nodes' warnings, the tables.
// Backing services: MONGO_URL/REDIS_URL (and the rest of the environment) when
// MONGO_URL is set, otherwise resolved through the dev-services module like
// `npm test` does and stopped at the end. The run has its own database and
// Redis namespace (REDIS_KEY_PREFIX), both removed at the end.
// Exit code 0 unless something failed; errors in measured runs are reported.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { z } from 'zod';
import { conversationsChannel } from '../channels/conversations.ts';
import { FlockClient, FlockRequestError } from '../client/flock-client.ts';
import { MESSAGE_COLLECTION } from '../models/message.ts';
import { RelayClient, startRelay, type RelayServer } from './messaging/relay.ts';
import { Tracker, type Planned, type RunStats } from './messaging/tracker.ts';
import { emit, intEnv, percentile, pool, progress, round, runBenchmark, sleep } from './lib/run.ts';
import { benchServices, removeRun, type BenchServices } from './lib/services.ts';
import { RateBudget } from './lib/budget.ts';
import { dbPerOp, mergeStats, type DbPerOp, type DbStats } from './lib/db-commands.ts';
import { childPid, processCpuMs, startNode, type FlockNode } from './lib/nodes.ts';

// ---- parameters (every loop is bounded by a count and a time limit) ----

/** 1:1 conversations; twice as many users, the two members of each on different nodes. */
const CONVERSATIONS = intEnv('BENCH_MESSAGING_CONVERSATIONS', 50);
/**
 * paced: messages offered per second, all senders together, and how many. On
 * the 2-core machine with the embedded FerretDB, Flock delivers 14 to 38
 * messages per second at most (see BENCHMARKS.md), so at 10/s it keeps up:
 * the latency of a system without a queue.
 */
const PACED_RATE = intEnv('BENCH_MESSAGING_RATE', 10);
const PACED_MESSAGES = intEnv('BENCH_MESSAGING_PACED_MESSAGES', 150);
/**
 * saturated: messages outstanding at once, for how long, and at most how many
 * messages. 16 keep the database busy all the time while each send stays well
 * inside the nodes' 5 s ask timeout (ACTOR_ASK_TIMEOUT_MS): with one
 * outstanding per sender, 100 at once, most sends timed out in the queue. The
 * run is bounded by time because the two systems are 40 to 170 times apart: a
 * count that keeps Flock busy for 10 s kept the relay for 60 ms. Also the
 * concurrency of the warm-ups.
 */
const CONCURRENCY = intEnv('BENCH_MESSAGING_CONCURRENCY', 16);
const SATURATED_MS = intEnv('BENCH_MESSAGING_SATURATED_MS', 10_000);
const SATURATED_MAX_MESSAGES = intEnv('BENCH_MESSAGING_SATURATED_MAX', 60_000);
/** Bytes of message text. */
const TEXT_BYTES = 100;
const SIGNUP_CONCURRENCY = 16;
const OPEN_CONCURRENCY = 8;
/** Warm-up before each run: at least one message per conversation and this long, at most this many. */
const WARM_MS = 2_000;
const WARM_MAX_MESSAGES = 10_000;
/** A run stops sending after this long. */
const RUN_MAX_MS = 60_000;
/** After its last ack, a run waits this long at most for the copies still on their way. */
const SETTLE_MAX_MS = 10_000;
const SETTLE_POLL_MS = 20;
/** A run may wait this long (unmeasured) for its senders' buckets to refill. */
const MAX_REFILL_WAIT_MS = 20_000;
const ACK_TIMEOUT_MS = 30_000;
/** Per-IP limit of the nodes; every bench socket has its own address. */
const IP_LIMIT_PER_SECOND = 1_000;
/** Background CPU is measured over this long, with every socket connected and nothing sent. */
const IDLE_MS = 5_000;
/** MongoDB command shapes shown per run (costliest first). */
const DB_SHAPES_SHOWN = 8;
/** Whole-run watchdog: past it the bench fails instead of hanging. */
const WATCHDOG_MS = 5 * 60_000;

const SEND = 'conversations:send';
/** The per-user send limit the nodes enforce, straight from the channel definition. */
const SEND_LIMIT = conversationsChannel.events.send.rateLimit;
const USERS = 2 * CONVERSATIONS;

// ---- setup ----

const runId = randomBytes(4).toString('hex');
const dbName = `bench_messaging_${runId}`;
/** The run's Redis namespace: the nodes' keys and channels (REDIS_KEY_PREFIX) and the relays' adapter channels. */
const keyPrefix = `bench-messaging-${runId}`;

let backing: BenchServices | undefined;
let mongoUrl: string | undefined;
let redis: Redis | undefined;
let dbPid: number | undefined;
const nodes: FlockNode[] = [];
const relays: RelayServer[] = [];
const flockClients: FlockClient[] = [];
const relayClients: RelayClient[] = [];
const budget = new RateBudget({ [SEND]: SEND_LIMIT });

const watchdog = setTimeout(() => {
  progress(`watchdog: the bench ran longer than ${WATCHDOG_MS / 1000} s; aborting`);
  void cleanup().finally(() => process.exit(2));
}, WATCHDOG_MS);
watchdog.unref();

async function startServers(env: Record<string, string>, redisUrl: string): Promise<void> {
  const jwtSecret = randomBytes(48).toString('base64');
  const started = performance.now();
  const starting = await Promise.allSettled([
    ...[0, 1].map((i) =>
      startNode({
        name: `bench-messaging-${runId}-${i}`,
        env: {
          ...env,
          MONGO_DB: dbName,
          REDIS_KEY_PREFIX: keyPrefix,
          TRUST_PROXY: 'true',
          RATE_LIMIT_IP_PER_SECOND: String(IP_LIMIT_PER_SECOND),
          // One cluster: both nodes sign and accept the same tokens.
          JWT_SECRET: jwtSecret,
          // For investigating, e.g. BENCH_MESSAGING_NODE_OPTIONS=--import=/tmp/profiler.mjs
          // (NODE_OPTIONS refuses --cpu-prof; a preload can drive node:inspector's Profiler).
          ...(process.env.BENCH_MESSAGING_NODE_OPTIONS && { NODE_OPTIONS: process.env.BENCH_MESSAGING_NODE_OPTIONS }),
        },
        dataDir: path.join(backing!.tmpDir, `node${i}`),
        log: (line) => process.stderr.write(`${line}\n`),
      }).then((n) => void nodes.push(n)),
    ),
    ...[0, 1].map((i) => startRelay(`relay-${i}`, redisUrl, `${keyPrefix}:relay`).then((r) => void relays.push(r))),
  ]);
  const failed = starting.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  // Node i and relay i hold the same users: sorted by name, since they start in any order.
  nodes.sort((a, b) => a.name.localeCompare(b.name));
  relays.sort((a, b) => a.name.localeCompare(b.name));
  progress(`2 Flock nodes and 2 relays ready after ${Math.round(performance.now() - started)} ms`);
}

// ---- users ----

interface BenchUser {
  flock: FlockClient;
  relay: RelayClient;
  userId: string;
}

/** Each client claims its own address in 198.18.0.0/15 (reserved for benchmarks, RFC 2544); the run picks the range. */
const ipBase = Math.floor(Math.random() * (1 << 16));
const ipFor = (i: number) => {
  const n = (ipBase + i) % (1 << 17);
  return `198.${18 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}`;
};

/** User u: on node (and relay) u mod 2, in conversation u div 2. */
async function signUp(u: number): Promise<BenchUser> {
  const flock = new FlockClient(nodes[u % 2]!.url, {
    timeoutMs: ACK_TIMEOUT_MS,
    socket: { extraHeaders: { 'x-forwarded-for': ipFor(u) }, reconnection: false },
  });
  flockClients.push(flock);
  await flock.connected();
  const username = `mb${runId}_${u}`;
  const res = await flock.request('auth:register', { username, email: `${username}@bench.test`, password: 'correct horse 42', displayName: `bench ${u}` });
  const relay = new RelayClient(relays[u % 2]!.url, ACK_TIMEOUT_MS);
  relayClients.push(relay);
  await relay.connected();
  return { flock, relay, userId: res.userId };
}

// ---- the two systems ----

type SystemName = 'relay' | 'flock';

interface System {
  name: SystemName;
  tracker: Tracker;
  /** Sends one message and resolves on its ack, with the seq the ack gave (Flock). */
  send(p: Planned): Promise<number | undefined>;
  /** The two server processes. */
  pids(): number[];
  /** MongoDB commands the servers sent since the last reset (Flock only). */
  dbStats?(reset: boolean): Promise<DbStats>;
}

/** What the bench reads of a conversations:message stream event. */
const messageEvent = z.object({
  conversationId: z.string(),
  message: z.object({ seq: z.number().int(), clientMessageId: z.string().nullable() }),
});

/** Copies of stream events whose prev was not the event before at that socket. */
let streamGaps = 0;

function flockSystem(users: BenchUser[], conversationIds: string[]): System {
  const tracker = new Tracker();
  users.forEach((user, u) => {
    let lastId: string | undefined;
    user.flock.on('stream:event', (event) => {
      if (lastId !== undefined && event.prev !== lastId) streamGaps++;
      lastId = event.id;
      if (event.type !== 'conversations:message') return;
      const data = messageEvent.safeParse(event.data);
      if (!data.success || data.data.message.clientMessageId === null) tracker.checks.unknown++;
      else tracker.delivered(u, data.data.message.clientMessageId, data.data.message.seq);
    });
  });
  return {
    name: 'flock',
    tracker,
    async send(p) {
      const res = await users[p.sender]!.flock.request(SEND, { conversationId: conversationIds[p.conversation]!, clientMessageId: p.id, text: p.text });
      if (res.duplicate) throw new Error('check: a new message was acked as a duplicate');
      return res.message.seq;
    },
    pids: () => nodes.map((n) => n.pid),
    dbStats: async (reset) => mergeStats(await Promise.all(nodes.map((n) => n.dbStats(reset)))),
  };
}

function relaySystem(users: BenchUser[]): System {
  const tracker = new Tracker();
  users.forEach((user, u) =>
    user.relay.onMessage((payload) => {
      const id = typeof payload === 'object' && payload !== null && 'clientMessageId' in payload ? payload.clientMessageId : undefined;
      if (typeof id === 'string') tracker.delivered(u, id, null);
      else tracker.checks.unknown++;
    }),
  );
  return {
    name: 'relay',
    tracker,
    async send(p) {
      const conversationId = relayRoom(p.conversation);
      await users[p.sender]!.relay.send(conversationId, { conversationId, clientMessageId: p.id, text: p.text });
      return undefined;
    },
    pids: () => relays.map((r) => r.pid),
  };
}

const relayRoom = (conversation: number) => `conversation:${conversation}`;

// ---- load ----

function errorCode(err: unknown): string {
  if (err instanceof FlockRequestError) return err.code;
  if (err instanceof Error && /timed out/i.test(err.message)) return 'ACK_TIMEOUT';
  if (err instanceof Error && err.message.startsWith('check:')) return 'CHECK_FAILED';
  return 'ERROR';
}

/** The first error of each run, by `${system}|${run}`. */
const firstErrors = new Map<string, string>();

async function sendOne(system: System, p: Planned): Promise<void> {
  system.tracker.sending(p);
  try {
    system.tracker.acked(p.id, await system.send(p));
  } catch (err) {
    const code = errorCode(err);
    system.tracker.failed(p.id, code);
    const key = `${system.name}|${p.run}`;
    if (!firstErrors.has(key)) firstErrors.set(key, `${code}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Open loop: message k leaves at start + k / rate, whatever became of the ones before. */
async function paced(system: System, plan: Planned[], ratePerSec: number): Promise<void> {
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let k = 0; k < plan.length; k++) {
    const wait = started + (k * 1000) / ratePerSec - performance.now();
    if (wait > 0) await sleep(wait);
    if (performance.now() - started > RUN_MAX_MS) break;
    inFlight.push(sendOne(system, plan[k]!));
  }
  await Promise.all(inFlight);
}

interface LoopBounds {
  /** Keep sending until at least this many were sent and minMs passed... */
  min: number;
  minMs: number;
  /** ...but never more than this many, nor past maxMs. */
  max: number;
  maxMs: number;
}

/**
 * Closed loop: CONCURRENCY workers, each sending the next message once its
 * last one is acked and has reached its recipient (or failed), within
 * `bounds`. Waiting for the arrival too keeps a system that acks before it
 * delivers (the relay) from piling up a queue of deliveries. Message k is
 * conversation k mod CONVERSATIONS's, from its two members in turn. Flock's
 * wait for their sender's token (bench/lib/budget.ts): at the rates Flock
 * reaches, never.
 */
async function closedLoop(system: System, run: string, bounds: LoopBounds): Promise<void> {
  const started = performance.now();
  let k = 0;
  const more = () => {
    const elapsed = performance.now() - started;
    return k < bounds.max && elapsed < bounds.maxMs && (k < bounds.min || elapsed < bounds.minMs);
  };
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (more()) {
        const p = planned(run, 2 * (k % CONVERSATIONS) + (Math.floor(k / CONVERSATIONS) % 2));
        k++;
        if (system.name === 'flock') await budget.spend(String(p.sender), SEND, () => sendOne(system, p), MAX_REFILL_WAIT_MS);
        else await sendOne(system, p);
        await system.tracker.arrival(p.id, SETTLE_MAX_MS);
      }
    }),
  );
}

/** Waits until every acked message of `run` has reached both members (at most SETTLE_MAX_MS). */
async function settle(system: System, run: string): Promise<void> {
  const deadline = performance.now() + SETTLE_MAX_MS;
  while (system.tracker.undelivered(run) > 0 && performance.now() < deadline) await sleep(SETTLE_POLL_MS);
}

let planSeq = 0;

/** A new message of sender `u` in `run`, to the other member of u's conversation. */
function planned(run: string, u: number): Planned {
  const id = `${runId}-${planSeq++}`;
  return { id, conversation: u >> 1, sender: u, recipient: u ^ 1, text: `${id} `.padEnd(TEXT_BYTES, 'x'), run };
}

// ---- measurement ----

interface CpuMark {
  at: number;
  serversMs: number;
  dbMs: number;
  redisMs: number;
  benchMs: number;
}

/** CPU in ms per second with no traffic (for reading the per-message CPU): each system's two servers, and the database. */
interface Background {
  serversMsPerSec: Record<SystemName, number>;
  dbMsPerSec: number | null;
}

let background: Background = { serversMsPerSec: { relay: Number.NaN, flock: Number.NaN }, dbMsPerSec: null };

/** Measures the background over IDLE_MS with every socket connected and nothing sent. */
async function measureBackground(systems: System[]): Promise<Background> {
  const before = await Promise.all(systems.map(cpuMark));
  await sleep(IDLE_MS);
  const after = await Promise.all(systems.map(cpuMark));
  const perSec = (i: number, pick: (m: CpuMark) => number) => round((pick(after[i]!) - pick(before[i]!)) / ((after[i]!.at - before[i]!.at) / 1000), 1);
  const serversMsPerSec = { relay: 0, flock: 0 };
  systems.forEach((s, i) => (serversMsPerSec[s.name] = perSec(i, (m) => m.serversMs)));
  const db = perSec(0, (m) => m.dbMs);
  return { serversMsPerSec, dbMsPerSec: Number.isNaN(db) ? null : db };
}

async function cpuMark(system: System): Promise<CpuMark> {
  const info = await redis!.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  const self = process.cpuUsage();
  const servers = await Promise.all(system.pids().map((pid) => processCpuMs(pid)));
  return {
    at: performance.now(),
    serversMs: servers.reduce((s, x) => s + x, 0),
    dbMs: dbPid === undefined ? Number.NaN : await processCpuMs(dbPid),
    redisMs: (field('used_cpu_user') + field('used_cpu_sys')) * 1000,
    benchMs: (self.user + self.system) / 1000,
  };
}

interface Latency {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

interface Result {
  scenario: string;
  system: SystemName;
  what: string;
  load: string;
  /** Messages the run meant to send; null for a run that sends until its time is up. */
  planned: number | null;
  sent: number;
  acked: number;
  errors: Record<string, number>;
  /** Planned messages not sent because the time limit ran out. */
  skipped: number;
  delivered: number;
  lost: number;
  ownLost: number;
  duplicates: number;
  /** Messages delivered to their recipient per second, first send to last delivery. */
  msgsPerSec: number;
  deliveryMs: Latency;
  ackMs: Latency;
  seconds: number;
  /** CPU per delivered message, in ms, background included: the two servers, the database process, Redis, the bench process. */
  cpuMsPerMsg: { servers: number; db: number | null; redis: number; bench: number };
  db?: DbPerOp;
  firstError?: string;
  [extra: string]: unknown;
}

const results: Result[] = [];

function latency(sorted: number[]): Latency {
  const ms = (q: number) => round(percentile(sorted, q), 2);
  return { p50: ms(0.5), p90: ms(0.9), p99: ms(0.99), max: round(sorted.at(-1) ?? Number.NaN, 2) };
}

function summarize(scenario: Scenario, system: System, planned: number | null, stats: RunStats, cpu0: CpuMark, cpu1: CpuMark, db: DbStats | undefined): Result {
  const per = (x: number) => round(x / Math.max(1, stats.delivered), 3);
  return {
    scenario: scenario.name,
    system: system.name,
    what: system.name === 'flock' ? 'conversations:send, stored, to both members as stream:event' : 'send {to: room, payload}, io.to(room).emit, no storage',
    load: scenario.load,
    planned,
    sent: stats.sent,
    acked: stats.acked,
    errors: stats.errors,
    skipped: planned === null ? 0 : planned - stats.sent,
    delivered: stats.delivered,
    lost: stats.lost,
    ownLost: stats.ownLost,
    duplicates: stats.duplicates,
    msgsPerSec: round(stats.delivered / (stats.elapsedMs / 1000), 1),
    deliveryMs: latency(stats.deliveryMs),
    ackMs: latency(stats.ackMs),
    seconds: round(stats.elapsedMs / 1000, 2),
    cpuMsPerMsg: {
      servers: per(cpu1.serversMs - cpu0.serversMs),
      db: Number.isNaN(cpu1.dbMs) ? null : per(cpu1.dbMs - cpu0.dbMs),
      redis: per(cpu1.redisMs - cpu0.redisMs),
      bench: per(cpu1.benchMs - cpu0.benchMs),
    },
    ...(db && { db: dbPerOp(db, stats.delivered, DB_SHAPES_SHOWN) }),
    ...(firstErrors.has(`${system.name}|${scenario.name}`) && { firstError: firstErrors.get(`${system.name}|${scenario.name}`) }),
  };
}

interface Scenario {
  name: string;
  /** The offered load, in words. */
  load: string;
  /**
   * Gets a run on `system` ready, unmeasured (Flock: its messages reserved in
   * the rate budget), and returns it: it sends the messages and says how many
   * it meant to send (null: as many as fit in its time).
   */
  prepare(system: System): Promise<() => Promise<number | null>>;
}

/**
 * Unmeasured messages before a run, CONCURRENCY outstanding: at least one per
 * conversation and for at least WARM_MS, so the relay's code is optimized too,
 * not only Flock's, which gets there in far fewer messages.
 */
async function warmUp(system: System, run: string): Promise<RunStats> {
  await closedLoop(system, run, { min: CONVERSATIONS, minMs: WARM_MS, max: WARM_MAX_MESSAGES, maxMs: RUN_MAX_MS });
  await settle(system, run);
  return system.tracker.stats(run);
}

/**
 * The relay, then Flock: each gets a warm-up, then the scenario's run. One
 * JSON line each, Flock's with its ratios to the relay.
 */
async function runScenario(s: Scenario, systems: System[]): Promise<void> {
  const out = new Map<SystemName, Result>();
  for (const system of systems) {
    const warm = await warmUp(system, `${s.name}:warm`);
    const warmErrors = Object.values(warm.errors).reduce((a, b) => a + b, 0);
    if (warmErrors > 0) progress(`${s.name} ${system.name}: ${warmErrors} warm-up errors (${JSON.stringify(warm.errors)})`);
    progress(`${s.name} ${system.name}: ${warm.sent} warm-up messages in ${round(warm.elapsedMs)} ms, then ${s.load}`);
    const run = await s.prepare(system);
    await system.dbStats?.(true);
    const cpu0 = await cpuMark(system);
    const meant = await run();
    await settle(system, s.name);
    const cpu1 = await cpuMark(system);
    const db = await system.dbStats?.(true);
    const result = summarize(s, system, meant, system.tracker.stats(s.name), cpu0, cpu1, db);
    out.set(system.name, result);
    progress(
      `${s.name} ${system.name}: ${result.delivered} delivered in ${result.seconds} s, ${result.msgsPerSec}/s, delivery p50 ${result.deliveryMs.p50} ms p99 ${result.deliveryMs.p99} ms, ack p50 ${result.ackMs.p50} ms`,
    );
  }
  const relay = out.get('relay')!;
  const flock = out.get('flock')!;
  Object.assign(flock, {
    baseline: 'relay',
    deliveryP50RatioToRelay: round(flock.deliveryMs.p50 / relay.deliveryMs.p50, 1),
    deliveryP99RatioToRelay: round(flock.deliveryMs.p99 / relay.deliveryMs.p99, 1),
    msgsRatioToRelay: round(flock.msgsPerSec / relay.msgsPerSec, 3),
    serverCpuRatioToRelay: round(flock.cpuMsPerMsg.servers / relay.cpuMsPerMsg.servers, 1),
  });
  for (const r of [relay, flock]) {
    results.push(r);
    emit(r);
  }
}

// ---- run ----

async function main(): Promise<void> {
  const perSender = PACED_RATE / USERS;
  if (perSender > SEND_LIMIT.perSecond / 2)
    throw new Error(`BENCH_MESSAGING_RATE offers ${perSender}/s per sender: keep it under half of ${SEND}'s ${SEND_LIMIT.perSecond}/s`);
  backing = await benchServices('messaging', progress);
  const { env, redisUrl } = backing;
  mongoUrl = backing.mongoUrl;
  redis = new Redis(redisUrl, { connectionName: 'bench-messaging', maxRetriesPerRequest: 1 });
  dbPid = backing.embedded ? await childPid('flock-ferretdb') : undefined;
  await startServers(env, redisUrl);

  let t0 = performance.now();
  const users = await pool(USERS, SIGNUP_CONCURRENCY, signUp);
  const signUpMs = performance.now() - t0;
  progress(`${USERS} users signed up in ${Math.round(signUpMs)} ms (${round(USERS / (signUpMs / 1000), 1)}/s), each with a Flock and a relay socket`);

  t0 = performance.now();
  const conversationIds = await pool(CONVERSATIONS, OPEN_CONCURRENCY, async (c) => {
    // The actor lives where it was first asked: openers on alternate nodes put half the actors on each.
    const opener = 2 * c + (c % 2);
    const view = await users[opener]!.flock.request('conversations:openDirect', { userId: users[opener ^ 1]!.userId });
    await Promise.all([2 * c, 2 * c + 1].map((u) => users[u]!.relay.join(relayRoom(c))));
    return view.conversationId;
  });
  progress(`${CONVERSATIONS} conversations opened in ${Math.round(performance.now() - t0)} ms`);

  const systems = [relaySystem(users), flockSystem(users, conversationIds)];
  background = await measureBackground(systems);
  progress(
    `background CPU with no traffic: Flock nodes ${background.serversMsPerSec.flock} ms/s, relays ${background.serversMsPerSec.relay} ms/s, database ${background.dbMsPerSec ?? '-'} ms/s`,
  );

  // paced: message k by sender k mod USERS, at PACED_RATE per second in all;
  // Flock's reserved in the rate budget before the run starts.
  await runScenario(
    {
      name: 'paced',
      load: `${PACED_MESSAGES} messages at ${PACED_RATE}/s in all (${round(perSender, 2)}/s per sender), open loop`,
      prepare: async (system) => {
        const plan = Array.from({ length: PACED_MESSAGES }, (_, k) => planned('paced', k % USERS));
        const senders = new Map<string, number>();
        for (const p of plan) senders.set(String(p.sender), (senders.get(String(p.sender)) ?? 0) + 1);
        if (system.name === 'flock') {
          const waited = await budget.reserve(SEND, senders, MAX_REFILL_WAIT_MS);
          if (waited >= 100) progress(`paced: waited ${Math.round(waited)} ms for the senders' buckets to refill`);
        }
        return async () => {
          await paced(system, plan, PACED_RATE);
          if (system.name === 'flock') budget.settle(SEND, senders.keys());
          return plan.length;
        };
      },
    },
    systems,
  );

  // saturated: CONCURRENCY outstanding for SATURATED_MS.
  await runScenario(
    {
      name: 'saturated',
      load: `${CONCURRENCY} outstanding for ${SATURATED_MS / 1000} s (at most ${SATURATED_MAX_MESSAGES} messages), closed loop`,
      prepare: async (system) => async () => {
        await closedLoop(system, 'saturated', { min: 0, minMs: SATURATED_MS, max: SATURATED_MAX_MESSAGES, maxMs: SATURATED_MS });
        return null;
      },
    },
    systems,
  );

  // Persistence: one stored message per acked Flock send (warm-ups included).
  const [relay, flock] = systems as [System, System];
  const mongo = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 10_000 });
  let stored: number;
  try {
    stored = await mongo.db(dbName).collection(MESSAGE_COLLECTION).countDocuments({});
  } finally {
    await mongo.close();
  }

  const ofSystem = (s: System): SystemChecks => {
    const all = s.tracker.stats();
    return {
      ...s.tracker.checks,
      lostOrDuplicated: all.lost + all.ownLost + all.duplicates,
      errors: Object.values(all.errors).reduce((a, b) => a + b, 0),
      skipped: results.filter((r) => r.system === s.name).reduce((n, r) => n + r.skipped, 0),
      ...(s.name === 'flock' && { streamGaps, messagesAcked: all.acked, messagesStored: stored }),
    };
  };
  const checks: Checks = {
    scenario: 'checks',
    conversations: CONVERSATIONS,
    users: USERS,
    signUpPerSec: round(USERS / (signUpMs / 1000), 1),
    relay: ofSystem(relay),
    flock: ofSystem(flock),
    backgroundCpuMsPerSec: background,
    nodeWarnings: Object.fromEntries(nodes.map((n) => [n.name, Object.fromEntries(n.warnings)])),
  };
  emit(checks);
  printTables(checks);
}

// ---- output ----

/** Over the whole run, warm-ups included. */
interface SystemChecks {
  outOfOrder: number;
  seqMismatch: number;
  unknown: number;
  lostOrDuplicated: number;
  errors: number;
  /** Measured messages not sent because a run's time limit ran out. */
  skipped: number;
  streamGaps?: number;
  messagesAcked?: number;
  messagesStored?: number;
}

interface Checks {
  scenario: 'checks';
  conversations: number;
  users: number;
  signUpPerSec: number;
  relay: SystemChecks;
  flock: SystemChecks;
  backgroundCpuMsPerSec: Background;
  nodeWarnings: Record<string, Record<string, number>>;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

function printTables(checks: Checks): void {
  const fmt = (x: number | null, digits = 1) => (x === null || Number.isNaN(x) ? '-' : x.toFixed(digits));
  const errorsOf = (r: Result) => Object.values(r.errors).reduce((s, n) => s + n, 0) + r.skipped;
  const flockRuns = results.filter((r) => r.system === 'flock');
  const verdict = (c: SystemChecks) =>
    `out of order ${c.outOfOrder}, seq mismatches ${c.seqMismatch}, unknown copies ${c.unknown}, lost or duplicated ${c.lostOrDuplicated}, errors ${c.errors}, skipped ${c.skipped}` +
    (c.streamGaps === undefined ? '' : `, stream gaps ${c.streamGaps}, stored ${c.messagesStored} of ${c.messagesAcked} acked`);
  const out = [
    '',
    `${CONVERSATIONS} 1:1 conversations, ${USERS} users, the two members of each on different nodes (and relay processes); both members send ${TEXT_BYTES}-byte texts`,
    ...[...new Set(results.map((r) => `${r.scenario}: ${r.load}`))],
    'latency in ms from send to the first copy at the other member (dlv) and to the ack; msg/s delivered; cpu in ms per delivered message',
    `(background included; with no traffic: Flock nodes ${background.serversMsPerSec.flock} ms/s, relays ${background.serversMsPerSec.relay} ms/s, database ${fmt(background.dbMsPerSec)} ms/s)`,
    ...table(
      [
        'scenario',
        'system',
        'sent',
        'dlvd',
        'lost',
        'dup',
        'errors',
        'msg/s',
        'dlv p50',
        'dlv p90',
        'dlv p99',
        'dlv max',
        'ack p50',
        'ack p99',
        'cpu srv',
        'cpu db',
        'cpu redis',
        'cpu bench',
      ],
      results.map((r) => [
        r.scenario,
        r.system,
        String(r.sent),
        String(r.delivered),
        String(r.lost + r.ownLost),
        String(r.duplicates),
        String(errorsOf(r)),
        fmt(r.msgsPerSec),
        fmt(r.deliveryMs.p50),
        fmt(r.deliveryMs.p90),
        fmt(r.deliveryMs.p99),
        fmt(r.deliveryMs.max),
        fmt(r.ackMs.p50),
        fmt(r.ackMs.p99),
        fmt(r.cpuMsPerMsg.servers, 2),
        fmt(r.cpuMsPerMsg.db, 2),
        fmt(r.cpuMsPerMsg.redis, 2),
        fmt(r.cpuMsPerMsg.bench, 2),
      ]),
    ),
    '',
    'Flock: MongoDB commands per delivered message (both nodes), costliest first: count x shape, driver-side ms',
    ...flockRuns.flatMap((r) => [
      `  ${r.scenario}: ${fmt(r.db?.commands ?? null, 2)} commands, ${fmt(r.db?.ms ?? null)} ms`,
      ...(r.db?.byShape ?? []).map((b) => `    ${b.n.toFixed(2).padStart(6)} x ${b.shape.padEnd(60)} ${b.ms.toFixed(1).padStart(8)} ms`),
    ]),
    '',
    'flock / relay',
    ...table(
      ['scenario', '', 'dlv p50', 'dlv p99', 'msg/s', 'cpu srv'],
      flockRuns.map((r) => [
        r.scenario,
        '',
        `${fmt(r.deliveryP50RatioToRelay as number)}x`,
        `${fmt(r.deliveryP99RatioToRelay as number)}x`,
        `${fmt(r.msgsRatioToRelay as number, 3)}x`,
        `${fmt(r.serverCpuRatioToRelay as number)}x`,
      ]),
    ),
    '',
    `sign-up: ${checks.signUpPerSec} users/s`,
    `flock: ${verdict(checks.flock)}`,
    `relay: ${verdict(checks.relay)}`,
    '',
  ];
  process.stderr.write(out.join('\n'));
}

async function cleanup(): Promise<void> {
  for (const c of flockClients) c.close();
  for (const c of relayClients) c.close();
  await Promise.allSettled([...nodes.map((n) => n.stop()), ...relays.map((r) => r.stop())]);
  for (const n of nodes) for (const [msg, count] of n.warnings) if (count > 1) progress(`${n.name} logged "${msg}" ${count} times in all`);
  // Some keys outlive the run by days (stream positions, presence): the run's namespace goes.
  await removeRun({ backing, dbName, redis, keyPattern: `${keyPrefix}:*` }, progress);
}

await runBenchmark(main, cleanup, progress);
