// Which account a provider identity signs in to (resolveAccount) and explicit
// linking (linkIdentity), against the suite's real MongoDB.
import test from 'ava';
import type { Connection } from 'mongoose';
import { randomBytes } from 'node:crypto';
import { createAccountService, type AccountService } from '../auth/accounts.ts';
import type { ProviderIdentity } from '../auth/oauth/provider.ts';
import { linkIdentity, resolveAccount } from '../auth/oauth/resolve-account.ts';
import { FlockError } from '../kernel/errors.ts';
import { testServices } from './helpers/services.ts';

const services = testServices('oauth_accounts');
let connection: Connection;
let otherNode: Connection;
let accounts: AccountService;
let accountsOnOtherNode: AccountService;

test.before(async () => {
  connection = await services.mongo();
  otherNode = await services.mongo();
  accounts = createAccountService({ connection });
  accountsOnOtherNode = createAccountService({ connection: otherNode });
  await accounts.init();
  await accountsOnOtherNode.init();
});
test.after.always(async () => {
  await services.cleanup();
});

const unique = () => randomBytes(5).toString('hex');
const identity = (overrides: Partial<ProviderIdentity> = {}): ProviderIdentity => ({
  provider: 'google',
  subject: `g-${unique()}`,
  email: null,
  emailVerified: false,
  suggestedUsername: `oa_${unique()}`,
  ...overrides,
});
const register = (tag = unique()) => accounts.register({ username: `pw_${tag}`, email: `pw_${tag}@example.com`, password: 'oauth accounts test 1' });
const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err: unknown) => (err instanceof FlockError ? err.code : String(err)),
  );

test('a new identity creates an account named after the profile, holding the provider link and the email', async (t) => {
  const name = `Ana_${unique()}`;
  const id = identity({ email: `${name.toLowerCase()}@example.com`, emailVerified: true, suggestedUsername: name });
  const { account, resolution } = await resolveAccount(accounts, id);
  t.is(resolution, 'created');
  t.like(account, { username: name.toLowerCase(), displayUsername: name, email: id.email, emailVerified: true, hasPassword: false, roles: ['user'] });
  t.deepEqual(account.providers, [{ provider: 'google', subject: id.subject }]);
});

test('the same identity signs in to the same account afterwards', async (t) => {
  const id = identity({ email: `same_${unique()}@example.com`, emailVerified: true });
  const first = await resolveAccount(accounts, id);
  const again = await resolveAccount(accountsOnOtherNode, id);
  t.is(again.resolution, 'existing');
  t.is(again.account.id, first.account.id);
});

test('an identity without email, or with an unverified email nobody has, gets a new account', async (t) => {
  const withoutEmail = await resolveAccount(accounts, identity({ provider: 'twitter' }));
  t.is(withoutEmail.resolution, 'created');
  t.is(withoutEmail.account.email, null);
  const unverified = await resolveAccount(accounts, identity({ provider: 'facebook', email: `fb_${unique()}@example.com` }));
  t.is(unverified.resolution, 'created');
  t.false(unverified.account.emailVerified, 'kept, but not as verified');
});

test('a provider-verified email of an existing account whose email Flock verified links the provider to it and signs in to it', async (t) => {
  const existing = await accounts.markEmailVerified((await register()).id);
  const id = identity({ email: existing.email!.toUpperCase(), emailVerified: true });
  const { account, resolution } = await resolveAccount(accounts, id);
  t.is(resolution, 'linked');
  t.is(account.id, existing.id);
  t.deepEqual(account.providers, [{ provider: 'google', subject: id.subject }]);
  t.true(account.hasPassword, 'the password still works');
  t.is((await resolveAccount(accounts, id)).resolution, 'existing');
});

test('a provider-verified email of an account whose email Flock never verified is refused (no pre-hijacking): AUTH_IDENTITY_TAKEN, nothing linked', async (t) => {
  const existing = await register();
  const id = identity({ email: existing.email, emailVerified: true });
  t.is(await codeOf(resolveAccount(accounts, id)), 'AUTH_IDENTITY_TAKEN');
  t.is(await accounts.findByProvider('google', id.subject), null);
  t.deepEqual((await accounts.findById(existing.id))?.providers, []);
});

test('an unverified email of an existing account is refused: AUTH_OAUTH_UNVERIFIED_EMAIL, and nothing is linked', async (t) => {
  const existing = await register();
  for (const provider of ['google', 'facebook', 'twitter'] as const) {
    const id = identity({ provider, email: existing.email, emailVerified: false });
    t.is(await codeOf(resolveAccount(accounts, id)), 'AUTH_OAUTH_UNVERIFIED_EMAIL', provider);
    t.is(await accounts.findByProvider(provider, id.subject), null, provider);
  }
  t.deepEqual((await accounts.findById(existing.id))?.providers, []);
});

test('a verified email whose account has another identity of that provider → AUTH_IDENTITY_TAKEN', async (t) => {
  const existing = await register();
  await accounts.linkProvider(existing.id, 'google', `g-${unique()}`);
  t.is(await codeOf(resolveAccount(accounts, identity({ email: existing.email, emailVerified: true }))), 'AUTH_IDENTITY_TAKEN');
});

test('a taken username gets a suffix', async (t) => {
  const name = `dup_${unique()}`;
  const first = await resolveAccount(accounts, identity({ suggestedUsername: name }));
  const second = await resolveAccount(accounts, identity({ suggestedUsername: name }));
  t.is(first.account.username, name);
  t.is(second.account.username, `${name}2`);
});

test('the same new identity resolved on two nodes at once ends in one account', async (t) => {
  for (let round = 0; round < 3; round++) {
    const id = identity({ email: `race_${unique()}@example.com`, emailVerified: true });
    const [a, b] = await Promise.all([resolveAccount(accounts, id), resolveAccount(accountsOnOtherNode, id)]);
    t.is(a.account.id, b.account.id, `round ${round}`);
    t.deepEqual([a.resolution, b.resolution].sort(), ['created', 'existing']);
  }
});

test('linkIdentity links to the signed-in account, is idempotent, and refuses an identity of another account', async (t) => {
  const [alice, bob] = [await register(), await register()];
  const id = identity({ provider: 'facebook' });
  const linked = await linkIdentity(accounts, alice.id, id);
  t.deepEqual(linked.providers, [{ provider: 'facebook', subject: id.subject }]);
  t.is((await linkIdentity(accounts, alice.id, id)).id, alice.id, 'again: no change, no error');
  const err = await t.throwsAsync(linkIdentity(accounts, bob.id, id), { instanceOf: FlockError });
  t.is(err?.code, 'AUTH_IDENTITY_TAKEN');
  t.is(await codeOf(linkIdentity(accounts, alice.id, identity({ provider: 'facebook' }))), 'AUTH_IDENTITY_TAKEN', 'one identity per provider per account');
});
