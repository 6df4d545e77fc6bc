// Sign-in throttling against the suite's real Redis: several throttles on
// separate connections stand for several nodes sharing one limit.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createLoginThrottle, type LoginThrottle, type Reservation, type ThrottleSettings } from '../auth/throttle.ts';
import { FlockError } from '../kernel/errors.ts';
import { keysMatching, redisKeySpace } from './helpers/redis.ts';

const { prefix, connect, cleanup } = redisKeySpace();
const raw = connect();

test.after.always(cleanup);

/** A throttle with its own key space (tests run concurrently) and its own connection. */
const throttle = (settings: Partial<ThrottleSettings> = {}, space = randomBytes(3).toString('hex')) =>
  createLoginThrottle({ redis: connect(), settings: { ...settings, prefix: `${prefix}:${space}` } });
/** 'open' with the reservation, or the wait AUTH_THROTTLED gave. */
const attempt = async (th: LoginThrottle, id: string, ip: string): Promise<{ open: true; reservation: Reservation } | { open: false; wait: number }> => {
  try {
    return { open: true, reservation: await th.reserve(id, ip) };
  } catch (err) {
    if (!(err instanceof FlockError) || err.code !== 'AUTH_THROTTLED') throw err;
    return { open: false, wait: err.details!.retryAfterMs as number };
  }
};
/** One more failed attempt: true if it was let through (and is now counted), else the wait. */
const isOpen = async (th: LoginThrottle, id: string, ip: string): Promise<boolean | number> => {
  const result = await attempt(th, id, ip);
  return result.open || result.wait;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `times` failed attempts (reservations never taken back); throws if one is refused. */
const fail = async (th: LoginThrottle, id: string, ip: string, times: number) => {
  for (let i = 0; i < times; i++) await th.reserve(id, ip);
};

test('a pair (account, IP) is locked after its limit, with the wait in details.retryAfterMs; the account from another IP is not', async (t) => {
  const th = throttle({ pairLimit: 5, windowMs: 60_000 });
  await fail(th, 'alice', '203.0.113.1', 4);
  t.true(await isOpen(th, 'alice', '203.0.113.1'), 'four failures do not refuse the fifth attempt');
  const wait = await isOpen(th, ' ALICE ', '203.0.113.1');
  t.true(typeof wait === 'number' && wait > 55_000 && wait <= 60_000, `locked, in any case: ${wait}`);
  t.true(await isOpen(th, 'alice', '198.51.100.7'), 'the same account from another IP is open: no lockout lever');
  t.true(await isOpen(th, 'bob', '203.0.113.1'), 'another account from the same IP is open');
});

test('the account ceiling stops guesses from many IPs, but not an IP that signed in to the account before', async (t) => {
  const th = throttle({ pairLimit: 5, accountLimit: 6, ipLimit: 100 });
  const home = await th.reserve('carla', '192.0.2.10');
  await home.succeeded();
  for (let i = 0; i < 6; i++) await fail(th, 'carla', `203.0.113.${100 + i}`, 1);
  t.true(typeof (await isOpen(th, 'carla', '203.0.113.200')) === 'number', 'a seventh unknown IP is refused');
  t.true(await isOpen(th, 'carla', '192.0.2.10'), 'the owner at home still gets through');
  t.true(await isOpen(th, 'carla', '192.0.2.10'));
});

test('a lock lifts once the failures leave the sliding window', async (t) => {
  const th = throttle({ pairLimit: 3, windowMs: 400 });
  await fail(th, 'carol', '203.0.113.2', 3);
  const wait = await isOpen(th, 'carol', '203.0.113.2');
  t.true(typeof wait === 'number' && wait <= 400, String(wait));
  await sleep((wait as number) + 50);
  t.true(await isOpen(th, 'carol', '203.0.113.2'));
});

test('the window slides: the lock lifts when the oldest counted failure ages out, not all of them', async (t) => {
  // Bounds come from measured times, so a slow machine moves them instead of failing the test.
  const windowMs = 2_000;
  const th = throttle({ pairLimit: 2, windowMs });
  await th.reserve('dave', '203.0.113.3');
  const firstRecorded = performance.now();
  await sleep(500);
  const secondStarted = performance.now();
  await th.reserve('dave', '203.0.113.3');
  const checkStarted = performance.now();
  const wait = await isOpen(th, 'dave', '203.0.113.3');
  const checkEnded = performance.now();
  const untilFirstLeaves = firstRecorded + windowMs - checkStarted; // at most this
  const untilSecondLeaves = secondStarted + windowMs - checkEnded; // at least this
  t.true(typeof wait === 'number' && wait <= untilFirstLeaves + 25 && wait < untilSecondLeaves, `wait ${wait} is until the first failure leaves the window`);
  await sleep((wait as number) + 50);
  t.true(await isOpen(th, 'dave', '203.0.113.3'), 'open: this reservation is the second failure in the window now');
  t.not(await isOpen(th, 'dave', '203.0.113.3'), true, 'the second failure still counts');
});

test('an IP is locked after its limit of failures across identifiers; other IPs are not', async (t) => {
  const th = throttle({ ipLimit: 6, pairLimit: 100, accountLimit: 100 });
  for (let i = 0; i < 6; i++) await th.reserve(`user${i}`, '192.0.2.50');
  t.not(await isOpen(th, 'fresh_user', '192.0.2.50'), true);
  t.true(await isOpen(th, 'fresh_user', '192.0.2.51'));
});

test('parallel reservations from several nodes never exceed the budget', async (t) => {
  const space = randomBytes(3).toString('hex');
  const nodes = [throttle({ pairLimit: 5 }, space), throttle({ pairLimit: 5 }, space), throttle({ pairLimit: 5 }, space)];
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => attempt(nodes[i % 3]!, 'erin', '203.0.113.9')));
  t.is(results.filter((r) => r.open).length, 5, 'exactly the limit of 50 parallel attempts is let through');
  const spread = await Promise.all(Array.from({ length: 50 }, (_, i) => attempt(nodes[i % 3]!, 'erin2', `198.51.100.${i}`)));
  t.is(spread.filter((r) => r.open).length, 50, 'one guess per IP is under every pair limit...');
  const ceiling = throttle({ accountLimit: 30 }, space);
  const capped = await Promise.all(Array.from({ length: 50 }, (_, i) => attempt(ceiling, 'erin3', `198.51.100.${i}`)));
  t.is(capped.filter((r) => r.open).length, 30, '...and the account ceiling caps them');
});

test('success takes its reservation back and clears the pair, but leaves the IP its other failures', async (t) => {
  const th = throttle({ pairLimit: 3, ipLimit: 5, accountLimit: 100 });
  await fail(th, 'frank', '203.0.113.4', 2);
  const right = await th.reserve('frank', '203.0.113.4');
  await right.succeeded();
  await fail(th, 'frank', '203.0.113.4', 2);
  t.true(await isOpen(th, 'frank', '203.0.113.4'), 'the pair was cleared (2 failures since), and the success is not among the IP failures (4)');
  t.not(await isOpen(th, 'someone', '203.0.113.4'), true, 'the IP keeps its 5 failures');
});

test('every key has a TTL and holds at most its limit', async (t) => {
  const space = randomBytes(3).toString('hex');
  const th = throttle({ pairLimit: 100, accountLimit: 3, ipLimit: 100, windowMs: 20_000 }, space);
  const results = await Promise.all(Array.from({ length: 10 }, () => attempt(th, 'grace', '203.0.113.5')));
  t.is(results.filter((r) => r.open).length, 3);
  const keys = await keysMatching(raw, `${prefix}:${space}:*`);
  t.is(keys.length, 3);
  for (const key of keys) {
    const ttl = await raw.pttl(key);
    t.true(ttl > 0 && ttl <= 20_000, `${key} ttl ${ttl}`);
    t.is(await raw.zcard(key), 3, `${key}: refused attempts are not recorded`);
  }
  t.false(
    keys.some((k) => k.includes('grace')),
    'identifiers are hashed, not stored',
  );
});

test('IPv6 addresses of one /64 share a counter; an IPv4-mapped address is its IPv4 address', async (t) => {
  const th = throttle({ ipLimit: 2, pairLimit: 100, accountLimit: 100 });
  await th.reserve('a1', '2001:db8:1:2::1');
  await th.reserve('a2', '2001:0db8:0001:0002:ffff::9');
  t.not(await isOpen(th, 'a3', '2001:db8:1:2:abcd::'), true);
  t.true(await isOpen(th, 'a3', '2001:db8:1:3::1'), 'another /64');
  await th.reserve('b1', '::ffff:192.0.2.9');
  await th.reserve('b2', '192.0.2.9');
  t.not(await isOpen(th, 'b3', '192.0.2.9'), true);
});

test('settings are validated', (t) => {
  t.throws(() => createLoginThrottle({ redis: raw, settings: { prefix, pairLimit: 0 } }));
});
