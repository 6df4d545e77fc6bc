// Sign-in throttling against the suite's real Redis: several throttles on
// separate connections stand for several nodes sharing one limit.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createLoginThrottle, type LoginThrottle, type ThrottleSettings } from '../auth/throttle.ts';
import { FlockError } from '../kernel/errors.ts';
import { keysMatching, redisKeySpace } from './helpers/redis.ts';

const { prefix, connect, cleanup } = redisKeySpace();
const raw = connect();

test.after.always(cleanup);

/** A throttle with its own key space (tests run concurrently) and its own connection. */
const throttle = (settings: Partial<ThrottleSettings> = {}, space = randomBytes(3).toString('hex')) =>
  createLoginThrottle({ redis: connect(), settings: { prefix: `${prefix}:${space}`, ...settings } });
const retryAfter = async (p: Promise<void>): Promise<number | 'open'> => {
  try {
    await p;
    return 'open';
  } catch (err) {
    if (!(err instanceof FlockError) || err.code !== 'AUTH_THROTTLED') throw err;
    return err.details!.retryAfterMs as number;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fail = async (th: LoginThrottle, id: string, ip: string, times: number) => {
  for (let i = 0; i < times; i++) await th.recordFailure(id, ip);
};

test('an identifier is locked after its limit of failures, with the wait in details.retryAfterMs; others are not', async (t) => {
  const th = throttle({ accountLimit: 5, accountWindowMs: 60_000 });
  await fail(th, 'alice', '203.0.113.1', 4);
  t.is(await retryAfter(th.check('alice', '203.0.113.1')), 'open', 'four failures do not lock');
  await th.recordFailure('alice', '203.0.113.1');
  const wait = await retryAfter(th.check('alice', '203.0.113.1'));
  t.true(typeof wait === 'number' && wait > 55_000 && wait <= 60_000, String(wait));
  t.not(await retryAfter(th.check(' ALICE ', '198.51.100.7')), 'open', 'the identifier is locked from any IP, in any case');
  t.is(await retryAfter(th.check('bob', '198.51.100.7')), 'open', 'another account from another IP is unaffected');
});

test('a lock lifts once the failures leave the sliding window', async (t) => {
  const th = throttle({ accountLimit: 3, accountWindowMs: 400 });
  await fail(th, 'carol', '203.0.113.2', 3);
  const wait = await retryAfter(th.check('carol', '203.0.113.2'));
  t.true(typeof wait === 'number' && wait <= 400, String(wait));
  await sleep((wait as number) + 50);
  t.is(await retryAfter(th.check('carol', '203.0.113.2')), 'open');
});

test('the window slides: the lock lifts when the oldest counted failure ages out, not all of them', async (t) => {
  // Bounds come from measured times, so a slow machine moves them instead of failing the test.
  const windowMs = 2_000;
  const th = throttle({ accountLimit: 2, accountWindowMs: windowMs });
  await th.recordFailure('dave', '203.0.113.3');
  const firstRecorded = performance.now();
  await sleep(500);
  const secondStarted = performance.now();
  await th.recordFailure('dave', '203.0.113.3');
  const checkStarted = performance.now();
  const wait = await retryAfter(th.check('dave', '203.0.113.3'));
  const checkEnded = performance.now();
  const untilFirstLeaves = firstRecorded + windowMs - checkStarted; // at most this
  const untilSecondLeaves = secondStarted + windowMs - checkEnded; // at least this
  t.true(typeof wait === 'number' && wait <= untilFirstLeaves + 25 && wait < untilSecondLeaves, `wait ${wait} is until the first failure leaves the window`);
  await sleep((wait as number) + 50);
  t.is(await retryAfter(th.check('dave', '203.0.113.3')), 'open');
  await th.recordFailure('dave', '203.0.113.3');
  t.not(await retryAfter(th.check('dave', '203.0.113.3')), 'open', 'the second failure still counts');
});

test('an IP is locked after its limit of failures across identifiers; other IPs are not', async (t) => {
  const th = throttle({ ipLimit: 6, accountLimit: 100 });
  for (let i = 0; i < 6; i++) await th.recordFailure(`user${i}`, '192.0.2.50');
  t.not(await retryAfter(th.check('fresh_user', '192.0.2.50')), 'open');
  t.is(await retryAfter(th.check('fresh_user', '192.0.2.51')), 'open');
});

test('concurrent failures from several nodes count exactly', async (t) => {
  const space = randomBytes(3).toString('hex');
  const nodes = [throttle({ accountLimit: 30 }, space), throttle({ accountLimit: 30 }, space), throttle({ accountLimit: 30 }, space)];
  await Promise.all(Array.from({ length: 29 }, (_, i) => nodes[i % 3]!.recordFailure('erin', `203.0.113.${i}`)));
  t.is(await retryAfter(nodes[0]!.check('erin', '198.51.100.1')), 'open', '29 of 30');
  await nodes[1]!.recordFailure('erin', '203.0.113.99');
  t.not(await retryAfter(nodes[2]!.check('erin', '198.51.100.1')), 'open', '30 of 30');
});

test('success clears the identifier counter but not the IP counter', async (t) => {
  const th = throttle({ accountLimit: 3, ipLimit: 4 });
  await fail(th, 'frank', '203.0.113.4', 3);
  await th.recordSuccess('frank');
  t.is(await retryAfter(th.check('frank', '198.51.100.2')), 'open');
  await th.recordFailure('frank', '203.0.113.4');
  t.not(await retryAfter(th.check('someone', '203.0.113.4')), 'open', 'the IP has 4 failures');
});

test('every key has a TTL of one window and holds at most the limit', async (t) => {
  const space = randomBytes(3).toString('hex');
  const th = throttle({ accountLimit: 3, accountWindowMs: 20_000, ipLimit: 4, ipWindowMs: 30_000 }, space);
  await fail(th, 'grace', '203.0.113.5', 10);
  const keys = await keysMatching(raw, `${prefix}:${space}:*`);
  t.is(keys.length, 2);
  for (const key of keys) {
    const ttl = await raw.pttl(key);
    const isIp = key.includes(':ip:');
    t.true(ttl > 0 && ttl <= (isIp ? 30_000 : 20_000), `${key} ttl ${ttl}`);
    t.is(await raw.zcard(key), isIp ? 4 : 3);
  }
  t.false(
    keys.some((k) => k.includes('grace')),
    'identifiers are hashed, not stored',
  );
});

test('IPv6 addresses of one /64 share a counter; an IPv4-mapped address is its IPv4 address', async (t) => {
  const th = throttle({ ipLimit: 2, accountLimit: 100 });
  await th.recordFailure('a1', '2001:db8:1:2::1');
  await th.recordFailure('a2', '2001:0db8:0001:0002:ffff::9');
  t.not(await retryAfter(th.check('a3', '2001:db8:1:2:abcd::')), 'open');
  t.is(await retryAfter(th.check('a3', '2001:db8:1:3::1')), 'open', 'another /64');
  await th.recordFailure('b1', '::ffff:192.0.2.9');
  await th.recordFailure('b2', '192.0.2.9');
  t.not(await retryAfter(th.check('b3', '192.0.2.9')), 'open');
});

test('settings are validated', (t) => {
  t.throws(() => createLoginThrottle({ redis: raw, settings: { accountLimit: 0 } }));
});
