// A baseline server for the gateway bench: bare Socket.IO with one echo
// handler, on either engine, in its own process (forked with --expose-gc).
//
//   ws   new Server(httpServer) on node:http, the default `ws` engine
//   uws  io.attachApp(uWS.App()), the engine Flock uses
//
// It reports { ready: true, port } over IPC once listening and then answers
// the bench's stats/gc requests (bench/lib/ipc.ts).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import uWS from 'uWebSockets.js';
import { installProbe } from '../lib/ipc.ts';

const engine = process.argv[2];
if (engine !== 'ws' && engine !== 'uws') throw new Error(`usage: echo-server.ts ws|uws (got ${engine})`);

installProbe();

function onEcho(io: Server): void {
  io.on('connection', (socket) => {
    socket.on('echo', (payload: unknown, ack: unknown) => {
      if (typeof ack === 'function') (ack as (response: unknown) => void)({ ok: true, data: payload });
    });
  });
}

let port: number;
if (engine === 'ws') {
  const httpServer = http.createServer();
  const io = new Server(httpServer);
  onEcho(io);
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  port = (httpServer.address() as AddressInfo).port;
} else {
  const app = uWS.App();
  const io = new Server();
  io.attachApp(app);
  onEcho(io);
  port = await new Promise<number>((resolve, reject) => {
    app.listen('127.0.0.1', 0, (socket) => {
      if (!socket) reject(new Error('uWS could not listen'));
      else resolve(uWS.us_socket_local_port(socket));
    });
  });
}
process.once('SIGTERM', () => process.exit(0));
process.send!({ ready: true, port });
