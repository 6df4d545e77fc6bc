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
    adapter: createAdapter(options.pub, options.sub, { key: options.adapterKey }),
  };
  const io = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>(serverOptions);
  options.engine.attach(io, serverOptions);
  io.on('connection', (socket) => {
    options.log.debug({ sid: socket.id }, 'socket connected');
  });
  return io;
}

/** Disconnects every socket on this node (clients reconnect, to another node). */
export async function closeRealtime(io: FlockServer): Promise<void> {
  await new Promise<void>((resolve) => {
    void io.close(() => resolve());
  });
}
