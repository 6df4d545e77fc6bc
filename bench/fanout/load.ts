// A load generator of the fan-out bench (bench/fanout.ts), forked and driven
// over IPC (request/reply by id, bench/lib/ipc.ts). It holds its share of
// each system's follower sockets (socket.io-client, websocket only, one
// connection per socket), in one group per system, and records for every
// `feeds:post` a socket receives when that socket first got it and how often,
// keyed by the payload's `post.postId`. Once every socket of the group has a
// key, it tells the bench at once with an unsolicited { op: 'complete' }.
//
//   connect     { group, urls, from, count, auth }  sockets from..from+count-1 of the group;
//                                 socket i goes to urls[i % urls.length]; with auth, it signs
//                                 in with an access token for user `${userPrefix}${i}`
//   join        { group, room }   every socket of the group asks its (bare) server to join a room
//   request     { group, event, payload, from, count, concurrency, maxMs, expectItems? }
//                                 `count` acked requests on the group's sockets from, from+1, ...
//                                 (one each), `concurrency` outstanding
//   clock       {}                this process's clock, to check the bench's
//   deliveries  { group, keys }   what arrived per key (receipt times), the payload of the last key
//   disconnect  {}                closes every socket
//
// Times come from bench/fanout/clock.ts, the same clock in every process.
import { io, type Socket } from 'socket.io-client';
import type { Reply } from '../lib/ipc.ts';
import { now } from './clock.ts';
import { accessToken } from './token.ts';

const CONNECT_CONCURRENCY = 50;
const CONNECT_TIMEOUT_MS = 20_000;
const ACK_TIMEOUT_MS = 60_000;
const EVENT = 'feeds:post';

export type LoadRequest =
  | { id: number; op: 'connect'; group: string; urls: string[]; from: number; count: number; auth: { secret: string; userPrefix: string } | null }
  | { id: number; op: 'join'; group: string; room: string }
  | {
      id: number;
      op: 'request';
      group: string;
      event: string;
      payload: unknown;
      from: number;
      count: number;
      concurrency: number;
      maxMs: number;
      expectItems?: number;
    }
  | { id: number; op: 'clock' }
  | { id: number; op: 'deliveries'; group: string; keys: string[] }
  | { id: number; op: 'disconnect' };

/** The unsolicited message sent when every socket of a group has a key. */
export interface CompleteMessage {
  op: 'complete';
  group: string;
  key: string;
  at: number;
}

export interface ConnectReply extends Reply {
  connected: number;
  failed: number;
  firstError?: string;
  ms: number;
}

export interface RequestReply extends Reply {
  /** Requests sent (fewer than asked when the time limit ran out). */
  sent: number;
  ok: number;
  errors: Record<string, number>;
  firstError?: string;
  /** Ack latency in ms of every acked request (ok or not). */
  samplesMs: number[];
  elapsedMs: number;
}

export interface KeyDeliveries {
  key: string;
  /** Sockets that got the key at least once. */
  delivered: number;
  /** Receipts beyond the first per socket. */
  duplicates: number;
  /** Sockets of the group that never got it. */
  missing: number;
  /** First receipt per socket that got it, ascending. */
  times: number[];
}

export interface DeliveriesReply extends Reply {
  sockets: number;
  keys: KeyDeliveries[];
  /** The payload of the last receipt of the last key asked for (the bare baselines send the same). */
  sample: unknown;
  /** Receipts in the group of keys not asked for (warm-up and unmeasured posts). */
  otherReceipts: number;
  /** Sockets of the group that disconnected without being told to. */
  droppedSockets: number;
}

interface Tracked {
  counts: Uint16Array;
  times: Float64Array;
  delivered: number;
  duplicates: number;
  sample: unknown;
}

interface Group {
  sockets: Socket[];
  tracked: Map<string, Tracked>;
  dropped: number;
}

const groups = new Map<string, Group>();

function group(name: string): Group {
  let g = groups.get(name);
  if (!g) groups.set(name, (g = { sockets: [], tracked: new Map(), dropped: 0 }));
  return g;
}

/**
 * The address socket i claims in X-Forwarded-For (the Flock nodes trust it),
 * so each socket is its own rate-limit subject; 198.18.0.0/15 is reserved for
 * benchmarks (RFC 2544). The same scheme as bench/gateway/load.ts.
 */
function ipFor(i: number): string {
  return `198.${18 + ((i >> 16) & 1)}.${(i >> 8) & 255}.${i & 255}`;
}

/** A field of a payload off the wire, without trusting its shape. */
function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}

function onDelivery(name: string, g: Group, local: number, payload: unknown): void {
  const at = now();
  const key = field(field(payload, 'post'), 'postId');
  if (typeof key !== 'string') return;
  let t = g.tracked.get(key);
  if (!t) {
    t = { counts: new Uint16Array(g.sockets.length), times: new Float64Array(g.sockets.length), delivered: 0, duplicates: 0, sample: undefined };
    g.tracked.set(key, t);
  }
  if (local >= t.counts.length) return;
  if (t.counts[local]! > 0) t.duplicates++;
  else {
    t.times[local] = at;
    t.delivered++;
    if (t.delivered === g.sockets.length) process.send!({ op: 'complete', group: name, key, at } satisfies CompleteMessage);
  }
  t.counts[local] = Math.min(65_535, t.counts[local]! + 1);
  t.sample = payload;
}

async function connect(m: Extract<LoadRequest, { op: 'connect' }>): Promise<Omit<ConnectReply, 'id'>> {
  const started = performance.now();
  const opened: (Socket | undefined)[] = new Array<Socket | undefined>(m.count);
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const one = async (k: number) => {
    const i = m.from + k;
    const auth = m.auth ? { token: await accessToken(m.auth.secret, `${m.auth.userPrefix}${i}`) } : {};
    await new Promise<void>((resolve) => {
      const socket = io(m.urls[i % m.urls.length], {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        timeout: CONNECT_TIMEOUT_MS,
        extraHeaders: { 'x-forwarded-for': ipFor(i) },
        auth,
      });
      socket.once('connect', () => {
        opened[k] = socket;
        resolve();
      });
      socket.once('connect_error', (err: Error) => {
        failed++;
        firstError ??= err.message;
        socket.close();
        resolve();
      });
    });
  };
  const worker = async () => {
    while (next < m.count) await one(next++);
  };
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker));
  const g = group(m.group);
  const live = opened.filter((s): s is Socket => s !== undefined);
  const base = g.sockets.length;
  live.forEach((socket, k) => {
    socket.on(EVENT, (payload: unknown) => onDelivery(m.group, g, base + k, payload));
    socket.once('disconnect', (reason: string) => {
      if (reason !== 'io client disconnect') g.dropped++;
    });
  });
  g.sockets.push(...live);
  return { connected: live.length, failed, ...(firstError && { firstError }), ms: Math.round(performance.now() - started) };
}

/** An ack's error code, or undefined for `{ ok: true, ... }` (Flock's and the bare servers' shape). */
function ackError(ack: unknown): string | undefined {
  if (field(ack, 'ok') === true) return undefined;
  const code = field(field(ack, 'error'), 'code');
  return typeof code === 'string' ? code : 'BAD_ACK';
}

async function request(m: Extract<LoadRequest, { op: 'request' } | { op: 'join' }>): Promise<Omit<RequestReply, 'id'>> {
  const { sockets } = group(m.group);
  const r =
    m.op === 'join' ? { event: 'join', payload: { room: m.room }, from: 0, count: sockets.length, concurrency: CONNECT_CONCURRENCY, maxMs: 120_000 } : m;
  const expectItems = m.op === 'request' ? m.expectItems : undefined;
  const errors: Record<string, number> = {};
  const samplesMs: number[] = [];
  let ok = 0;
  let firstError: string | undefined;
  const fail = (code: string, message: string) => {
    errors[code] = (errors[code] ?? 0) + 1;
    firstError ??= `${code}: ${message}`;
  };
  let next = 0;
  const started = performance.now();
  const stopAt = started + r.maxMs;
  const worker = async () => {
    while (next < r.count && performance.now() < stopAt) {
      const socket = sockets[(r.from + next++) % sockets.length]!;
      const t0 = performance.now();
      try {
        const ack: unknown = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(r.event, r.payload);
        samplesMs.push(performance.now() - t0);
        const code = ackError(ack);
        const items = field(field(ack, 'data'), 'items');
        if (code) fail(code, String(field(field(ack, 'error'), 'message')));
        else if (expectItems !== undefined && (!Array.isArray(items) || items.length !== expectItems))
          fail('SHORT_PAGE', `${Array.isArray(items) ? items.length : 'no'} items`);
        else ok++;
      } catch (err) {
        fail('ACK_TIMEOUT', err instanceof Error ? err.message : String(err));
      }
    }
  };
  if (sockets.length > 0) await Promise.all(Array.from({ length: Math.min(r.concurrency, r.count) }, worker));
  return { sent: Math.min(next, r.count), ok, errors, ...(firstError && { firstError }), samplesMs, elapsedMs: performance.now() - started };
}

function deliveries(m: Extract<LoadRequest, { op: 'deliveries' }>): Omit<DeliveriesReply, 'id'> {
  const g = group(m.group);
  const asked = new Set(m.keys);
  const keys: KeyDeliveries[] = m.keys.map((key) => {
    const t = g.tracked.get(key);
    if (!t) return { key, delivered: 0, duplicates: 0, missing: g.sockets.length, times: [] };
    const times: number[] = [];
    for (let i = 0; i < t.counts.length; i++) if (t.counts[i]! > 0) times.push(t.times[i]!);
    times.sort((a, b) => a - b);
    return { key, delivered: t.delivered, duplicates: t.duplicates, missing: g.sockets.length - t.delivered, times };
  });
  return {
    sockets: g.sockets.length,
    keys,
    sample: g.tracked.get(m.keys.at(-1) ?? '')?.sample,
    otherReceipts: [...g.tracked].filter(([k]) => !asked.has(k)).reduce((s, [, t]) => s + t.delivered + t.duplicates, 0),
    droppedSockets: g.dropped,
  };
}

function disconnect(): { closed: number } {
  let closed = 0;
  for (const g of groups.values()) {
    for (const s of g.sockets) s.close();
    closed += g.sockets.length;
  }
  groups.clear();
  return { closed };
}

process.on('message', (m: LoadRequest) => {
  const reply = (body: object) => process.send!({ id: m.id, ...body } satisfies Reply);
  const work = async (): Promise<object> => {
    switch (m.op) {
      case 'connect':
        return connect(m);
      case 'join':
      case 'request':
        return request(m);
      case 'clock':
        return { now: now() };
      case 'deliveries':
        return deliveries(m);
      case 'disconnect':
        return disconnect();
    }
  };
  work().then(reply, (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }));
});
process.once('disconnect', () => {
  disconnect();
  process.exit(0);
});
process.send!({ ready: true });
