// The server side of the upload scenario of bench/media.ts, in a process of
// its own so that its RSS is the server's alone: the tus routes
// (routes/uploads.ts) on the HTTP engine a node would pick (SOCKET_ENGINE,
// default auto: uWebSockets.js where it loads), over a real UploadStore
// (MongoDB through the driver, S3 through the SDK, the rate limiter on
// Redis), with the small in-memory lifecycle of bench/media/upload-lifecycle.ts
// and a token verifier that knows one token. Forked by the bench with the
// backing services in its environment (server/config.ts names them) and
// BENCH_MEDIA_RUN (the database, the Redis prefix and the key prefix of the run).
//
// Besides serving, it measures itself for the bench over IPC
// (bench/media/upload-protocol.ts): the time its S3 commands take (a
// middleware on the client) and its MongoDB commands (the driver's command
// monitoring), the time any of them was in flight, its CPU time, and its memory, sampled every 50 ms, with the
// kernel's own peak (VmHWM, restarted through /proc/self/clear_refs) beside.
import { readFileSync, writeFileSync } from 'node:fs';
import { MongoClient, type CommandFailedEvent, type CommandSucceededEvent } from 'mongodb';
import { pino } from 'pino';
import type { Session } from '../../auth/session.ts';
import { FlockError } from '../../kernel/errors.ts';
import { createRedis } from '../../kernel/redis.ts';
import { DirectUploads } from '../../media/direct-upload.ts';
import { UploadStore } from '../../media/upload-store.ts';
import { tusRoutes } from '../../routes/uploads.ts';
import { loadConfig } from '../../server/config.ts';
import { RateLimiter } from '../../server/rate-limit.ts';
import { createS3Client } from '../../server/s3.ts';
import { openEngine } from '../../server/socket-engine.ts';
import { CommandTally } from '../lib/db-commands.ts';
import { BenchLifecycle } from './upload-lifecycle.ts';
import { BENCH_TOKEN, BENCH_USER, serverRequestSchema, type RssReply, type ServerRequest, type Tally } from './upload-protocol.ts';

const send = process.send?.bind(process);
if (!send) throw new Error('upload-server.ts reports over IPC: start it with fork()');
const run = process.env.BENCH_MEDIA_RUN;
if (!run || !/^[a-z0-9]+$/.test(run)) throw new Error('BENCH_MEDIA_RUN must name the run (lower-case letters and digits)');

const config = loadConfig(process.env);
if (!config.mongo.url) throw new Error('MONGO_URL is required (the bench passes the services it started)');
const log = pino({ level: 'warn', base: { node: 'bench-media' } }, pino.destination(2));

/** When each S3 and MongoDB command was in flight since the last reset: their union is the time the server waited on its services. */
let busy: [number, number][] = [];
let windowStart = performance.now();

const mongo = new MongoClient(config.mongo.url, { monitorCommands: true, serverSelectionTimeoutMS: 10_000 });
const tally = new CommandTally();
tally.attach(mongo);
const dbStarts = new Map<number, number>();
mongo.on('commandStarted', (e) => dbStarts.set(e.requestId, performance.now()));
const dbDone = (e: CommandSucceededEvent | CommandFailedEvent) => {
  const started = dbStarts.get(e.requestId);
  dbStarts.delete(e.requestId);
  if (started !== undefined) busy.push([started, performance.now()]);
};
mongo.on('commandSucceeded', dbDone);
mongo.on('commandFailed', dbDone);
await mongo.connect();
const redis = createRedis(config.redis.url, 'bench-media', log);

const s3 = createS3Client({
  endpoint: config.s3.endpoint,
  region: config.s3.region,
  bucket: config.s3.bucket,
  forcePathStyle: config.s3.forcePathStyle,
  credentials:
    config.s3.accessKeyId && config.s3.secretAccessKey ? { accessKeyId: config.s3.accessKeyId, secretAccessKey: config.s3.secretAccessKey } : undefined,
});
let s3Tally = new Map<string, { n: number; ms: number }>();
s3.middlewareStack.add(
  (next, context) => async (args) => {
    const started = performance.now();
    try {
      return await next(args);
    } finally {
      busy.push([started, performance.now()]);
      const name = context.commandName ?? 'unknown';
      const s = s3Tally.get(name) ?? { n: 0, ms: 0 };
      s.n += 1;
      s.ms += performance.now() - started;
      s3Tally.set(name, s);
    }
  },
  { step: 'initialize', name: 'benchMediaTiming' },
);

const lifecycle = new BenchLifecycle(`bench-media-${run}`);
const store = new UploadStore({
  db: mongo.db(`bench_media_${run}`),
  s3,
  bucket: config.s3.bucket,
  lifecycle,
  nodeId: 'bench-media',
  log,
  maxLength: 4 * 1024 ** 3,
});
await store.init();

const engine = await openEngine(config.socketEngine, log);
engine.serveRoutes(tusRoutes, {
  services: {
    nodeId: 'bench-media',
    readiness: { report: async () => ({ ready: true, lifecycle: 'ready', services: {} }) },
    metrics: async () => ({ contentType: 'text/plain', body: '' }),
    asyncApi: {},
    oauth: undefined,
    media: { uploads: store, direct: new DirectUploads(store), storageWebhookToken: undefined },
  },
  authenticate: async (token): Promise<Session> => {
    if (token !== BENCH_TOKEN) throw new FlockError('AUTH_TOKEN_INVALID');
    return { userId: BENCH_USER, sessionId: 's_bench_media', roles: ['user'], expiresAt: Date.now() + 3_600_000 };
  },
  limiter: new RateLimiter(redis, `bench-media-${run}`),
  trustProxyHops: 0,
  log,
});
const listening = await engine.listen('127.0.0.1', 0);

// ---- memory ----

const gc = (globalThis as { gc?: () => void }).gc;
const peaks = { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0, samples: 0 };
const sample = () => {
  const m = process.memoryUsage();
  peaks.rss = Math.max(peaks.rss, m.rss);
  peaks.heapUsed = Math.max(peaks.heapUsed, m.heapUsed);
  peaks.external = Math.max(peaks.external, m.external);
  peaks.arrayBuffers = Math.max(peaks.arrayBuffers, m.arrayBuffers);
  peaks.samples++;
  return m;
};
setInterval(sample, 50).unref();
let baseline = { rss: 0, hwm: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };

/** VmHWM, the kernel's peak RSS of this process, in bytes (0 where /proc has none). */
function hwm(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function rssStart(): Promise<Omit<RssReply, 'id'>> {
  if (gc) {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  try {
    // 5: restart VmHWM at the current RSS (Linux 4.0 and later).
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // not Linux: the sampled peak alone
  }
  Object.assign(peaks, { rss: 0, heapUsed: 0, external: 0, arrayBuffers: 0, samples: 0 });
  const m = sample();
  baseline = { rss: m.rss, hwm: hwm(), heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
  return rssStop();
}

function rssStop(): Omit<RssReply, 'id'> {
  const m = sample();
  return {
    baselineRss: baseline.rss,
    peakRss: peaks.rss,
    endRss: m.rss,
    baselineHwm: baseline.hwm,
    peakHwm: hwm(),
    baselineHeapUsed: baseline.heapUsed,
    peakHeapUsed: peaks.heapUsed,
    baselineExternal: baseline.external,
    peakExternal: peaks.external,
    baselineArrayBuffers: baseline.arrayBuffers,
    peakArrayBuffers: peaks.arrayBuffers,
    samples: peaks.samples,
    gc: gc !== undefined,
  };
}

/** The length of the union of `intervals`, within [from, to]. */
function union(intervals: [number, number][], from: number, to: number): number {
  let total = 0;
  let reached = from;
  for (const [start, end] of [...intervals].sort((a, b) => a[0] - b[0])) {
    const s = Math.max(start, reached);
    const e = Math.min(end, to);
    if (e > s) total += e - s;
    reached = Math.max(reached, e);
  }
  return total;
}

// ---- requests from the bench ----

let cpuMark = process.cpuUsage();

async function answer(request: ServerRequest): Promise<object> {
  switch (request.op) {
    case 'reset':
      s3Tally = new Map();
      tally.take(true);
      cpuMark = process.cpuUsage();
      busy = [];
      windowStart = performance.now();
      return {};
    case 'take': {
      const cpu = process.cpuUsage(cpuMark);
      const s3Taken: Tally = Object.fromEntries(s3Tally);
      const now = performance.now();
      return { s3: s3Taken, db: tally.take(false), cpuMs: (cpu.user + cpu.system) / 1000, windowMs: now - windowStart, busyMs: union(busy, windowStart, now) };
    }
    case 'rss-start':
      return rssStart();
    case 'rss-stop':
      return rssStop();
    case 'clean': {
      const keys = lifecycle.takeCompleted();
      for (const key of keys) await store.objects.remove(key);
      return { removed: keys.length };
    }
  }
}

process.on('message', (message: unknown) => {
  const parsed = serverRequestSchema.safeParse(message);
  if (!parsed.success) {
    log.error({ message }, 'not a bench request');
    return;
  }
  const { id } = parsed.data;
  answer(parsed.data).then(
    (reply) => send({ id, ...reply }),
    (err: unknown) => send({ id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  listening.stopAccepting();
  engine.close();
  redis.disconnect();
  void mongo.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
// Leave with the bench: a server whose parent has gone must not linger.
process.once('disconnect', stop);

send({ ready: true, port: listening.port, engine: engine.name });
