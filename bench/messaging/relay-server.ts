// The ceiling the messaging bench compares Flock with: a plain Socket.IO relay
// on uWebSockets.js, in its own process, scaled out over the same Redis with
// the adapter Flock uses (@socket.io/redis-adapter), so a message between two
// relay processes crosses Redis pub/sub like one between two Flock nodes does.
// No auth, no validation, no persistence, no sequence numbers: it only forwards.
//
//   join {room}         ack {ok: true}   the socket joins a room (its conversation)
//   send {to, payload}  ack {ok: true}   io.to(to).emit('message', payload), then the ack
//
// Started by bench/messaging/relay.ts as `relay-server.ts REDIS_URL ADAPTER_KEY`;
// reports { ready: true, port } over IPC once listening, and leaves with the bench.
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import uWS from 'uWebSockets.js';

const [redisUrl, key] = process.argv.slice(2);
if (!redisUrl || !key) throw new Error('usage: relay-server.ts REDIS_URL ADAPTER_KEY');
if (!process.send) throw new Error('relay-server.ts reports over IPC: start it with fork()');

const pub = new Redis(redisUrl, { connectionName: `${key}-pub` });
const sub = pub.duplicate({ connectionName: `${key}-sub` });
const app = uWS.App();
const io = new Server({ serveClient: false, adapter: createAdapter(pub, sub, { key }) });
io.attachApp(app);

type Ack = (reply: { ok: boolean }) => void;
const isAck = (ack: unknown): ack is Ack => typeof ack === 'function';
/** A field of a request off the wire (anything at all), without trusting its shape. */
const field = (request: unknown, name: string): unknown => (typeof request === 'object' && request !== null ? (request as Record<string, unknown>)[name] : undefined);
const roomIn = (value: unknown): string | undefined => (typeof value === 'string' && value.length > 0 ? value : undefined);

io.on('connection', (socket) => {
  socket.on('join', (request: unknown, ack: unknown) => {
    const room = roomIn(field(request, 'room'));
    if (room) void socket.join(room);
    if (isAck(ack)) ack({ ok: room !== undefined });
  });
  socket.on('send', (request: unknown, ack: unknown) => {
    const room = roomIn(field(request, 'to'));
    if (room) io.to(room).emit('message', field(request, 'payload'));
    if (isAck(ack)) ack({ ok: room !== undefined });
  });
});

const port = await new Promise<number>((resolve, reject) => {
  app.listen('127.0.0.1', 0, (socket) => {
    if (!socket) reject(new Error('uWS could not listen'));
    else resolve(uWS.us_socket_local_port(socket as unknown as uWS.us_socket));
  });
});

const stop = () => {
  io.close();
  pub.disconnect();
  sub.disconnect();
  process.exit(0);
};
process.once('SIGTERM', stop);
// A relay whose bench has gone must not linger.
process.once('disconnect', stop);
process.send({ ready: true, port });
