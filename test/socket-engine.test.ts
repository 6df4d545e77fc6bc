// The socket engines on real node processes. SOCKET_ENGINE=ws serves Socket.IO
// (websocket and long-polling) and the declared routes on node:http; auto
// runs uWebSockets.js where its binary loads and otherwise falls back to ws
// with one warning naming the reason; the gauge flock_socket_engine says which;
// a ws node and an auto node form one cluster (a rolling upgrade from Node 20
// to 24 mixes them); SOCKET_ENGINE=uws where no binary loads refuses to start;
// SIGTERM on ws drains the sockets like on uWS.
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { io as connectSocket } from 'socket.io-client';
import type { FlockClient } from '../client/flock-client.ts';
import { assertEventsValid, checkedClient } from './helpers/clients.ts';
import { uwsUnavailable } from './helpers/engines.ts';
import { tempDir, uniqueDbName } from './helpers/env.ts';
import { eventually, startNodeProcess, type NodeProcess } from './helpers/node-process.ts';
import { onJsonLines } from './helpers/outcome.ts';

/** Why uWS cannot run on this Node, as the nodes will find it; undefined where it runs (Node 20). */
const uwsReason = uwsUnavailable();
const dbName = uniqueDbName('engines');
const env = { TRUST_PROXY: 'true', RATE_LIMIT_IP_PER_SECOND: '1000' };
let wsNode: NodeProcess;
let autoNode: NodeProcess;
const clients: FlockClient[] = [];

test.before(async () => {
  [wsNode, autoNode] = await Promise.all([
    startNodeProcess({ dbName, env: { ...env, SOCKET_ENGINE: 'ws' } }),
    startNodeProcess({ dbName, env: { ...env, SOCKET_ENGINE: 'auto' } }),
  ]);
});
test.after.always(async () => {
  clients.forEach((c) => c.close());
  await Promise.all([wsNode, autoNode].map((n) => n?.stop()));
  assertEventsValid();
});

let ipSeq = 1;
async function client(node: NodeProcess, options: { token?: string; transports?: ('websocket' | 'polling')[] } = {}): Promise<FlockClient> {
  const c = checkedClient(node.url, {
    ...(options.token && { token: options.token }),
    socket: { transports: options.transports ?? ['websocket'], extraHeaders: { 'x-forwarded-for': `10.77.0.${ipSeq++}` }, reconnection: false },
  });
  clients.push(c);
  await c.connected();
  return c;
}

const engineLine = (node: NodeProcess) => node.logs.find((l) => typeof l.msg === 'string' && l.msg.startsWith('socket engine'));
const engineGauge = async (node: NodeProcess) => {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const values: Record<string, number> = {};
  for (const m of text.matchAll(/^flock_socket_engine\{engine="(\w+)"[^}]*\} (\d)$/gm)) values[m[1]!] = Number(m[2]);
  return values;
};

test('SOCKET_ENGINE=ws: a request over a websocket and one over long-polling are acked', async (t) => {
  t.is(engineLine(wsNode)?.engine, 'ws');
  t.is(wsNode.logs.find((l) => l.msg === 'listening')?.engine, 'ws');
  const overWebsocket = await client(wsNode);
  t.is(overWebsocket.socket.io.engine.transport.name, 'websocket');
  t.is((await overWebsocket.request('system:ping', { echo: 'ws engine' })).echo, 'ws engine');
  const overPolling = await client(wsNode, { transports: ['polling'] });
  t.is(overPolling.socket.io.engine.transport.name, 'polling');
  t.is((await overPolling.request('system:ping', { echo: 'polling' })).echo, 'polling');
});

test('SOCKET_ENGINE=ws: the declared routes answer on node:http, unknown paths get a typed 404', async (t) => {
  const health = await fetch(`${wsNode.url}/healthz`);
  t.is(health.status, 200);
  t.is(((await health.json()) as { status: string }).status, 'ok');
  const ready = await fetch(`${wsNode.url}/readyz`);
  t.is(ready.status, 200);
  t.true(((await ready.json()) as { ready: boolean }).ready);
  t.deepEqual(await engineGauge(wsNode), { uws: 0, ws: 1 });
  const asyncApi = await fetch(`${wsNode.url}/asyncapi.json`);
  t.is(((await asyncApi.json()) as { asyncapi: string }).asyncapi.slice(0, 2), '3.');
  const missing = await fetch(`${wsNode.url}/nowhere`);
  t.is(missing.status, 404);
  t.is(((await missing.json()) as { error: { code: string } }).error.code, 'HTTP_NOT_FOUND');
  const oauth = await fetch(`${wsNode.url}/auth/google/start`, { redirect: 'manual' });
  t.is(oauth.status, 404);
  t.is(((await oauth.json()) as { error: { message: string } }).error.message, 'No such provider', "the OAuth route's own answer (no provider configured)");
});

test(`auto: ${uwsReason === undefined ? 'uWebSockets.js, whose binary loads here' : 'ws, with one warning naming why uWebSockets.js does not load'}`, async (t) => {
  const line = engineLine(autoNode);
  if (uwsReason === undefined) {
    t.like(line, { engine: 'uws', requested: 'auto' });
    t.deepEqual(await engineGauge(autoNode), { uws: 1, ws: 0 });
  } else {
    t.like(line, { engine: 'ws', requested: 'auto', reason: uwsReason, level: 'warn' });
    t.deepEqual(await engineGauge(autoNode), { uws: 0, ws: 1 });
  }
  t.is(autoNode.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('socket engine')).length, 1);
  t.is((await fetch(`${autoNode.url}/healthz`)).status, 200);
});

test('a ws node and an auto node are one cluster: a watcher on one sees a user come and go on the other', async (t) => {
  const register = async (node: NodeProcess) => {
    const c = await client(node);
    const username = `eng${randomBytes(4).toString('hex')}`;
    const res = await c.request('auth:register', { username, email: `${username}@example.test`, password: 'correct horse 42' });
    return { c, ...res };
  };
  const user = await register(wsNode);
  const watcher = await register(autoNode);
  const updates: { userId: string; online: boolean }[] = [];
  watcher.c.on('presence:update', (u) => updates.push(u));
  const { statuses } = await watcher.c.request('presence:watch', { userIds: [user.userId] });
  t.true(statuses[0]!.online, 'online on the other node');
  user.c.close();
  t.true(await eventually(async () => updates.some((u) => u.userId === user.userId && !u.online)));
  const back = await client(wsNode, { token: user.tokens.accessToken });
  t.true(await eventually(async () => updates.some((u) => u.userId === user.userId && u.online)));
  const onAuto = await client(autoNode, { token: user.tokens.accessToken });
  t.deepEqual(
    (await onAuto.request('users:me', {})).profile.userId,
    (await back.request('users:me', {})).profile.userId,
    "one node's token opens a socket on the other",
  );
});

test(`SOCKET_ENGINE=uws ${uwsReason === undefined ? 'runs uWebSockets.js' : 'refuses to start with SERVER_ENGINE_UNAVAILABLE'}`, async (t) => {
  if (uwsReason === undefined) {
    const node = await startNodeProcess({ dbName, env: { ...env, SOCKET_ENGINE: 'uws' } });
    t.teardown(() => node.stop());
    t.like(engineLine(node), { engine: 'uws', requested: 'uws' });
    return;
  }
  const logs: Record<string, unknown>[] = [];
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), fileURLToPath(new URL('../server/main.ts', import.meta.url))], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MONGO_DB: dbName, FLOCK_DATA_DIR: await tempDir('engine-uws'), SOCKET_ENGINE: 'uws' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  onJsonLines(child.stdout, (entry) => logs.push(entry));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  t.is(code, 1);
  const fatal = logs.find((l) => l.msg === 'start-up failed');
  t.is(fatal?.code, 'SERVER_ENGINE_UNAVAILABLE');
  t.false(
    logs.some((l) => l.msg === 'listening'),
    'nothing listened',
  );
});

test('SIGTERM on the ws engine drains connected sockets and exits 0 within the bound', async (t) => {
  const node = await startNodeProcess({ env: { SOCKET_ENGINE: 'ws', SHUTDOWN_TIMEOUT_MS: '4000' } });
  t.teardown(() => node.stop('SIGKILL'));
  const sockets = Array.from({ length: 5 }, () => connectSocket(node.url, { transports: ['websocket'], reconnection: false }));
  await Promise.all(sockets.map((s) => new Promise<void>((resolve, reject) => s.once('connect', resolve).once('connect_error', reject))));
  const reasons = sockets.map((s) => new Promise<string>((resolve) => s.once('disconnect', resolve)));
  const sentAt = performance.now();
  node.child.kill('SIGTERM');
  const exit = await node.exited;
  t.is(exit.code, 0);
  t.true(exit.at - sentAt < 4000, `exited after ${Math.round(exit.at - sentAt)} ms`);
  t.deepEqual(await Promise.all(reasons), Array(5).fill('transport close'));
});
