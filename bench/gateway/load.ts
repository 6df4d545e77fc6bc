// A load generator for the gateway bench, forked by bench/gateway.ts and
// driven over IPC. It holds a range of the bench's sockets (socket.io-client,
// websocket transport only, one connection per socket) and sends acked
// requests over them round robin at a fixed offered rate.
//
//   connect     { url, from, count }          open sockets from..from+count-1
//   run         { event, count, ratePerSec }  send count requests, one latency sample per ack
//   disconnect  {}                            close every socket
import { SignJWT } from 'jose';
import { io, type Socket } from 'socket.io-client';
import type { Reply } from '../lib/ipc.ts';

const CONNECT_CONCURRENCY = 50;
const CONNECT_TIMEOUT_MS = 20_000;
const ACK_TIMEOUT_MS = 10_000;
const PAYLOAD = { echo: 'gateway-bench' };

/**
 * The client address socket i claims. Every server gets the same header, but
 * only the Flock node reads it (TRUST_PROXY=true): there each socket is its own
 * rate-limit subject, so the per-event limits apply per socket. 198.18.0.0/15
 * is the range reserved for benchmarks (RFC 2544), so no test's buckets collide.
 */
export function ipFor(i: number): string {
  return `198.${18 + ((i >> 16) & 1)}.${(i >> 8) & 255}.${i & 255}`;
}

/**
 * The handshake `auth` payload of socket i: a real access token (HS256, signed
 * with the JWT_SECRET the Flock node runs with), one session per socket, so
 * every Flock socket is authenticated like an app's. The echo servers ignore it.
 */
async function handshakeAuth(i: number): Promise<Record<string, unknown>> {
  const secret = process.env.BENCH_JWT_SECRET;
  if (!secret) return {};
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ sid: `s_bench${i}`, roles: ['user'] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(`u_bench${i}`)
    .setIssuer('flock')
    .setAudience('flock')
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(new Uint8Array(Buffer.from(secret, 'base64')));
  return { token };
}

let sockets: Socket[] = [];

async function connect(url: string, from: number, count: number): Promise<{ connected: number; failed: number; firstError?: string; ms: number }> {
  const started = performance.now();
  let next = from;
  let failed = 0;
  let firstError: string | undefined;
  const opened: Socket[] = [];
  const one = async (i: number) => {
    const auth = await handshakeAuth(i);
    return new Promise<void>((resolve) => {
      const socket = io(url, {
        transports: ['websocket'],
        forceNew: true,
        reconnection: false,
        timeout: CONNECT_TIMEOUT_MS,
        extraHeaders: { 'x-forwarded-for': ipFor(i) },
        auth,
      });
      socket.once('connect', () => {
        opened.push(socket);
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
    while (next < from + count) await one(next++);
  };
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker));
  sockets.push(...opened);
  return { connected: opened.length, failed, ...(firstError && { firstError }), ms: Math.round(performance.now() - started) };
}

interface RunResult {
  sent: number;
  ok: number;
  errors: Record<string, number>;
  /** Ack latencies in microseconds, one per acked request (ok or not). */
  samplesUs: number[];
  elapsedMs: number;
  clientCpuUs: number;
  disconnected: number;
}

async function run(event: string, count: number, ratePerSec: number, maxMs: number): Promise<RunResult> {
  const live = sockets.filter((s) => s.connected);
  if (live.length === 0) throw new Error('no connected sockets');
  const errors: Record<string, number> = {};
  const samplesUs: number[] = [];
  const countError = (code: string) => {
    errors[code] = (errors[code] ?? 0) + 1;
  };
  let sent = 0;
  let ok = 0;
  let outstanding = 0;
  let onIdle: (() => void) | undefined;
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  const stopAt = started + maxMs;

  const send = (socket: Socket) => {
    const t0 = performance.now();
    outstanding++;
    socket.timeout(ACK_TIMEOUT_MS).emit(event, PAYLOAD, (err: Error | null, response: unknown) => {
      outstanding--;
      if (err) countError('ACK_TIMEOUT');
      else {
        samplesUs.push((performance.now() - t0) * 1000);
        const ack = response as { ok?: unknown; error?: { code?: unknown } } | undefined;
        if (ack?.ok === true) ok++;
        else countError(typeof ack?.error?.code === 'string' ? ack.error.code : 'BAD_ACK');
      }
      if (outstanding === 0) onIdle?.();
    });
  };

  // Offered load: request k leaves at started + k / rate, round robin over the
  // sockets, so each socket sends at rate / sockets per second.
  await new Promise<void>((resolve) => {
    let cursor = 0;
    const tick = () => {
      const now = performance.now();
      const due = Math.min(count, Math.floor(((now - started) / 1000) * ratePerSec) + 1);
      while (sent < due) {
        send(live[cursor]!);
        cursor = (cursor + 1) % live.length;
        sent++;
      }
      if (sent >= count || now > stopAt) resolve();
      else setTimeout(tick, 2);
    };
    tick();
  });
  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      onIdle = resolve;
      setTimeout(resolve, ACK_TIMEOUT_MS + 1_000);
    });
  }
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpu0);
  return {
    sent,
    ok,
    errors,
    samplesUs,
    elapsedMs,
    clientCpuUs: cpu.user + cpu.system,
    disconnected: live.filter((s) => !s.connected).length,
  };
}

function disconnect(): { closed: number } {
  const closed = sockets.length;
  for (const s of sockets) s.close();
  sockets = [];
  return { closed };
}

type Request =
  | { id: number; op: 'connect'; url: string; from: number; count: number }
  | { id: number; op: 'run'; event: string; count: number; ratePerSec: number; maxMs: number }
  | { id: number; op: 'disconnect' };

process.on('message', (m: Request) => {
  const reply = (body: Record<string, unknown>) => process.send!({ id: m.id, ...body } satisfies Reply);
  const work =
    m.op === 'connect' ? connect(m.url, m.from, m.count) : m.op === 'run' ? run(m.event, m.count, m.ratePerSec, m.maxMs) : Promise.resolve(disconnect());
  work.then(
    (body) => reply({ ...body }),
    (err: unknown) => reply({ error: err instanceof Error ? err.message : String(err) }),
  );
});
process.once('disconnect', () => {
  disconnect();
  process.exit(0);
});
process.send!({ ready: true });
