// Accounts and sessions over real sockets on two node processes, through the
// typed client: registration, sign-in with throttling, tokens checked at the
// handshake on any node, refresh rotation with reuse detection, revocation
// that disconnects sockets cluster-wide, roles enforced on every protected
// event, in-place refresh after expiry, resumable personal streams across
// nodes, and presence.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { MongoClient } from 'mongodb';
import { type FlockClient, type FlockRequestError } from '../client/flock-client.ts';
import { channels } from '../channels/registry.ts';
import { codeOf } from './helpers/outcome.ts';
import { requireEnv, uniqueDbName } from './helpers/env.ts';
import { eventually, startNodeProcess, type NodeProcess } from './helpers/node-process.ts';
import { assertEventsValid, checkedClient, untyped } from './helpers/clients.ts';
import type { EventDef } from '../channels/define.ts';

const dbName = uniqueDbName('authgw');
let nodes: NodeProcess[] = [];
const clients: FlockClient[] = [];

test.before(async () => {
  nodes = await Promise.all(
    [0, 1].map(() => startNodeProcess({ dbName, env: { TRUST_PROXY: 'true', ACCESS_TOKEN_TTL_SECONDS: '6', RATE_LIMIT_IP_PER_SECOND: '1000' } })),
  );
});
test.after.always(async () => {
  clients.forEach((c) => c.close());
  await Promise.all(nodes.map((n) => n.stop()));
  assertEventsValid();
});

// Sign-in throttling counts failures per IP for 15 minutes in the shared Redis:
// a fresh address range per run keeps runs independent.
const ipBase = `10.${1 + Math.floor(Math.random() * 250)}`;
let ipSeq = 1;
/** A connected client on node i, with its own client IP (the nodes trust X-Forwarded-For). */
async function connect(i: number, token?: string): Promise<FlockClient> {
  const c = checkedClient(nodes[i]!.url, {
    ...(token && { token }),
    socket: { extraHeaders: { 'x-forwarded-for': `${ipBase}.${Math.floor(ipSeq / 250)}.${ipSeq++ % 250}` }, reconnection: false },
  });
  clients.push(c);
  await c.connected();
  return c;
}

const fresh = () => `u${randomBytes(5).toString('hex')}`;
const PASSWORD = 'correct horse 42';

async function registered(i = 0) {
  const username = fresh();
  const c = await connect(i);
  const res = await c.request('auth:register', { username, email: `${username}@example.test`, password: PASSWORD, displayName: 'Tester' });
  return { c, ...res, username };
}

test('register signs the socket in, creates the profile, and refuses a taken username or email', async (t) => {
  const { c, username, userId, tokens } = await registered();
  t.regex(userId, /^u_/);
  t.true(tokens.expiresAt > Date.now());
  const me = await c.request('users:me', {});
  t.is(me.profile.username, username);
  t.is(me.profile.displayName, 'Tester');
  t.deepEqual(me.roles, ['user']);
  const other = await connect(1);
  t.is(await codeOf(other.request('auth:register', { username: username.toUpperCase(), email: 'x@example.test', password: PASSWORD })), 'AUTH_IDENTITY_TAKEN');
  t.is(await codeOf(other.request('auth:register', { username: fresh(), email: `${username}@example.test`, password: PASSWORD })), 'AUTH_IDENTITY_TAKEN');
  t.is(await codeOf(other.request('auth:register', { username: fresh(), email: 'weak@example.test', password: 'short' })), 'AUTH_WEAK_PASSWORD');
});

test('an access token from one node opens a socket on the other; bad and expired tokens are refused at connect', async (t) => {
  const { tokens } = await registered(0);
  const c = await connect(1, tokens.accessToken);
  t.truthy((await c.request('users:me', {})).profile);

  const bad = checkedClient(nodes[1]!.url, { token: 'not-a-token-at-all', socket: { reconnection: false } });
  clients.push(bad);
  t.is((await t.throwsAsync<FlockRequestError>(bad.connected())).code, 'AUTH_TOKEN_INVALID');

  const secret = new Uint8Array(Buffer.from(requireEnv('JWT_SECRET'), 'base64'));
  const expired = await new SignJWT({ sid: 's_x', roles: ['user'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('u_someone')
    .setIssuer('flock')
    .setAudience('flock')
    .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 600)
    .sign(secret);
  const late = checkedClient(nodes[0]!.url, { token: expired, socket: { reconnection: false } });
  clients.push(late);
  t.is((await t.throwsAsync<FlockRequestError>(late.connected())).code, 'AUTH_TOKEN_EXPIRED');
});

test('login: wrong password and unknown user look alike, and repeated failures are throttled', async (t) => {
  const { username } = await registered(0);
  const c = await connect(1);
  t.is(await codeOf(c.request('auth:login', { identifier: username, password: 'wrong password 1' })), 'AUTH_INVALID_CREDENTIALS');
  t.is(await codeOf(c.request('auth:login', { identifier: fresh(), password: 'wrong password 1' })), 'AUTH_INVALID_CREDENTIALS');
  const ok = await c.request('auth:login', { identifier: `${username}@example.test`, password: PASSWORD });
  t.is(ok.username, username);
  const attacker = await connect(0);
  const codes: string[] = [];
  for (let i = 0; i < 7; i++) codes.push(await codeOf(attacker.request('auth:login', { identifier: username, password: `nope-${i}-xxxxxx` })));
  t.true(codes.includes('AUTH_THROTTLED'), codes.join(','));
  t.is(await codeOf(attacker.request('auth:login', { identifier: username, password: PASSWORD })), 'AUTH_THROTTLED', 'even the right password waits');
});

test('refresh rotates; reusing a rotated refresh token revokes the family and disconnects its sockets on every node', async (t) => {
  const { c, tokens } = await registered(0);
  const elsewhere = await connect(1, tokens.accessToken);
  const first = await c.request('auth:refresh', { refreshToken: tokens.refreshToken });
  t.not(first.tokens.refreshToken, tokens.refreshToken);
  t.truthy(await c.request('users:me', {}));

  const revoked = [elsewhere, c].map((s) => new Promise<string>((resolve) => s.socket.once('disconnect', (reason) => resolve(reason))));
  const attacker = await connect(1);
  t.is(await codeOf(attacker.request('auth:refresh', { refreshToken: tokens.refreshToken })), 'AUTH_REFRESH_REUSED');
  t.deepEqual(await Promise.all(revoked), ['io server disconnect', 'io server disconnect'], 'both nodes dropped the session’s sockets');
  const later = await connect(0);
  t.is(
    await codeOf(later.request('auth:refresh', { refreshToken: first.tokens.refreshToken })),
    'AUTH_REFRESH_INVALID',
    'the newest token of the family is dead too',
  );
});

test('log out everywhere disconnects the user’s other sockets at once, across nodes', async (t) => {
  const { c, tokens, userId } = await registered(0);
  const second = await connect(1);
  const login2 = await second.request('auth:login', {
    identifier: userId === '' ? '' : (await c.request('users:me', {})).profile.username,
    password: PASSWORD,
  });
  const onOther = await connect(1, login2.tokens.accessToken);
  const gone = [second, onOther].map((s) => new Promise<string>((resolve) => s.socket.once('disconnect', (r) => resolve(r))));
  const res = await c.request('auth:logoutAll', {});
  t.true(res.revokedSessions >= 2);
  t.deepEqual(await Promise.all(gone), ['io server disconnect', 'io server disconnect']);
  t.true(c.socket.connected, 'the calling socket stays connected, signed out');
  t.is(await codeOf(c.request('users:me', {})), 'AUTH_REQUIRED');
  const reconnect = checkedClient(nodes[0]!.url, { token: tokens.accessToken, socket: { reconnection: false } });
  clients.push(reconnect);
  t.is((await t.throwsAsync<FlockRequestError>(reconnect.connected())).code, 'AUTH_SESSION_REVOKED');
});

test('every protected event refuses a socket without a session, and admin events refuse other roles', async (t) => {
  const anonymous = await connect(0);
  const { c: user } = await registered(1);
  for (const channel of channels) {
    for (const [name, def] of Object.entries<EventDef>(channel.events)) {
      const event = `${channel.name}:${name}`;
      if ('public' in def.access) continue;
      const ack = (await untyped(anonymous).timeout(5_000).emitWithAck(event, {})) as { ok: boolean; error?: { code: string } };
      t.is(ack.error?.code, 'AUTH_REQUIRED', event);
      if (!def.access.roles.includes('user')) {
        const byUser = (await untyped(user).timeout(5_000).emitWithAck(event, {})) as { ok: boolean; error?: { code: string } };
        t.is(byUser.error?.code, 'AUTH_FORBIDDEN', event);
      }
    }
  }
});

test('an admin changes roles; removing a role revokes the user’s sessions at once', async (t) => {
  const admin = await registered(0);
  const mongo = await MongoClient.connect(requireEnv('MONGO_URL'));
  t.teardown(() => mongo.close());
  // Bootstrap: the first admin is made in the database (there is no one to grant it).
  await mongo
    .db(dbName)
    .collection('accounts')
    .updateOne({ _id: admin.userId as never }, { $set: { roles: ['user', 'admin'] } });
  const adminSession = await admin.c.request('auth:refresh', { refreshToken: admin.tokens.refreshToken });
  t.deepEqual([...adminSession.roles].sort(), ['admin', 'user']);

  const target = await registered(1);
  const promoted = await admin.c.request('users:setRoles', { userId: target.userId, roles: ['user', 'moderator'] });
  t.deepEqual([...promoted.roles].sort(), ['moderator', 'user']);
  const gone = new Promise<string>((resolve) => target.c.socket.once('disconnect', (r) => resolve(r)));
  await admin.c.request('users:setRoles', { userId: target.userId, roles: ['user'] });
  t.is(await gone, 'io server disconnect');
  t.is(await codeOf(admin.c.request('users:setRoles', { userId: 'u_doesnotexist', roles: ['user'] })), 'USER_NOT_FOUND');
});

test('an expired token is announced; the socket refreshes in place without reconnecting', async (t) => {
  const { c, tokens } = await registered(1);
  const socketId = c.socket.id;
  const expired = await new Promise<{ expiredAt: number }>((resolve) => c.on('auth:expired', resolve));
  t.true(expired.expiredAt <= Date.now());
  t.is(await codeOf(c.request('users:me', {})), 'AUTH_TOKEN_EXPIRED');
  await c.request('auth:refresh', { refreshToken: tokens.refreshToken });
  t.truthy(await c.request('users:me', {}));
  t.is(c.socket.id, socketId, 'same connection');
});

test('resume after reconnecting to the other node returns exactly the missed events, in order', async (t) => {
  const { c, username, tokens } = await registered(0);
  const live: { id: string; type: string }[] = [];
  c.on('stream:event', (e) => live.push(e));
  const device2 = await connect(1);
  await device2.request('auth:login', { identifier: username, password: PASSWORD });
  t.true(await eventually(async () => live.length === 1));
  const lastId = live[0]!.id;
  c.close();

  for (let i = 0; i < 3; i++) await device2.request('auth:login', { identifier: username, password: PASSWORD });
  const back = await connect(1, tokens.accessToken);
  const missed = await back.request('stream:resume', { lastId });
  t.is(missed.kind, 'events');
  if (missed.kind !== 'events') return;
  t.is(missed.events.length, 3);
  t.true(missed.events.every((e) => e.type === 'auth:signedIn'));
  t.is(missed.events[0]!.prev, lastId);
  t.is(missed.head, missed.events[2]!.id);
  const none = await back.request('stream:resume', { lastId: missed.events[2]!.id });
  t.deepEqual(none.kind === 'events' ? none.events : ['resync'], []);
});

test('presence: a watcher on one node sees a user go online and offline on the other', async (t) => {
  const watcher = await registered(0);
  const watched = await registered(1);
  watched.c.close();
  const updates: { userId: string; online: boolean; lastSeen: number | null }[] = [];
  watcher.c.on('presence:update', (u) => updates.push(u));
  const { statuses } = await watcher.c.request('presence:watch', { userIds: [watched.userId] });
  t.true(await eventually(async () => (await watcher.c.request('presence:watch', { userIds: [watched.userId] })).statuses[0]!.online === false));
  t.is(statuses.length, 1);
  const back = await connect(1, watched.tokens.accessToken);
  t.true(await eventually(async () => updates.some((u) => u.userId === watched.userId && u.online)));
  back.close();
  t.true(await eventually(async () => updates.some((u) => u.userId === watched.userId && !u.online && u.lastSeen !== null)));
});

test('profiles: update your own with validation, read another user’s public profile from the other node', async (t) => {
  const alice = await registered(0);
  const bob = await registered(1);
  const updated = await alice.c.request('users:updateProfile', { displayName: 'Alice A.', bio: 'hello' });
  t.like(updated, { userId: alice.userId, displayName: 'Alice A.', bio: 'hello' });
  t.is(await codeOf(alice.c.request('users:updateProfile', { displayName: '' })), 'REQUEST_INVALID');
  t.is(await codeOf(alice.c.request('users:updateProfile', { bio: 'x'.repeat(301) })), 'REQUEST_INVALID');
  t.is(await codeOf(alice.c.request('users:updateProfile', {})), 'REQUEST_INVALID');
  t.is(await codeOf(alice.c.request('users:updateProfile', { roles: ['admin'] } as never)), 'REQUEST_INVALID', 'no mass assignment');
  const seen = await bob.c.request('users:get', { userId: alice.userId });
  t.deepEqual(seen, updated);
  t.false('email' in seen, 'public profiles carry no email');
  t.is(await codeOf(bob.c.request('users:get', { userId: 'u_nobodyhere' })), 'USER_NOT_FOUND');
});
