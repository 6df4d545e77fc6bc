// Password sign-in (accounts + throttle) against the suite's real MongoDB and Redis.
import { hash } from '@node-rs/argon2';
import test from 'ava';
import { type Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import { randomBytes } from 'node:crypto';
import { accountModel } from '../models/account.ts';
import { createAccountService, type AccountService } from '../auth/accounts.ts';
import { createLoginService, type LoginService } from '../auth/login.ts';
import { PASSWORD_HASH_PARAMS, needsRehash } from '../auth/passwords.ts';
import { createLoginThrottle, type ThrottleSettings } from '../auth/throttle.ts';
import { FlockError } from '../kernel/errors.ts';
import '../kernel/mongo.ts';
import { testServices } from './helpers/services.ts';

const services = testServices('auth_login');
const { prefix } = services;
let connection: Connection;
let redis: Redis;
let accounts: AccountService;

test.before(async () => {
  connection = await services.mongo();
  redis = services.redis();
  accounts = createAccountService({ connection });
  await accounts.init();
});
test.after.always(async () => {
  await services.cleanup();
});

/** A login service with its own throttle key space, since tests run concurrently. */
const loginService = (settings: Partial<ThrottleSettings> = {}): LoginService =>
  createLoginService({ accounts, throttle: createLoginThrottle({ redis, settings: { ...settings, prefix: `${prefix}:${randomBytes(3).toString('hex')}` } }) });

let n = 0;
const PASSWORD = 'sign in password 1';
const newAccount = async (stem: string) => {
  n += 1;
  return accounts.register({ username: `${stem}${n}`, email: `${stem}${n}@example.com`, password: PASSWORD });
};
const errorOf = async (p: Promise<unknown>): Promise<FlockError> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof FlockError)) throw new Error(`expected a FlockError, got ${String(err)}`);
  return err;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the right password signs in by username (any case) or email', async (t) => {
  const login = loginService();
  const account = await newAccount('signin');
  t.is((await login.authenticate({ identifier: account.username.toUpperCase(), password: PASSWORD, ip: '203.0.113.10' })).id, account.id);
  const byEmail = await login.authenticate({ identifier: account.email!, password: PASSWORD, ip: '203.0.113.10' });
  t.is(byEmail.id, account.id);
  t.false('passwordHash' in byEmail);
});

test('a wrong password and an unknown user get the same AUTH_INVALID_CREDENTIALS', async (t) => {
  const login = loginService();
  const account = await newAccount('wrongpw');
  const wrong = await errorOf(login.authenticate({ identifier: account.username, password: 'not the password 1', ip: '203.0.113.11' }));
  const unknown = await errorOf(login.authenticate({ identifier: 'no_such_user', password: PASSWORD, ip: '203.0.113.11' }));
  const unknownEmail = await errorOf(login.authenticate({ identifier: 'nobody@example.com', password: PASSWORD, ip: '203.0.113.11' }));
  for (const err of [wrong, unknown, unknownEmail]) {
    t.is(err.code, 'AUTH_INVALID_CREDENTIALS');
    t.is(err.message, wrong.message);
    t.is(err.details, undefined);
  }
});

// Serial: ava runs serial tests before the others, so no other hashing in this process skews the clock.
test.serial('an unknown user costs a hash verification like a wrong password does', async (t) => {
  const login = loginService({ pairLimit: 100, ipLimit: 100 });
  const account = await newAccount('timing');
  const time = async (identifier: string) => {
    const started = performance.now();
    await login.authenticate({ identifier, password: 'not the password 1', ip: '203.0.113.12' }).catch(() => {});
    return performance.now() - started;
  };
  await time(account.username); // warm-up: the dummy hash is made once per service
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const wrong: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 7; i++) {
    wrong.push(await time(account.username));
    unknown.push(await time(`ghost_${i}`));
  }
  t.true(median(unknown) > median(wrong) * 0.5, `unknown ${median(unknown).toFixed(1)} ms vs wrong ${median(wrong).toFixed(1)} ms`);
});

test('50 parallel wrong passwords for one account from one IP get exactly 5 verified; the rest are AUTH_THROTTLED unverified', async (t) => {
  const login = loginService({ pairLimit: 5 });
  const account = await newAccount('parallel');
  const codes = await Promise.all(
    Array.from({ length: 50 }, (_, i) => errorOf(login.authenticate({ identifier: account.username, password: `parallel guess ${i}`, ip: '198.51.100.30' }))),
  );
  // AUTH_INVALID_CREDENTIALS is only ever answered after a hash verification.
  t.is(codes.filter((e) => e.code === 'AUTH_INVALID_CREDENTIALS').length, 5);
  t.is(codes.filter((e) => e.code === 'AUTH_THROTTLED').length, 45);
});

test('50 parallel wrong passwords from 50 IPs get no more verifications than the account ceiling', async (t) => {
  const login = loginService({ accountLimit: 5 });
  const account = await newAccount('botnet');
  const codes = await Promise.all(
    Array.from({ length: 50 }, (_, i) => errorOf(login.authenticate({ identifier: account.username, password: `botnet guess ${i}`, ip: `192.0.2.${i + 1}` }))),
  );
  t.is(codes.filter((e) => e.code === 'AUTH_INVALID_CREDENTIALS').length, 5);
  t.is(codes.filter((e) => e.code === 'AUTH_THROTTLED').length, 45);
});

test('5 failures lock the account from that IP only: the owner signs in from another; the lock lifts after the window', async (t) => {
  const login = loginService({ pairLimit: 5, windowMs: 1_500 });
  const victim = await newAccount('victim');
  for (let i = 0; i < 5; i++) {
    t.is(
      (await errorOf(login.authenticate({ identifier: victim.username, password: `guess number ${i}`, ip: '198.51.100.20' }))).code,
      'AUTH_INVALID_CREDENTIALS',
    );
  }
  const throttled = await errorOf(login.authenticate({ identifier: victim.username, password: PASSWORD, ip: '198.51.100.20' }));
  t.is(throttled.code, 'AUTH_THROTTLED', 'even the right password, from the guessing IP');
  const retryAfterMs = throttled.details?.retryAfterMs as number;
  t.true(retryAfterMs > 0 && retryAfterMs <= 1_500, String(retryAfterMs));
  t.is((await errorOf(login.authenticate({ identifier: victim.email!, password: PASSWORD, ip: '198.51.100.20' }))).code, 'AUTH_THROTTLED', 'by email too');
  t.is((await login.authenticate({ identifier: victim.username, password: PASSWORD, ip: '198.51.100.21' })).id, victim.id, 'from another IP');
  await sleep(retryAfterMs + 100);
  t.is((await login.authenticate({ identifier: victim.username, password: PASSWORD, ip: '198.51.100.20' })).id, victim.id);
});

test('guesses from many IPs reach the account ceiling, which an IP the owner signed in from does not meet', async (t) => {
  const login = loginService({ pairLimit: 5, accountLimit: 5 });
  const owner = await newAccount('owner');
  await login.authenticate({ identifier: owner.username, password: PASSWORD, ip: '198.51.100.40' });
  for (let i = 0; i < 5; i++) await errorOf(login.authenticate({ identifier: owner.username, password: `spread guess ${i}`, ip: `203.0.113.${40 + i}` }));
  t.is((await errorOf(login.authenticate({ identifier: owner.username, password: PASSWORD, ip: '203.0.113.99' }))).code, 'AUTH_THROTTLED', 'a new IP waits');
  t.is((await login.authenticate({ identifier: owner.email!, password: PASSWORD, ip: '198.51.100.40' })).id, owner.id, 'the known IP signs in');
});

test('attempts refused while locked are not counted, so they do not prolong the lock', async (t) => {
  const login = loginService({ pairLimit: 2, windowMs: 1_500 });
  const account = await newAccount('locked');
  for (let i = 0; i < 2; i++) await errorOf(login.authenticate({ identifier: account.username, password: `bad guess ${i}`, ip: '198.51.100.23' }));
  const lockedAt = performance.now();
  for (let i = 0; i < 3; i++) {
    t.is((await errorOf(login.authenticate({ identifier: account.username, password: `more guesses ${i}`, ip: '198.51.100.23' }))).code, 'AUTH_THROTTLED');
    await sleep(200);
  }
  await sleep(Math.max(0, 1_600 - (performance.now() - lockedAt)));
  t.is((await login.authenticate({ identifier: account.username, password: PASSWORD, ip: '198.51.100.23' })).id, account.id);
});

test('unknown identifiers are throttled the same way as accounts', async (t) => {
  const login = loginService({ pairLimit: 3 });
  for (let i = 0; i < 3; i++) await errorOf(login.authenticate({ identifier: 'phantom_user', password: `guess ${i} x`, ip: '198.51.100.24' }));
  t.is((await errorOf(login.authenticate({ identifier: 'phantom_user', password: 'guess 4 x', ip: '198.51.100.24' }))).code, 'AUTH_THROTTLED');
});

test('a successful sign-in clears the failures of its IP for the account', async (t) => {
  const login = loginService({ pairLimit: 3 });
  const account = await newAccount('recover');
  for (let i = 0; i < 2; i++) await errorOf(login.authenticate({ identifier: account.username, password: `typo ${i} pass`, ip: '198.51.100.26' }));
  await login.authenticate({ identifier: account.username, password: PASSWORD, ip: '198.51.100.26' });
  for (let i = 0; i < 2; i++) await errorOf(login.authenticate({ identifier: account.username, password: `typo ${i} again`, ip: '198.51.100.26' }));
  t.is((await login.authenticate({ identifier: account.username, password: PASSWORD, ip: '198.51.100.26' })).id, account.id);
});

test('an account without a password (OAuth only) cannot sign in with one', async (t) => {
  const login = loginService();
  const account = await accounts.createOAuthAccount({
    provider: 'google',
    subject: 'g-nopw',
    email: 'nopw@example.com',
    emailVerified: true,
    suggestedUsername: 'nopw',
  });
  t.is((await errorOf(login.authenticate({ identifier: account.username, password: '', ip: '198.51.100.27' }))).code, 'AUTH_INVALID_CREDENTIALS');
  t.is((await errorOf(login.authenticate({ identifier: 'nopw@example.com', password: PASSWORD, ip: '198.51.100.27' }))).code, 'AUTH_INVALID_CREDENTIALS');
});

test('a hash made with older parameters is upgraded at the next successful sign-in', async (t) => {
  const login = loginService();
  const account = await newAccount('rehash');
  const model = accountModel(connection);
  await model.updateOne({ _id: account.id }, { $set: { passwordHash: await hash(PASSWORD, { ...PASSWORD_HASH_PARAMS, timeCost: 1, memoryCost: 8192 }) } });
  await login.authenticate({ identifier: account.username, password: PASSWORD, ip: '198.51.100.28' });
  const stored = (await model.findById(account.id).lean())!.passwordHash!;
  t.false(needsRehash(stored));
  t.is((await login.authenticate({ identifier: account.username, password: PASSWORD, ip: '198.51.100.28' })).id, account.id);
});

test('malformed input is REQUEST_INVALID', async (t) => {
  const login = loginService();
  t.is((await errorOf(login.authenticate({ identifier: 'x', password: 'y' } as never))).code, 'REQUEST_INVALID');
  t.is((await errorOf(login.authenticate({ identifier: { $ne: '' }, password: 'y', ip: '1.2.3.4' } as never))).code, 'REQUEST_INVALID');
});
