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
  /** Connection limits per node and the deadlines of sockets without a valid session (server/config.ts). */
  sockets: { perUser: number; perIp: number; signInSeconds: number; graceSeconds: number };
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
  // socket is a published target): an entry in a local session index, in the
  // user's and the address's counts, and in one per-second deadline bucket
  // (token expiry, the grace after it, or the sign-in deadline), instead of an
  // adapter room and a timer each.
  const bySession = new Map<string, Set<FlockSocket>>();
  const byUser = new Map<string, Set<FlockSocket>>();
  const byIp = new Map<string, number>();
  const expiring = new Map<number, Set<FlockSocket>>();
  const lapsing = new Map<number, Set<FlockSocket>>();
  const unsigned = new Map<number, Set<FlockSocket>>();
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const tracked = p.catch((err: unknown) => options.log.warn({ err: messageOf(err) }, 'presence update failed'));
    pending.add(tracked);
    void tracked.finally(() => pending.delete(tracked));
  };
  const { presence } = options.services;
  const { delivery } = options;
  const limits = options.sockets;
  const secondOf = (ms: number) => Math.ceil(ms / EXPIRY_SWEEP_MS);
  const bucketOf = (session: Session) => secondOf(session.expiresAt);
  const lapseOf = (session: Session) => secondOf(session.expiresAt + limits.graceSeconds * 1000);
  const add = (buckets: Map<number, Set<FlockSocket>>, second: number, socket: FlockSocket) => {
    let bucket = buckets.get(second);
    if (!bucket) buckets.set(second, (bucket = new Set()));
    bucket.add(socket);
  };
  const remove = (buckets: Map<number, Set<FlockSocket>>, second: number, socket: FlockSocket) => {
    const bucket = buckets.get(second);
    bucket?.delete(socket);
    if (bucket?.size === 0) buckets.delete(second);
  };
  const userLimit = (userId: string) => {
    if ((byUser.get(userId)?.size ?? 0) < limits.perUser) return;
    throw new FlockError('REQUEST_TOO_MANY_CONNECTIONS', `at most ${limits.perUser} signed-in sockets per user on one node`, {
      details: { limit: limits.perUser, scope: 'user' },
    });
  };

  const forget = (socket: FlockSocket, session: Session) => {
    const peers = bySession.get(session.sessionId);
    peers?.delete(socket);
    if (peers?.size === 0) bySession.delete(session.sessionId);
    remove(expiring, bucketOf(session), socket);
    remove(lapsing, lapseOf(session), socket);
  };

  /**
   * Attaches a session to a socket: its user's room (personal events from any
   * node), the local session and user indexes (revocation, the per-user
   * limit), presence, and the expiry bucket that tells the client to refresh
   * in place. Signing out (or in as someone else) leaves every room the socket
   * joined as the previous user, and starts the sign-in deadline. Throws
   * REQUEST_TOO_MANY_CONNECTIONS, changing nothing, when the user has all the
   * sockets allowed on this node.
   */
  const bindSession = (socket: FlockSocket, session: Session | undefined): void => {
    const previous = socket.data.session;
    if (session && previous?.userId !== session.userId) userLimit(session.userId);
    if (previous) forget(socket, previous);
    if (previous && previous.userId !== session?.userId) {
      delivery.bindUser(socket, previous.userId, false);
      const mine = byUser.get(previous.userId);
      mine?.delete(socket);
      if (mine?.size === 0) byUser.delete(previous.userId);
      track(presence.disconnected(previous.userId, socket.id));
    }
    socket.data.session = session;
    if (socket.data.signInBy !== undefined) remove(unsigned, socket.data.signInBy, socket);
    socket.data.signInBy = undefined;
    if (!session) {
      if (socket.connected) {
        socket.data.signInBy = secondOf(Date.now() + limits.signInSeconds * 1000);
        add(unsigned, socket.data.signInBy, socket);
      }
      return;
    }
    if (previous?.userId !== session.userId) {
      delivery.bindUser(socket, session.userId, true);
      let mine = byUser.get(session.userId);
      if (!mine) byUser.set(session.userId, (mine = new Set()));
      mine.add(socket);
      track(presence.connected(session.userId, socket.id));
    }
    let peers = bySession.get(session.sessionId);
    if (!peers) bySession.set(session.sessionId, (peers = new Set()));
    peers.add(socket);
    add(expiring, bucketOf(session), socket);
    add(lapsing, lapseOf(session), socket);
  };

  /** Takes the buckets whose second has come. */
  function* due(buckets: Map<number, Set<FlockSocket>>, now: number): Generator<[number, FlockSocket]> {
    for (const [second, sockets] of buckets) {
      if (second > now) continue;
      buckets.delete(second);
      for (const socket of sockets) yield [second, socket];
    }
  }

  const sweep = setInterval(() => {
    const now = Date.now() / EXPIRY_SWEEP_MS;
    for (const [second, socket] of due(expiring, now)) {
      const session = socket.data.session;
      if (session && bucketOf(session) === second) delivery.toSocket(socket, 'auth:expired', { expiredAt: session.expiresAt });
    }
    // Past the grace: the socket keeps nothing its expired token gave it.
    for (const [second, socket] of due(lapsing, now)) {
      const session = socket.data.session;
      if (!session || lapseOf(session) !== second || !socket.connected) continue;
      bindSession(socket, undefined);
      delivery.toSocket(socket, 'flock:error', {
        event: 'auth',
        code: 'AUTH_TOKEN_EXPIRED',
        message: `The access token expired over ${limits.graceSeconds} s ago: this socket was signed out and left every room; call auth:reauthenticate.`,
      });
    }
    for (const [second, socket] of due(unsigned, now)) {
      if (socket.data.session || socket.data.signInBy !== second || !socket.connected) continue;
      delivery.toSocket(socket, 'flock:error', {
        event: 'connection',
        code: 'AUTH_REQUIRED',
        message: `A socket must sign in within ${limits.signInSeconds} s of connecting or signing out.`,
      });
      socket.disconnect(true);
    }
  }, EXPIRY_SWEEP_MS);
  sweep.unref();

  io.use((socket, next) => {
    handshake(socket, options)
      .then(() => {
        // Checked again when the socket is attached: these only refuse early, with a handshake error.
        if ((byIp.get(socket.data.ip) ?? 0) >= limits.perIp) {
          throw new FlockError('REQUEST_TOO_MANY_CONNECTIONS', `at most ${limits.perIp} sockets per client address on one node`, {
            details: { limit: limits.perIp, scope: 'ip' },
          });
        }
        if (socket.data.session) userLimit(socket.data.session.userId);
      })
      .then(
        () => next(),
        (err: unknown) => {
          const body = toErrorBody(err);
          next(Object.assign(new Error(body.message), { data: body }));
        },
      );
  });
  io.on('connection', (socket) => {
    const { ip } = socket.data;
    const session = socket.data.session;
    socket.data.session = undefined;
    socket.data.signInBy = undefined;
    byIp.set(ip, (byIp.get(ip) ?? 0) + 1);
    socket.once('disconnect', () => {
      bindSession(socket, undefined);
      const left = (byIp.get(ip) ?? 1) - 1;
      if (left > 0) byIp.set(ip, left);
      else byIp.delete(ip);
    });
    try {
      bindSession(socket, session);
    } catch (err) {
      // Another handshake of the same user won the last place meanwhile.
      delivery.toSocket(socket, 'flock:error', { event: 'connection', ...toErrorBody(err) });
      socket.disconnect(true);
    }
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
  socket.data.signInBy = undefined;
  const auth: unknown = socket.handshake.auth;
  const token = typeof auth === 'object' && auth !== null && 'token' in auth ? auth.token : undefined;
  if (token === undefined) return;
  if (typeof token !== 'string' || token.length > 4096 || !options.authenticate) throw new FlockError('AUTH_TOKEN_INVALID');
  socket.data.session = await options.authenticate(token);
  // Socket.IO keeps the handshake for the socket's lifetime; the token is not needed again.
  socket.handshake.auth = {};
}
