// Cross-node revocation of access tokens against the suite's real Redis and
// MongoDB: each "node" has its own command and subscriber connections. Tests
// that flush Redis do it on a private redis-server.
import test from 'ava';
import { Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import { randomBytes } from 'node:crypto';
import { createAccountService } from '../auth/accounts.ts';
import { createRevocations, LOADED_TTL_SECONDS, type Revocations } from '../auth/revocations.ts';
import { createTokenService } from '../auth/tokens.ts';
import { FlockError } from '../kernel/errors.ts';
import { revokedSessionModel } from '../models/revoked-session.ts';
import { privateRedis, type PrivateRedis } from './helpers/private-redis.ts';
import { testServices } from './helpers/services.ts';

const services = testServices('auth_revocations');
const { prefix } = services;
const connect = () => services.redis();
const raw = connect();
let connection: Connection;
let flushable: PrivateRedis;
const privateClients: Redis[] = [];

test.before(async () => {
  connection = await services.mongo();
  flushable = await privateRedis();
});
test.after.always(async () => {
  await Promise.allSettled(privateClients.map((c) => c.quit()));
  await flushable?.stop();
  await services.cleanup();
});

/** One node's revocations, in its own key space unless `space` is shared. */
const node = (space: string): Revocations =>
  createRevocations({ redis: connect(), subscriber: connect(), connection, settings: { prefix: `${prefix}:${space}` } });
/** A client of the private Redis, which tests may flush. */
const flushableClient = () => {
  const client = new Redis(flushable.url);
  privateClients.push(client);
  return client;
};
const sid = () => `s_${randomBytes(8).toString('base64url')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves once `done()` holds; rejects after timeoutMs so a lost message fails the test. */
const eventually = async (done: () => boolean, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await sleep(20);
  }
};

test('a revoked session is marked for the given TTL; others are not', async (t) => {
  const space = 'marks';
  const revocations = node(space);
  const [gone, alive] = [sid(), sid()];
  await revocations.revoke([gone], 900);
  t.true(await revocations.isRevoked(gone));
  t.false(await revocations.isRevoked(alive));
  const ttl = await raw.ttl(`${prefix}:${space}:revoked:${gone}`);
  t.true(ttl > 895 && ttl <= 900, String(ttl));
  t.true(await node(space).isRevoked(gone), 'seen by another node');
});

test('a revocation mark expires with its TTL', async (t) => {
  const revocations = node('expiry');
  const gone = sid();
  await revocations.revoke([gone], 1);
  t.true(await revocations.isRevoked(gone));
  const expired = async () => !(await revocations.isRevoked(gone));
  const deadline = Date.now() + 5_000;
  while (!(await expired()) && Date.now() < deadline) await sleep(50);
  t.true(await expired(), 'gone within a few seconds of its one-second TTL');
});

test('a revocation published on one Redis connection reaches a subscriber on another', async (t) => {
  const space = 'pubsub';
  const [a, b] = [node(space), node(space)];
  const received: string[][] = [];
  await b.subscribe((ids) => received.push(ids));
  const ids = [sid(), sid()];
  await a.revoke(ids, 60);
  await eventually(() => received.length === 1, 2_000);
  t.deepEqual(received, [ids]);
});

test('subscribe right after the connection is created waits for ready and still receives', async (t) => {
  const space = 'early';
  const subscriber = connect();
  t.not(subscriber.status, 'ready');
  const listener = createRevocations({ redis: connect(), subscriber, connection, settings: { prefix: `${prefix}:${space}` } });
  const received: string[][] = [];
  await listener.subscribe((ids) => received.push(ids));
  const id = sid();
  await node(space).revoke([id], 60);
  await eventually(() => received.length === 1, 2_000);
  t.deepEqual(received, [[id]]);
});

test('malformed messages on the channel are ignored; listeners of other prefixes hear nothing', async (t) => {
  const space = 'malformed';
  const listener = node(space);
  const stranger = node('elsewhere');
  const received: string[][] = [];
  const strangerReceived: string[][] = [];
  await listener.subscribe((ids) => received.push(ids));
  await stranger.subscribe((ids) => strangerReceived.push(ids));
  const channel = `${prefix}:${space}:auth:revocations`;
  for (const junk of ['not json', '{"sessionIds":"s_1"}', '{"sessionIds":[]}', '{"other":1}']) await raw.publish(channel, junk);
  const id = sid();
  await node(space).revoke([id], 60);
  await eventually(() => received.length === 1, 2_000); // the junk was published first, on the same channel
  t.deepEqual(received, [[id]]);
  const marker = sid();
  await node('elsewhere').revoke([marker], 60); // the stranger hears its own prefix, after everything above
  await eventually(() => strangerReceived.length === 1, 2_000);
  t.deepEqual(strangerReceived, [[marker]]);
});

test('a listener can be removed, and one failing listener does not stop the others', async (t) => {
  const space = 'listeners';
  const revocations = node(space);
  const kept: string[][] = [];
  const removed: string[][] = [];
  await revocations.subscribe(() => {
    throw new Error('listener bug');
  });
  await revocations.subscribe((ids) => kept.push(ids));
  const unsubscribe = await revocations.subscribe((ids) => removed.push(ids));
  await unsubscribe();
  await node(space).revoke([sid()], 60);
  await eventually(() => kept.length === 1, 2_000);
  t.deepEqual(removed, []);
});

test('revoking nothing publishes nothing', async (t) => {
  const space = 'empty';
  const received: string[][] = [];
  await node(space).subscribe((ids) => received.push(ids));
  await node(space).revoke([], 60);
  const marker = sid();
  await node(space).revoke([marker], 60); // published after: anything from the empty revoke would come first
  await eventually(() => received.length === 1, 2_000);
  t.deepEqual(received, [[marker]]);
});

// Both FLUSHALL tests empty the same private Redis: run one at a time, or one flushes under the other's checks.
test.serial('a revocation survives a Redis FLUSHALL: it is loaded back from MongoDB on the next check, on any node', async (t) => {
  const space = `flush-${randomBytes(3).toString('hex')}`;
  const onFlushable = () => createRevocations({ redis: flushableClient(), connection, settings: { prefix: `${prefix}:${space}` } });
  const [a, b] = [onFlushable(), onFlushable()];
  await a.init();
  const [gone, alive] = [sid(), sid()];
  await a.revoke([gone], 900);
  t.is((await revokedSessionModel(connection).findById(gone).lean())?._id, gone, 'recorded in MongoDB');
  await flushableClient().flushall();
  t.true(await b.isRevoked(gone), 'another node, after the flush');
  t.true(await a.isRevoked(gone), 'the revoking node, after the flush');
  t.false(await b.isRevoked(alive));
  const ttl = await flushableClient().ttl(`${prefix}:${space}:revoked:${gone}`);
  t.true(ttl > 890 && ttl <= 900, `the mark is back with the time it had left: ${ttl}`);
  const loaded = await flushableClient().ttl(`${prefix}:${space}:revoked:loaded`);
  t.true(loaded > 0 && loaded <= LOADED_TTL_SECONDS, `the marks are trusted complete for a while: ${loaded}`);
});

test.serial('after a Redis FLUSHALL, an access token of a revoked session is still AUTH_SESSION_REVOKED', async (t) => {
  const space = `flush-token-${randomBytes(3).toString('hex')}`;
  const accounts = createAccountService({ connection });
  await accounts.init();
  const secret = randomBytes(32);
  /** A node's token service, checking revocations on the private Redis. */
  const tokensNode = () =>
    createTokenService({
      connection,
      settings: { secret },
      lookupRoles: async () => ['user'],
      revocations: createRevocations({ redis: flushableClient(), connection, settings: { prefix: `${prefix}:${space}` } }),
    });
  const [a, b] = [tokensNode(), tokensNode()];
  const name = `rv${randomBytes(4).toString('hex')}`;
  const account = await accounts.register({ username: name, email: `${name}@example.com`, password: 'revocation password 1' });
  const session = await a.createSession(account.id, ['user']);
  const other = await a.createSession(account.id, ['user']);
  await a.revokeSession(session.sessionId);
  await flushableClient().flushall();
  const refused = await b.verifyAccessToken(session.accessToken).then(
    () => 'accepted',
    (err: unknown) => (err instanceof FlockError ? err.code : String(err)),
  );
  t.is(refused, 'AUTH_SESSION_REVOKED');
  t.is((await b.verifyAccessToken(other.accessToken)).sessionId, other.sessionId, 'a live session still works');
});
