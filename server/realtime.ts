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
    adapter: createAdapter(publishingSafely(options.pub, options.log), options.sub, { key: options.adapterKey }),
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

/** Disconnects every socket on this node (clients reconnect, to another node). */
export async function closeRealtime(io: FlockServer): Promise<void> {
  await new Promise<void>((resolve) => {
    void io.close(() => resolve());
  });
}
