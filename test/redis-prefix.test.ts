// Every Redis key and channel a node writes lies under REDIS_KEY_PREFIX, so
// clusters sharing one Redis share nothing: sign-in and registration budgets,
// revocations, OAuth flows, actors, streams, presence, feeds, social events,
// rate limits, job notifications and the Socket.IO adapter. A node runs with
// a custom prefix against a private redis-server (empty before, so SCAN sees
// only what the node wrote) and does a little of everything.
import test from 'ava';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { FlockClient } from '../client/flock-client.ts';
import { assertEventsValid, checkedClient } from './helpers/clients.ts';
import { keysMatching } from './helpers/redis.ts';
import { eventually, startNodeProcess, type NodeProcess } from './helpers/node-process.ts';
import { privateRedis, type PrivateRedis } from './helpers/private-redis.ts';
import { codeOf } from './helpers/outcome.ts';

const prefix = `cluster-${randomBytes(3).toString('hex')}`;
let redis: PrivateRedis;
let inspect: Redis;
let node: NodeProcess;
const clients: FlockClient[] = [];

test.before(async () => {
  redis = await privateRedis();
  inspect = new Redis(redis.url);
  node = await startNodeProcess({
    env: {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: prefix,
      TRUST_PROXY: 'true',
      OAUTH_CONFIG: JSON.stringify({
        providers: { google: { clientId: 'prefix-test', clientSecret: 'prefix-test-secret', callbackUrl: 'http://127.0.0.1:1/auth/google/callback' } },
        allowedReturnTo: ['https://app.example.com/'],
        defaultReturnTo: 'https://app.example.com/',
      }),
    },
  });
});
test.after.always(async () => {
  clients.forEach((c) => c.close());
  await node?.stop();
  await inspect?.quit();
  await redis?.stop();
  assertEventsValid();
});

let ip = 1;
async function connect(token?: string): Promise<FlockClient> {
  const c = checkedClient(node.url, { ...(token && { token }), socket: { extraHeaders: { 'x-forwarded-for': `192.0.2.${ip++}` }, reconnection: false } });
  clients.push(c);
  await c.connected();
  return c;
}

test('every key and channel a node writes is under REDIS_KEY_PREFIX', async (t) => {
  const PASSWORD = 'prefix password 42';
  const names = [0, 1].map(() => `p${randomBytes(5).toString('hex')}`);
  const [author, reader] = await Promise.all(names.map(async (username) => ({ c: await connect(), username })));
  const registered = await Promise.all(
    [author!, reader!].map(({ c, username }) => c.request('auth:register', { username, email: `${username}@example.test`, password: PASSWORD })),
  );

  // Sign-in budgets, known IPs, the personal stream (auth:signedIn), refresh rotation.
  t.is(await codeOf(author!.c.request('auth:login', { identifier: author!.username, password: 'not the password 1' })), 'AUTH_INVALID_CREDENTIALS');
  const login = await author!.c.request('auth:login', { identifier: author!.username, password: PASSWORD });
  await author!.c.request('auth:refresh', { refreshToken: login.tokens.refreshToken });

  // The social graph, posts, trending, domain events, feed shards, live feeds and presence.
  await reader!.c.request('graph:follow', { userId: registered[0]!.userId });
  await reader!.c.request('feeds:watch', {});
  await reader!.c.request('presence:watch', { userIds: [registered[0]!.userId] });
  const post = await author!.c.request('posts:create', {
    text: `Hello #prefix${randomBytes(2).toString('hex')}`,
    idempotencyKey: `prefix-${randomBytes(6).toString('hex')}`,
  });
  t.true(
    await eventually(async () => (await reader!.c.request('feeds:home', { limit: 20 })).items.some((p) => p.postId === post.postId)),
    'the feeds consumer fanned the post out',
  );

  // A revocation, checked at a handshake (which loads the marks on this empty Redis).
  await author!.c.request('auth:logout', {});
  t.is(await codeOf(connect(login.tokens.accessToken)), 'AUTH_SESSION_REVOKED');

  // An OAuth flow state.
  const start = await fetch(`${node.url}/auth/google/start`, { redirect: 'manual' });
  t.is(start.status, 302);

  const keys = await keysMatching(inspect, '*');
  t.true(keys.length > 20, `the node wrote keys: ${keys.length}`);
  const outside = keys.filter((k) => !k.startsWith(`${prefix}:`));
  t.deepEqual(outside, [], `keys outside ${prefix}:`);
  for (const kind of ['auth:fail:', 'auth:known:', 'auth:register:', 'revoked:', 'oauth:state:', 'actors:', 'social:']) {
    t.true(
      keys.some((k) => k.startsWith(`${prefix}:${kind}`)),
      `a ${kind} key was written under the prefix`,
    );
  }
  const channels = await inspect.pubsub('CHANNELS', '*');
  t.true(Array.isArray(channels) && channels.length > 0);
  const outsideChannels = (channels as string[]).filter((c) => !c.startsWith(`${prefix}:`));
  t.deepEqual(outsideChannels, [], `channels outside ${prefix}:`);
  t.true((channels as string[]).includes(`${prefix}:jobs`), 'job notifications');
  t.true((channels as string[]).includes(`${prefix}:auth:revocations`), 'revocations');
});
