// Re-authentication before sensitive changes (auth/recent-auth.ts), against
// the suite's real MongoDB and Redis: a recent sign-in passes, an old one
// needs the password, and password attempts go through the sign-in throttle.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createAccountService, type AccountService } from '../auth/accounts.ts';
import { createLoginService } from '../auth/login.ts';
import { createRecentAuth, type RecentAuth } from '../auth/recent-auth.ts';
import type { Session } from '../auth/session.ts';
import { createLoginThrottle } from '../auth/throttle.ts';
import { FlockError } from '../kernel/errors.ts';
import { testServices } from './helpers/services.ts';

const services = testServices('auth_recent');
let accounts: AccountService;
let recentAuth: RecentAuth;
const PASSWORD = 'recent auth password 1';

test.before(async () => {
  accounts = createAccountService({ connection: await services.mongo() });
  await accounts.init();
  const throttle = createLoginThrottle({ redis: services.redis(), settings: { prefix: services.prefix, pairLimit: 3 } });
  recentAuth = createRecentAuth({ accounts, login: createLoginService({ accounts, throttle }), maxAgeSeconds: 300 });
});
test.after.always(async () => {
  await services.cleanup();
});

const errorOf = async (p: Promise<unknown>): Promise<FlockError | 'ok'> =>
  p.then(
    () => 'ok' as const,
    (e: unknown) => {
      if (e instanceof FlockError) return e;
      throw e;
    },
  );
const newAccount = async () => {
  const name = `ra${randomBytes(4).toString('hex')}`;
  return accounts.register({ username: name, email: `${name}@example.com`, password: PASSWORD });
};
const session = (userId: string, authTime: number | undefined): Session => ({
  userId,
  sessionId: 's_recentauthtest0000000',
  roles: ['user'],
  expiresAt: Date.now() + 60_000,
  ...(authTime !== undefined && { authTime }),
});

test('a sign-in within the max age passes without a password', async (t) => {
  const account = await newAccount();
  t.is(await errorOf(recentAuth.require(session(account.id, Date.now() - 299_000), { ip: '203.0.113.80' })), 'ok');
});

test('an older sign-in, an unknown one or a stolen token alone is AUTH_REAUTH_REQUIRED, saying whether a password would do', async (t) => {
  const account = await newAccount();
  for (const authTime of [Date.now() - 301_000, 0, undefined]) {
    const err = await errorOf(recentAuth.require(session(account.id, authTime), { ip: '203.0.113.81' }));
    t.true(err instanceof FlockError && err.code === 'AUTH_REAUTH_REQUIRED', String(err));
    t.deepEqual(err instanceof FlockError ? err.details : undefined, { maxAgeSeconds: 300, password: true });
  }
  const oauthOnly = await accounts.createOAuthAccount({
    provider: 'google',
    subject: `g-${randomBytes(4).toString('hex')}`,
    emailVerified: false,
    suggestedUsername: 'oauth only',
  });
  const err = await errorOf(recentAuth.require(session(oauthOnly.id, 0), { ip: '203.0.113.81' }));
  t.deepEqual(err instanceof FlockError ? err.details : undefined, { maxAgeSeconds: 300, password: false }, 'sign in with the provider again');
});

test('the password makes an old sign-in enough; wrong passwords are sign-in failures, throttled', async (t) => {
  const account = await newAccount();
  const stale = session(account.id, Date.now() - 3_600_000);
  t.is(await errorOf(recentAuth.require(stale, { password: PASSWORD, ip: '203.0.113.82' })), 'ok');
  const codes: string[] = [];
  for (let i = 0; i < 4; i++) {
    const err = await errorOf(recentAuth.require(stale, { password: `thief guess ${i}`, ip: '203.0.113.83' }));
    codes.push(err === 'ok' ? 'ok' : err.code);
  }
  t.deepEqual(codes, ['AUTH_INVALID_CREDENTIALS', 'AUTH_INVALID_CREDENTIALS', 'AUTH_INVALID_CREDENTIALS', 'AUTH_THROTTLED']);
});
