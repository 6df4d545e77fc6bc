// The baseline server of the fan-out and messaging benches: bare Socket.IO on
// uWebSockets.js, in its own process, scaled out over Redis with one of the
// two adapters of @socket.io/redis-adapter, and nothing else: no auth, no
// validation, no storage, no sequence numbers. Two of these stand in for the
// two Flock nodes, so a message between them crosses Redis pub/sub like one
// between two Flock nodes does.
//
//   classic  createAdapter(pub, sub, {key}): what Flock uses (server/realtime.ts);
//            every node receives every broadcast
//   sharded  createShardedAdapter(pub, sub, {channelPrefix: key}) (Redis 7
//            sharded pub/sub, subscriptionMode "dynamic"): one channel per room,
//            so a broadcast reaches only the nodes that hold the room
//
//   join     {room}                   ack {ok: true}   the socket joins the room
//   publish  {room, event, payload}   ack {ok: true}   io.to(room).emit(event, payload):
//            one room, no excluded socket, so Socket.IO takes the uWS fast path (app.publish)
//
// Started by bench/fanout.ts and bench/messaging/relay.ts as
// `bare-socketio-server.ts classic|sharded REDIS_URL KEY`;
// reports { ready: true, port } over IPC once listening, and leaves with the bench.
import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import uWS from 'uWebSockets.js';

const [kind, redisUrl, key] = process.argv.slice(2);
if ((kind !== 'classic' && kind !== 'sharded') || !redisUrl || !key) throw new Error('usage: bare-socketio-server.ts classic|sharded REDIS_URL KEY');
if (!process.send) throw new Error('bare-socketio-server.ts reports over IPC: start it with fork()');

const pub = new Redis(redisUrl, { connectionName: `${key}-pub` });
const sub = pub.duplicate({ connectionName: `${key}-sub` });
const app = uWS.App();
const io = new Server({
  serveClient: false,
  adapter: kind === 'classic' ? createAdapter(pub, sub, { key }) : createShardedAdapter(pub, sub, { channelPrefix: key }),
});
io.attachApp(app);

type Ack = (reply: { ok: boolean }) => void;
const isAck = (ack: unknown): ack is Ack => typeof ack === 'function';
/** A field of a request off the wire (anything at all), without trusting its shape. */
const field = (request: unknown, name: string): unknown =>
  typeof request === 'object' && request !== null ? (request as Record<string, unknown>)[name] : undefined;
const nameIn = (value: unknown): string | undefined => (typeof value === 'string' && value.length > 0 ? value : undefined);

io.on('connection', (socket) => {
  socket.on('join', (request: unknown, ack: unknown) => {
    const room = nameIn(field(request, 'room'));
    if (room) void socket.join(room);
    if (isAck(ack)) ack({ ok: room !== undefined });
  });
  socket.on('publish', (request: unknown, ack: unknown) => {
    const room = nameIn(field(request, 'room'));
    const event = nameIn(field(request, 'event'));
    if (room && event) io.to(room).emit(event, field(request, 'payload'));
    if (isAck(ack)) ack({ ok: room !== undefined && event !== undefined });
  });
});

const port = await new Promise<number>((resolve, reject) => {
  app.listen('127.0.0.1', 0, (socket) => {
    if (!socket) reject(new Error('uWS could not listen'));
    else resolve(uWS.us_socket_local_port(socket));
  });
});

const stop = () => {
  void io.close();
  pub.disconnect();
  sub.disconnect();
  process.exit(0);
};
process.once('SIGTERM', stop);
// A server whose bench has gone must not linger.
process.once('disconnect', stop);
process.send({ ready: true, port });
