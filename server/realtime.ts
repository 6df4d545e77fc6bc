// The Socket.IO server on the node's engine (uWebSockets.js, or the ws engine
// on node:http: server/socket-engine.ts), scaled out with the Redis adapter.
import { createAdapter } from '@socket.io/redis-adapter';
import { Server, type ServerOptions } from 'socket.io';
import type { ClientToServerEvents, InterServerEvents, ServerToClientEvents, SocketData } from '../channels/event-map.ts';
import type { FlockServer } from './delivery.ts';
import type { Logger } from '../kernel/logger.ts';
import type { Redis } from '../kernel/redis.ts';
import type { HttpEngine } from './http-engine.ts';

export interface RealtimeOptions {
  engine: HttpEngine;
  pub: Redis;
  sub: Redis;
  maxPayloadBytes: number;
  /** Prefix of the adapter's Redis channels. */
  adapterKey: string;
  log: Logger;
}

export function createRealtime(options: RealtimeOptions): FlockServer {
  const serverOptions: Partial<ServerOptions> = {
    serveClient: false,
    // Also the largest websocket message: uWS's maxPayloadLength, ws's maxPayload.
    maxHttpBufferSize: options.maxPayloadBytes,
    pingInterval: 25_000,
    pingTimeout: 20_000,
    connectTimeout: 10_000,
    adapter: createAdapter(publishingSafely(options.pub, options.log), subscribingSafely(options.sub, options.log), { key: options.adapterKey }),
  };
  const io = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>(serverOptions);
  options.engine.attach(io, serverOptions);
  io.on('connection', (socket) => {
    options.log.debug({ sid: socket.id }, 'socket connected');
  });
  return io;
}

/**
 * The adapter publishes every broadcast and inter-node request without
 * handling a failure: while Redis is away each would be an unhandled
 * rejection, and that ends the process. Broadcasts are best effort (what they
 * carry can be read again: streams, timelines, presence), so a failed publish
 * is logged once per outage and dropped.
 */
function publishingSafely(pub: Redis, log: Logger): Redis {
  let failing = false;
  pub.on('ready', () => {
    failing = false;
  });
  const publish = (channel: string, message: string): Promise<number> =>
    pub.publish(channel, message).catch((err: unknown) => {
      if (!failing) log.warn({ err: err instanceof Error ? err.message : String(err) }, 'broadcast to other nodes failed; dropped until Redis is back');
      failing = true;
      return 0;
    });
  return new Proxy(pub, {
    get: (target, property, receiver): unknown => (property === 'publish' ? publish : Reflect.get(target, property, receiver)),
  });
}

/**
 * The adapter subscribes when it is created and does not handle a failure
 * either: Redis going away just then would end the process, and a
 * subscription that failed is not among those ioredis renews on reconnect.
 * A failed (p)subscribe is logged and made again when Redis is back.
 */
function subscribingSafely(sub: Redis, log: Logger): Redis {
  const failed: (() => Promise<unknown>)[] = [];
  sub.on('ready', () => {
    for (const again of failed.splice(0)) void again();
  });
  const safely =
    (command: 'subscribe' | 'psubscribe') =>
    (...channels: (string | string[])[]): Promise<unknown> => {
      const attempt = (): Promise<unknown> =>
        sub[command](...channels.flat()).catch((err: unknown) => {
          log.warn({ err: err instanceof Error ? err.message : String(err), command }, 'adapter subscription failed; made again when Redis is back');
          failed.push(attempt);
          return 0;
        });
      return attempt();
    };
  const subscribe = safely('subscribe');
  const psubscribe = safely('psubscribe');
  return new Proxy(sub, {
    get: (target, property, receiver): unknown =>
      property === 'subscribe' ? subscribe : property === 'psubscribe' ? psubscribe : Reflect.get(target, property, receiver),
  });
}

/** Disconnects every socket on this node (clients reconnect, to another node). */
export async function closeRealtime(io: FlockServer): Promise<void> {
  await new Promise<void>((resolve) => {
    void io.close(() => resolve());
  });
}
