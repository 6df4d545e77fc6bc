// The socket gateway: handshake checks (origin, client IP, session from the
// access token) and the channel dispatcher on the node's Socket.IO server.
import type { Server, Socket } from 'socket.io';
import type { ChannelDef, Session } from '../channels/define.ts';
import { attachChannels, type SocketData } from './dispatcher.ts';
import { FlockError, toErrorBody } from './errors.ts';
import type { Logger } from './logger.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { GatewayServices } from '../channels/services.ts';

export interface GatewayOptions {
  channels: readonly ChannelDef[];
  allowedOrigins: '*' | readonly string[];
  trustProxy: boolean;
  ipRatePerSecond: number;
  limiter: RateLimiter;
  log: Logger;
  /** Turns a handshake token into a session; throws a FlockError when it is not valid. */
  authenticate?: (token: string) => Promise<Session>;
  services: GatewayServices;
}

export interface Gateway {
  /** Waits for presence bookkeeping of sockets that already disconnected. */
  settled(): Promise<void>;
}

export function attachGateway(io: Server, options: GatewayOptions): Gateway {
  const expiryTimers = new Map<string, NodeJS.Timeout>();
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const tracked = p.catch((err: unknown) => options.log.warn({ err: (err as Error).message }, 'presence update failed'));
    pending.add(tracked);
    void tracked.finally(() => pending.delete(tracked));
  };
  const { presence } = options.services;

  /**
   * Attaches a session to a socket: rooms for its user and session (personal
   * events, cluster-wide revocation), presence, and a timer that tells the
   * client when the access token expires so it can refresh in place.
   */
  const bindSession = (socket: Socket, session: Session | undefined): void => {
    const data = socket.data as SocketData;
    const previous = data.session;
    if (previous && previous.sessionId !== session?.sessionId) void socket.leave(`session:${previous.sessionId}`);
    if (previous && previous.userId !== session?.userId) {
      void socket.leave(`user:${previous.userId}`);
      track(presence.disconnected(previous.userId, socket.id));
    }
    data.session = session;
    clearTimeout(expiryTimers.get(socket.id));
    expiryTimers.delete(socket.id);
    if (!session) return;
    void socket.join([`user:${session.userId}`, `session:${session.sessionId}`]);
    if (previous?.userId !== session.userId) track(presence.connected(session.userId, socket.id));
    const timer = setTimeout(() => {
      expiryTimers.delete(socket.id);
      if ((socket.data as SocketData).session === session) socket.emit('auth:expired', { expiredAt: session.expiresAt });
    }, Math.max(0, Math.min(session.expiresAt - Date.now(), 2 ** 31 - 1)));
    timer.unref();
    expiryTimers.set(socket.id, timer);
  };

  io.use((socket: Socket, next) => {
    handshake(socket, options).then(
      () => next(),
      (err: unknown) => {
        const body = toErrorBody(err);
        next(Object.assign(new Error(body.message), { data: body }));
      },
    );
  });
  io.on('connection', (socket: Socket) => {
    const session = (socket.data as SocketData).session;
    (socket.data as SocketData).session = undefined;
    bindSession(socket, session);
    socket.once('disconnect', () => bindSession(socket, undefined));
  });
  // Every node hears every transition; each tells only its own watching sockets.
  presence.onChange((change) => io.local.to(`presence:${change.userId}`).emit('presence:update', change));
  attachChannels(io, options.channels, {
    limiter: options.limiter,
    log: options.log,
    ipLimit: { capacity: options.ipRatePerSecond * 2, perSecond: options.ipRatePerSecond },
    abuseThreshold: 100,
    abuseWindowMs: 10_000,
    bindSession,
    services: options.services,
  });
  return {
    async settled() {
      await Promise.all([...pending]);
    },
  };
}

async function handshake(socket: Socket, options: GatewayOptions): Promise<void> {
  const origin = socket.handshake.headers.origin;
  if (origin && options.allowedOrigins !== '*' && !options.allowedOrigins.includes(origin)) {
    throw new FlockError('AUTH_ORIGIN_REFUSED', `Origin ${origin} is not allowed`);
  }
  const data = socket.data as SocketData;
  data.ip = clientIp(socket, options.trustProxy);
  data.session = undefined;
  const token = (socket.handshake.auth as { token?: unknown } | undefined)?.token;
  if (token === undefined) return;
  if (typeof token !== 'string' || token.length > 4096 || !options.authenticate) throw new FlockError('AUTH_TOKEN_INVALID');
  data.session = await options.authenticate(token);
}

function clientIp(socket: Socket, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = socket.handshake.headers['x-forwarded-for'];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    if (first) return first.slice(0, 64);
  }
  return (socket.handshake.address || 'unknown').slice(0, 64);
}
