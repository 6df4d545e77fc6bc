// The socket gateway: handshake checks (origin, client IP, session from the
// access token) and the channel dispatcher on the node's Socket.IO server.
import type { ChannelDef, Session } from '../channels/define.ts';
import type { Delivery, FlockServer, FlockSocket } from './delivery.ts';
import { clientIp } from './client-ip.ts';
import { attachChannels } from './dispatcher.ts';
import { FlockError, toErrorBody, messageOf } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { GatewayServices } from '../channels/services.ts';

export interface GatewayOptions {
  channels: readonly ChannelDef[];
  allowedOrigins: '*' | readonly string[];
  trustProxyHops: number;
  ipRatePerSecond: number;
  limiter: RateLimiter;
  log: Logger;
  /** Turns a handshake token into a session; throws a FlockError when it is not valid. */
  authenticate?: (token: string) => Promise<Session>;
  services: GatewayServices;
  delivery: Delivery;
}

export interface Gateway {
  /** Waits for presence bookkeeping of sockets that already disconnected. */
  settled(): Promise<void>;
  /** Tells this node's sockets of these sessions they were revoked, and disconnects them. */
  endSessions(sessionIds: readonly string[]): void;
  close(): void;
}

const EXPIRY_SWEEP_MS = 1_000;

export function attachGateway(io: FlockServer, options: GatewayOptions): Gateway {
  // Per-socket bookkeeping is kept small on purpose (memory per connected
  // socket is a published target): one entry in a local session index and one
  // in a per-second expiry bucket, instead of an adapter room and a timer each.
  const bySession = new Map<string, Set<FlockSocket>>();
  const expiring = new Map<number, Set<FlockSocket>>();
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const tracked = p.catch((err: unknown) => options.log.warn({ err: messageOf(err) }, 'presence update failed'));
    pending.add(tracked);
    void tracked.finally(() => pending.delete(tracked));
  };
  const { presence } = options.services;
  const { delivery } = options;
  const bucketOf = (session: Session) => Math.ceil(session.expiresAt / EXPIRY_SWEEP_MS);

  const forget = (socket: FlockSocket, session: Session) => {
    const peers = bySession.get(session.sessionId);
    peers?.delete(socket);
    if (peers?.size === 0) bySession.delete(session.sessionId);
    const bucket = expiring.get(bucketOf(session));
    bucket?.delete(socket);
    if (bucket?.size === 0) expiring.delete(bucketOf(session));
  };

  /**
   * Attaches a session to a socket: its user's room (personal events from any
   * node), the local session index (revocation), presence, and the expiry
   * bucket that tells the client to refresh in place.
   */
  const bindSession = (socket: FlockSocket, session: Session | undefined): void => {
    const previous = socket.data.session;
    if (previous) forget(socket, previous);
    if (previous && previous.userId !== session?.userId) {
      delivery.bindUser(socket, previous.userId, false);
      track(presence.disconnected(previous.userId, socket.id));
    }
    socket.data.session = session;
    if (!session) return;
    if (previous?.userId !== session.userId) {
      delivery.bindUser(socket, session.userId, true);
      track(presence.connected(session.userId, socket.id));
    }
    let peers = bySession.get(session.sessionId);
    if (!peers) bySession.set(session.sessionId, (peers = new Set()));
    peers.add(socket);
    let bucket = expiring.get(bucketOf(session));
    if (!bucket) expiring.set(bucketOf(session), (bucket = new Set()));
    bucket.add(socket);
  };

  const sweep = setInterval(() => {
    const now = Date.now() / EXPIRY_SWEEP_MS;
    for (const [second, sockets] of expiring) {
      if (second > now) continue;
      expiring.delete(second);
      for (const socket of sockets) {
        const session = socket.data.session;
        if (session && bucketOf(session) === second) delivery.toSocket(socket, 'auth:expired', { expiredAt: session.expiresAt });
      }
    }
  }, EXPIRY_SWEEP_MS);
  sweep.unref();

  io.use((socket, next) => {
    handshake(socket, options).then(
      () => next(),
      (err: unknown) => {
        const body = toErrorBody(err);
        next(Object.assign(new Error(body.message), { data: body }));
      },
    );
  });
  io.on('connection', (socket) => {
    const session = socket.data.session;
    socket.data.session = undefined;
    bindSession(socket, session);
    socket.once('disconnect', () => bindSession(socket, undefined));
  });
  // Every node hears every transition; each tells only its own watching sockets.
  presence.onChange((change) => delivery.presenceChanged(change));
  attachChannels(io, options.channels, {
    limiter: options.limiter,
    log: options.log,
    ipLimit: { capacity: options.ipRatePerSecond * 2, perSecond: options.ipRatePerSecond },
    abuseThreshold: 100,
    abuseWindowMs: 10_000,
    bindSession,
    services: options.services,
    delivery,
  });
  return {
    async settled() {
      await Promise.all([...pending]);
    },
    endSessions(sessionIds) {
      for (const sid of sessionIds) {
        for (const socket of [...(bySession.get(sid) ?? [])]) {
          delivery.toSocket(socket, 'auth:revoked', { reason: 'session revoked' });
          socket.disconnect(true);
        }
      }
    },
    close() {
      clearInterval(sweep);
    },
  };
}

async function handshake(socket: FlockSocket, options: GatewayOptions): Promise<void> {
  const origin = socket.handshake.headers.origin;
  if (origin && options.allowedOrigins !== '*' && !options.allowedOrigins.includes(origin)) {
    throw new FlockError('AUTH_ORIGIN_REFUSED', `Origin ${origin} is not allowed`);
  }
  socket.data.ip = clientIp(socket.handshake.address, socket.handshake.headers['x-forwarded-for'], options.trustProxyHops);
  socket.data.session = undefined;
  const auth: unknown = socket.handshake.auth;
  const token = typeof auth === 'object' && auth !== null && 'token' in auth ? auth.token : undefined;
  if (token === undefined) return;
  if (typeof token !== 'string' || token.length > 4096 || !options.authenticate) throw new FlockError('AUTH_TOKEN_INVALID');
  socket.data.session = await options.authenticate(token);
  // Socket.IO keeps the handshake for the socket's lifetime; the token is not needed again.
  socket.handshake.auth = {};
}
