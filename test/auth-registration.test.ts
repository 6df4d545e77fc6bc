// Registration through its per-IP budget, against the suite's real MongoDB and Redis.
import test from 'ava';
import type { Connection } from 'mongoose';
import { randomBytes } from 'node:crypto';
import { createAccountService, type AccountService } from '../auth/accounts.ts';
import { createRegistrationService, type RegistrationSettings } from '../auth/registration.ts';
import { FlockError } from '../kernel/errors.ts';
import { accountModel } from '../models/account.ts';
import { testServices } from './helpers/services.ts';

const services = testServices('auth_registration');
let connection: Connection;
let accounts: AccountService;

test.before(async () => {
  connection = await services.mongo();
  accounts = createAccountService({ connection });
  await accounts.init();
});
test.after.always(async () => {
  await services.cleanup();
});

/** A registration service with its own budget key space, since tests run concurrently. */
const registrations = (settings: Partial<Omit<RegistrationSettings, 'prefix'>> = {}) =>
  createRegistrationService({ accounts, redis: services.redis(), settings: { ...settings, prefix: `${services.prefix}:${randomBytes(3).toString('hex')}` } });
const codeOf = async (p: Promise<unknown>): Promise<string> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return err instanceof FlockError ? err.code : `no FlockError: ${String(err)}`;
};
const fresh = () => `r${randomBytes(5).toString('hex')}`;
const PASSWORD = 'registration password 7';

test('registrations from one IP stop at the limit with AUTH_THROTTLED, taken identities and successes alike; another IP is unaffected', async (t) => {
  const register = registrations({ ipLimit: 3 });
  const taken = fresh();
  await register.register({ username: taken, email: `${taken}@example.com`, password: PASSWORD, ip: '203.0.113.70' });
  t.is(await codeOf(register.register({ username: fresh(), email: `${taken}@example.com`, password: PASSWORD, ip: '203.0.113.70' })), 'AUTH_IDENTITY_TAKEN');
  t.is(await codeOf(register.register({ username: taken, email: `${fresh()}@example.com`, password: PASSWORD, ip: '203.0.113.70' })), 'AUTH_IDENTITY_TAKEN');
  // The fourth probe of an email from this IP gets no answer about it.
  const probe = fresh();
  const refused = register.register({ username: fresh(), email: `${probe}@example.com`, password: PASSWORD, ip: '203.0.113.70' });
  const err = await refused.then(
    () => undefined,
    (e: unknown) => e,
  );
  t.true(err instanceof FlockError && err.code === 'AUTH_THROTTLED' && typeof err.details?.retryAfterMs === 'number', String(err));
  t.is(await accountModel(connection).countDocuments({ email: `${probe}@example.com` }), 0, 'refused before anything was written');
  const other = fresh();
  t.truthy(await register.register({ username: other, email: `${other}@example.com`, password: PASSWORD, ip: '198.51.100.70' }));
});

test('parallel registrations from one IP never exceed the limit', async (t) => {
  const register = registrations({ ipLimit: 4 });
  const codes = await Promise.all(
    Array.from({ length: 20 }, () => {
      const name = fresh();
      return register.register({ username: name, email: `${name}@example.com`, password: PASSWORD, ip: '2001:db8:70::1' }).then(
        () => 'ok',
        (e: unknown) => (e instanceof FlockError ? e.code : String(e)),
      );
    }),
  );
  t.is(codes.filter((c) => c === 'ok').length, 4);
  t.is(codes.filter((c) => c === 'AUTH_THROTTLED').length, 16);
});

test('malformed requests and weak passwords are refused without spending the budget', async (t) => {
  const register = registrations({ ipLimit: 1 });
  t.is(await codeOf(register.register({ username: 'x', email: 'nope', password: PASSWORD, ip: '203.0.113.71' })), 'REQUEST_INVALID');
  t.is(await codeOf(register.register({ username: fresh(), email: `${fresh()}@example.com`, password: 'short', ip: '203.0.113.71' })), 'AUTH_WEAK_PASSWORD');
  const name = fresh();
  t.is((await register.register({ username: name, email: `${name}@example.com`, password: PASSWORD, ip: '203.0.113.71' })).username, name);
});
