// What a socket may hold, over real sockets on node processes: signed-in
// sockets per user and open sockets per address are bounded on each node; a
// socket without a session is closed after the sign-in window; a socket whose
// token expired is signed out after the grace and leaves every room, as one
// that logs out does.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { type FlockClient, type FlockRequestError } from '../client/flock-client.ts';
import { codeOf } from './helpers/outcome.ts';
import { uniqueDbName } from './helpers/env.ts';
import { startNodeProcess, type NodeProcess } from './helpers/node-process.ts';
import { assertEventsValid, checkedClient } from './helpers/clients.ts';

const dbName = uniqueDbName('gwlimits');
/** limited: small connection limits and sign-in window; expiring: short tokens and grace. */
let limited: NodeProcess;
let expiring: NodeProcess;
const clients: FlockClient[] = [];
const PASSWORD = 'correct horse 42';

test.before(async () => {
  const common = { TRUST_PROXY: 'true', RATE_LIMIT_IP_PER_SECOND: '1000' };
  [limited, expiring] = await Promise.all([
    startNodeProcess({ dbName, env: { ...common, SOCKETS_PER_USER: '2', SOCKETS_PER_IP: '3', SOCKET_SIGN_IN_SECONDS: '3' } }),
    startNodeProcess({ dbName, env: { ...common, ACCESS_TOKEN_TTL_SECONDS: '6', ACCESS_TOKEN_GRACE_SECONDS: '1' } }),
  ]);
});
test.after.always(async () => {
  clients.forEach((c) => c.close());
  await Promise.all([limited, expiring].map((n) => n?.stop()));
  assertEventsValid();
});

const ipBase = `10.${1 + Math.floor(Math.random() * 250)}`;
let ipSeq = 1;
const newIp = () => `${ipBase}.${Math.floor(ipSeq / 250)}.${ipSeq++ % 250}`;

function client(node: NodeProcess, options: { token?: string; ip?: string } = {}): FlockClient {
  const c = checkedClient(node.url, {
    ...(options.token && { token: options.token }),
    socket: { extraHeaders: { 'x-forwarded-for': options.ip ?? newIp() }, reconnection: false },
  });
  clients.push(c);
  return c;
}
async function connect(node: NodeProcess, options: { token?: string; ip?: string } = {}): Promise<FlockClient> {
  const c = client(node, options);
  await c.connected();
  return c;
}

async function registered(node: NodeProcess) {
  const username = `u${randomBytes(5).toString('hex')}`;
  const c = await connect(node);
  const res = await c.request('auth:register', { username, email: `${username}@example.test`, password: PASSWORD, displayName: 'Tester' });
  return { c, ...res, username };
}

/** Resolves with the next flock:error the client gets. */
function nextError(c: FlockClient): Promise<{ event: string; code: string }> {
  return new Promise((resolve) => c.socket.once('flock:error', resolve));
}

test('a user has at most SOCKETS_PER_USER signed-in sockets on a node: the next is refused at the handshake and at an in-place sign-in', async (t) => {
  const { c: first, tokens } = await registered(limited);
  await connect(limited, { token: tokens.accessToken });
  const third = client(limited, { token: tokens.accessToken });
  const refused = await t.throwsAsync<FlockRequestError>(third.connected());
  t.is(refused?.code, 'REQUEST_TOO_MANY_CONNECTIONS');
  const open = await connect(limited);
  t.is(await codeOf(open.request('auth:reauthenticate', { accessToken: tokens.accessToken })), 'REQUEST_TOO_MANY_CONNECTIONS');
  t.is(await codeOf(open.request('users:me', {})), 'AUTH_REQUIRED', 'the refused sign-in changed nothing');
  first.close();
  t.is(await codeOf(open.request('auth:reauthenticate', { accessToken: tokens.accessToken })), 'ok', 'a closed socket frees its place');
});

test('an address has at most SOCKETS_PER_IP open sockets on a node; others are unaffected', async (t) => {
  const ip = newIp();
  const mine = await Promise.all([0, 1, 2].map(() => connect(limited, { ip })));
  const over = client(limited, { ip });
  t.is((await t.throwsAsync<FlockRequestError>(over.connected()))?.code, 'REQUEST_TOO_MANY_CONNECTIONS');
  t.truthy(await (await connect(limited)).request('system:ping', { echo: 'another address' }));
  mine[0]!.close();
  await (await connect(limited, { ip })).request('system:ping', { echo: 'a place again' });
  t.pass();
});

test('a socket that does not sign in within SOCKET_SIGN_IN_SECONDS is told AUTH_REQUIRED and closed; a signed-in one stays', async (t) => {
  const idle = await connect(limited);
  const { c: signedIn } = await registered(limited);
  const closed = new Promise<string>((resolve) => idle.socket.once('disconnect', resolve));
  const error = await nextError(idle);
  t.is(error.code, 'AUTH_REQUIRED');
  t.is(await closed, 'io server disconnect');
  t.truthy(await signedIn.request('users:me', {}), 'the signed-in socket, opened at the same time, is still there');
  // Signing out starts the window again.
  await signedIn.request('auth:logout', {});
  t.is((await nextError(signedIn)).code, 'AUTH_REQUIRED');
});

/** Records the private events a socket receives. */
function heard(c: FlockClient): { stream: string[]; presence: string[]; feed: string[] } {
  const got = { stream: [] as string[], presence: [] as string[], feed: [] as string[] };
  c.on('stream:event', (e) => got.stream.push(e.type));
  c.on('presence:update', (u) => got.presence.push(u.userId));
  c.on('feeds:post', (p) => got.feed.push(p.post.postId));
  return got;
}

/**
 * Someone `x` watches (presence) and follows (live feed) comes online and
 * posts, and `x` is sent a personal event; `witness` watches the same and
 * is one of x's sockets, so once it has all three the signed-out socket
 * would have had them too (same node, same broadcasts).
 */
async function privateTraffic(x: { username: string }, watched: { username: string; userId: string }, witness: FlockClient) {
  const seen = heard(witness);
  const author = await connect(expiring);
  await author.request('auth:login', { identifier: watched.username, password: PASSWORD });
  const post = await author.request('posts:create', { text: 'hello watchers' });
  await (await connect(expiring)).request('auth:login', { identifier: x.username, password: PASSWORD });
  const until = Date.now() + 60_000;
  while (!(seen.presence.includes(watched.userId) && seen.feed.includes(post.postId) && seen.stream.includes('auth:signedIn'))) {
    if (Date.now() > until) throw new Error(`the witness did not get the traffic: ${JSON.stringify(seen)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function watching(c: FlockClient, watchedId: string): Promise<void> {
  await c.request('graph:follow', { userId: watchedId });
  await c.request('presence:watch', { userIds: [watchedId] });
  await c.request('feeds:watch', {});
}

for (const how of ['logs out', 'keeps an expired token past the grace'] as const) {
  test(`a socket that ${how} leaves every room: no personal events, presence updates or live posts`, async (t) => {
    const x = await registered(expiring);
    const watched = await registered(expiring);
    watched.c.close(); // offline: coming online is the presence update to watch for
    await watching(x.c, watched.userId);
    const gone = heard(x.c);
    if (how === 'logs out') {
      await x.c.request('auth:logout', {});
    } else {
      const error = await nextError(x.c);
      t.is(error.code, 'AUTH_TOKEN_EXPIRED');
      t.is(await codeOf(x.c.request('users:me', {})), 'AUTH_REQUIRED', 'signed out, still connected');
    }
    gone.stream.length = gone.presence.length = gone.feed.length = 0;
    // A witness: another socket of x, watching the same things, with a token that lives through the test.
    const relogin = await (await connect(expiring)).request('auth:login', { identifier: x.username, password: PASSWORD });
    const witness = await connect(expiring, { token: relogin.tokens.accessToken });
    await watching(witness, watched.userId);
    await privateTraffic(x, watched, witness);
    await x.c.request('system:ping', { echo: 'anything sent before this ack has arrived' });
    t.deepEqual(gone, { stream: [], presence: [], feed: [] });
  });
}
