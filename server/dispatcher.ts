// The one path every socket request takes: ack present, known event, size,
// session and role, rate limits, schema, handler, ack. A handler never sees
// unvalidated input, and every request gets exactly one ack:
// { ok: true, data } or { ok: false, error: { code, message, details? } }.
// While Redis or MongoDB is away that ack is SERVICE_UNAVAILABLE (retry after
// details.retryAfterMs), never SERVER_INTERNAL.
import { DEFAULT_MAX_BYTES, type Ack, type ChannelDef, type EventDef, type RateLimit, type Session } from '../channels/define.ts';
import type { Delivery, FlockServer, FlockSocket } from './delivery.ts';
import { FlockError, toErrorBody, toFlockError } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { GatewayServices } from '../channels/services.ts';
import { invalid } from '../kernel/zod-issues.ts';

export interface DispatcherOptions {
  limiter: RateLimiter;
  log: Logger;
  /** Every event from one IP counts against this bucket too. */
  ipLimit: RateLimit;
  /** Refusals for rate limiting within `abuseWindowMs` after which the socket is disconnected. */
  abuseThreshold: number;
  abuseWindowMs: number;
  /** Attaches a session to a socket (rooms, expiry timer); see server/gateway.ts. */
  bindSession(socket: FlockSocket, session: Session | undefined): void;
  services: GatewayServices;
  delivery: Delivery;
}

const UNKNOWN_EVENT_LIMIT: RateLimit = { capacity: 10, perSecond: 2 };

export function attachChannels(io: FlockServer, channels: readonly ChannelDef[], options: DispatcherOptions): Map<string, EventDef> {
  const events = new Map<string, EventDef>();
  for (const channel of channels) {
    for (const [name, def] of Object.entries(channel.events)) {
      const full = `${channel.name}:${name}`;
      if (events.has(full)) throw new Error(`event ${full} declared twice`);
      events.set(full, def);
    }
  }

  io.on('connection', (socket) => {
    const abuse = { count: 0, windowStart: Date.now() };
    socket.onAny((event: unknown, ...args: unknown[]) => {
      if (typeof event !== 'string') return;
      const def = events.get(event);
      void dispatch(socket, event, def, args, abuse);
    });
  });

  async function dispatch(
    socket: FlockSocket,
    event: string,
    def: EventDef | undefined,
    args: unknown[],
    abuse: { count: number; windowStart: number },
  ): Promise<void> {
    const last = args[args.length - 1];
    const ack = typeof last === 'function' ? (response: Ack<unknown>) => void Reflect.apply(last, undefined, [response]) : undefined;
    const data = socket.data;
    const fail = (err: FlockError) => {
      try {
        if (ack) ack({ ok: false, error: toErrorBody(err) });
        else options.delivery.toSocket(socket, 'flock:error', { event, ...toErrorBody(err) });
      } catch (failure) {
        // Outside production delivery checks payloads and throws on a bad one: log it, never reject dispatch.
        options.log.error({ err: failure, event }, 'the error answer could not be sent');
      }
    };
    try {
      // Limits first: malformed, unknown and unauthenticated traffic is flooding too.
      await limit(socket, def ? event : 'unknown', def?.rateLimit ?? UNKNOWN_EVENT_LIMIT, data.session, data.ip, abuse);
      if (!ack) throw new FlockError('REQUEST_NO_ACK', `${event} was sent without an ack callback`);
      if (!def) throw new FlockError('REQUEST_UNKNOWN_EVENT', `No event named ${event}`);
      const payloads = args.length - 1;
      if (payloads !== 1) throw new FlockError('REQUEST_INVALID', `${event} takes exactly one payload argument, got ${payloads}`);
      const size = jsonSize(args[0]);
      const maxBytes = def.maxBytes ?? DEFAULT_MAX_BYTES;
      if (size > maxBytes) throw new FlockError('REQUEST_TOO_LARGE', `${event} payloads are limited to ${maxBytes} bytes`, { details: { maxBytes } });

      const session = data.session;
      if (!('public' in def.access)) {
        if (!session) throw new FlockError('AUTH_REQUIRED');
        if (session.expiresAt <= Date.now()) throw new FlockError('AUTH_TOKEN_EXPIRED');
        if (!def.access.roles.some((role) => session.roles.includes(role))) {
          throw new FlockError('AUTH_FORBIDDEN', `${event} requires one of the roles ${def.access.roles.join(', ')}`);
        }
      }

      const parsed = def.request.safeParse(args[0]);
      if (!parsed.success) throw invalid(event, parsed.error);
      const ctx = {
        session,
        socketId: socket.id,
        ip: data.ip,
        log: options.log.child({ event, user: session?.userId }),
        setSession: (next: Session | undefined) => options.bindSession(socket, next),
        rooms: options.delivery.roomsOf(socket, session?.userId),
        services: options.services,
      };
      const result = await def.handler(ctx, parsed.data);
      const out = def.ack.safeParse(result);
      if (!out.success) {
        options.log.error({ event, issues: out.error.issues }, 'handler returned data that fails its ack schema');
        throw new FlockError('SERVER_INTERNAL');
      }
      ack({ ok: true, data: out.data });
    } catch (err) {
      // A backing service that is away is not a bug: the client gets SERVICE_UNAVAILABLE and retries.
      const failure = toFlockError(err);
      if (failure.code === 'SERVER_INTERNAL' && failure !== err) options.log.error({ err, event }, 'handler failed');
      else if (failure.code === 'SERVICE_UNAVAILABLE' && failure !== err) options.log.debug({ err, event }, 'a backing service is unavailable');
      fail(failure);
    }
  }

  async function limit(
    socket: FlockSocket,
    bucket: string,
    eventLimit: RateLimit,
    session: Session | undefined,
    ip: string,
    abuse: { count: number; windowStart: number },
  ) {
    const event = bucket;
    const subject = session ? `u:${session.userId}` : `ip:${ip}`;
    const taken = await options.limiter.take([
      { subject, name: bucket, limit: eventLimit },
      { subject: `ip:${ip}`, name: 'all', limit: options.ipLimit },
    ]);
    if (taken.allowed) return;
    const now = Date.now();
    if (now - abuse.windowStart > options.abuseWindowMs) {
      abuse.windowStart = now;
      abuse.count = 0;
    }
    abuse.count += 1;
    if (abuse.count > options.abuseThreshold) {
      options.log.warn({ subject, ip, event }, 'disconnecting a socket for sustained flooding');
      options.delivery.toSocket(socket, 'flock:error', { event, code: 'REQUEST_RATE_LIMITED', message: 'Disconnected for sustained flooding' });
      setImmediate(() => socket.disconnect(true));
    }
    throw new FlockError('REQUEST_RATE_LIMITED', undefined, { details: { retryAfterMs: taken.retryAfterMs } });
  }

  return events;
}

function jsonSize(value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '');
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
