// The socket gateway over real sockets on two node processes: every request
// gets one typed ack; unknown, ack-less, oversized and malformed requests are
// refused with typed errors; flooding is limited per IP and per user across the
// cluster without affecting anyone else; origins are checked at the handshake.
import test from 'ava';
import { io } from 'socket.io-client';
import { type FlockClient, type FlockRequestError } from '../client/flock-client.ts';
import { codeOf } from './helpers/outcome.ts';
import { startNodeProcess, type NodeProcess } from './helpers/node-process.ts';
import { uniqueDbName } from './helpers/env.ts';
import { assertEventsValid, checkedClient, untyped } from './helpers/clients.ts';

let nodes: NodeProcess[] = [];

test.before(async () => {
  const dbName = uniqueDbName('gateway');
  nodes = await Promise.all(
    [0, 1].map(() =>
      startNodeProcess({
        dbName,
        env: { TRUST_PROXY: 'true', RATE_LIMIT_IP_PER_SECOND: '20', SOCKET_ALLOWED_ORIGINS: 'https://app.flock.test' },
      }),
    ),
  );
});
test.after.always(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  assertEventsValid();
});

/** A client on node i that claims to come from `ip` (the nodes trust X-Forwarded-For here). */
async function client(i: number, ip: string): Promise<FlockClient> {
  const c = checkedClient(nodes[i]!.url, { socket: { extraHeaders: { 'x-forwarded-for': ip }, reconnection: false } });
  await c.connected();
  return c;
}

test('a public request is acked with typed data on either node', async (t) => {
  for (const i of [0, 1]) {
    const c = await client(i, '10.0.0.1');
    t.teardown(() => c.close());
    const res = await c.request('system:ping', { echo: 'hi' });
    t.is(res.echo, 'hi');
    t.true(Math.abs(res.now - Date.now()) < 5_000);
  }
});

test('an unknown event gets REQUEST_UNKNOWN_EVENT', async (t) => {
  const c = await client(0, '10.0.0.2');
  t.teardown(() => c.close());
  const ack = (await untyped(c).timeout(5_000).emitWithAck('nope:nothing', {})) as { ok: boolean; error: { code: string } };
  t.false(ack.ok);
  t.is(ack.error.code, 'REQUEST_UNKNOWN_EVENT');
});

test('a malformed payload gets REQUEST_INVALID naming the field', async (t) => {
  const c = await client(1, '10.0.0.3');
  t.teardown(() => c.close());
  const err = await t.throwsAsync(c.request('system:ping', { echo: 42 } as never));
  t.is((err as FlockRequestError).code, 'REQUEST_INVALID');
  t.regex(err.message, /echo/);
  t.is(await codeOf(c.request('system:ping', { echo: 'x', extra: true } as never)), 'REQUEST_INVALID');
  const twoArgs = (await untyped(c).timeout(5_000).emitWithAck('system:ping', {}, {})) as { error: { code: string } };
  t.is(twoArgs.error.code, 'REQUEST_INVALID');
});

test('an oversized payload gets REQUEST_TOO_LARGE', async (t) => {
  const c = await client(0, '10.0.0.4');
  t.teardown(() => c.close());
  t.is(await codeOf(c.request('system:ping', { echo: 'x'.repeat(2_000) })), 'REQUEST_TOO_LARGE');
  t.is(await codeOf(c.request('system:ping', { echo: 'still works' })), 'ok');
});

test('an event without an ack callback gets a typed flock:error event', async (t) => {
  const c = await client(1, '10.0.0.5');
  t.teardown(() => c.close());
  const error = new Promise<{ event: string; code: string }>((resolve) => c.on('flock:error', resolve));
  untyped(c).emit('system:ping', {});
  const got = await error;
  t.is(got.code, 'REQUEST_NO_ACK');
  t.is(got.event, 'system:ping');
});

test('flooding from one IP is refused with REQUEST_RATE_LIMITED on both nodes while another IP is unaffected', async (t) => {
  const flooder = [await client(0, '10.9.9.9'), await client(1, '10.9.9.9')];
  const bystander = await client(1, '10.7.7.7');
  t.teardown(() => [...flooder, bystander].forEach((c) => c.close()));
  const results = await Promise.all(Array.from({ length: 80 }, (_, i) => codeOf(flooder[i % 2]!.request('system:ping', {}))));
  const limited = results.filter((r) => r === 'REQUEST_RATE_LIMITED').length;
  t.true(limited > 20, `${limited} of 80 limited`);
  t.true(results.filter((r) => r === 'ok').length <= 45, 'the IP budget is shared by both nodes');
  t.is(await codeOf(bystander.request('system:ping', {})), 'ok');
});

test('sustained flooding gets the socket disconnected', async (t) => {
  const c = await client(0, '10.6.6.6');
  t.teardown(() => c.close());
  const disconnected = new Promise<string>((resolve) => c.socket.once('disconnect', (reason) => resolve(reason)));
  for (let i = 0; i < 200 && c.socket.connected; i++) c.socket.emit('system:ping', {}, () => {});
  t.is(await disconnected, 'io server disconnect');
});

test('a browser origin that is not allowed is refused at the handshake; an allowed one connects', async (t) => {
  const refused = io(nodes[0]!.url, { transports: ['websocket'], extraHeaders: { origin: 'https://evil.test' }, reconnection: false });
  const err = await new Promise<Error & { data?: { code: string } }>((resolve) => refused.once('connect_error', resolve));
  refused.close();
  t.is(err.data?.code, 'AUTH_ORIGIN_REFUSED');
  const allowed = io(nodes[0]!.url, { transports: ['websocket'], extraHeaders: { origin: 'https://app.flock.test' }, reconnection: false });
  await new Promise<void>((resolve, reject) => {
    allowed.once('connect', resolve);
    allowed.once('connect_error', reject);
  });
  allowed.close();
  t.pass();
});

test('HTTP long-polling works for browsers that cannot open a websocket', async (t) => {
  const c = checkedClient(nodes[1]!.url, { socket: { transports: ['polling'], extraHeaders: { 'x-forwarded-for': '10.0.0.77' }, reconnection: false } });
  t.teardown(() => c.close());
  await c.connected();
  t.is(c.socket.io.engine.transport.name, 'polling');
  const res = await c.request('system:ping', { echo: 'over polling' });
  t.is(res.echo, 'over polling');
});
