// Graceful shutdown of a real node: SIGTERM stops new connections, drains
// connected sockets (clients are told by the transport closing, so they
// reconnect elsewhere) and exits 0 within SHUTDOWN_TIMEOUT_MS.
import test from 'ava';
import net from 'node:net';
import { io as connect, type Socket } from 'socket.io-client';
import { startNodeProcess } from './helpers/node-process.ts';

const SHUTDOWN_TIMEOUT_MS = 4_000;

test('SIGTERM drains 20 connected sockets and exits 0 within the bound', async (t) => {
  const node = await startNodeProcess({ env: { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) } });
  t.teardown(() => node.stop('SIGKILL'));
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from({ length: 20 }, () => {
      const socket = connect(node.url, { transports: ['websocket'], reconnection: false });
      sockets.push(socket);
      return new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      });
    }),
  );
  const disconnected = sockets.map((s) => new Promise<string>((resolve) => s.once('disconnect', (reason) => resolve(reason))));

  const sentAt = performance.now();
  node.child.kill('SIGTERM');
  const reasons = await Promise.all(disconnected);
  const exit = await node.exited;

  t.is(exit.code, 0);
  t.true(exit.at - sentAt < SHUTDOWN_TIMEOUT_MS, `exited after ${Math.round(exit.at - sentAt)} ms`);
  // A transport close (not "io server disconnect") makes stock clients reconnect by themselves.
  t.true(
    reasons.every((r) => r === 'transport close'),
    reasons.join(','),
  );
  t.true(node.logs.some((l) => l.msg === 'draining' && l.sockets === 20));
  t.true(node.logs.some((l) => l.msg === 'shutdown complete'));
});

test('after SIGTERM the node accepts no new connections', async (t) => {
  const node = await startNodeProcess();
  t.teardown(() => node.stop('SIGKILL'));
  node.child.kill('SIGTERM');
  await node.exited;
  const refused = await new Promise<boolean>((resolve) => {
    const socket = net.connect(node.port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
  t.true(refused);
});
