// Accounts against the suite's real MongoDB (FerretDB unless MONGO_URL says
// otherwise), with the node's mongoose settings (kernel/mongo.ts).
import test from 'ava';
import type { Connection } from 'mongoose';
import { ROLES } from '../channels/define.ts';
import { ACCOUNT_ROLES, accountModel } from '../models/account.ts';
import { createAccountService, type AccountService } from '../auth/accounts.ts';
import { verifyPassword } from '../auth/passwords.ts';
import { FlockError } from '../kernel/errors.ts';
import '../kernel/mongo.ts';
import { testServices } from './helpers/services.ts';

const services = testServices('auth_accounts');

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

let n = 0;
/** A fresh username and email for each test (tests of a file run concurrently). */
const fresh = (stem: string) => {
  n += 1;
  return { username: `${stem}${n}`, email: `${stem}${n}@example.com` };
};
const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err: unknown) => (err instanceof FlockError ? err.code : String(err)),
  );
const errorOf = async (p: Promise<unknown>): Promise<FlockError> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof FlockError)) throw new Error(`expected a FlockError, got ${String(err)}`);
  return err;
};

test('account roles are the gateway roles', (t) => {
  t.deepEqual([...ACCOUNT_ROLES], [...ROLES]);
});

test('register stores a lowercase username, the typed case for display, and an argon2id hash', async (t) => {
  const account = await accounts.register({ username: 'Mixed_Case7', email: 'Mixed.Case7@Example.COM', password: 'a fine password 1' });
  t.regex(account.id, /^u_[A-Za-z0-9_-]{22}$/);
  t.like(account, {
    username: 'mixed_case7',
    displayUsername: 'Mixed_Case7',
    email: 'mixed.case7@example.com',
    emailVerified: false,
    roles: ['user'],
    providers: [],
    hasPassword: true,
  });
  t.false('passwordHash' in account, 'the hash never leaves the service');
  const stored = await accountModel(connection).findById(account.id).lean();
  t.regex(stored!.passwordHash!, /^\$argon2id\$/);
  t.true(await verifyPassword(stored!.passwordHash!, 'a fine password 1'));
});

test('an account is found by username or email in any case, and by id', async (t) => {
  const who = fresh('finder');
  const account = await accounts.register({ ...who, password: 'findable password 1' });
  t.is((await accounts.findByIdentifier(who.username.toUpperCase()))?.id, account.id);
  t.is((await accounts.findByIdentifier(` ${who.email.toUpperCase()} `))?.id, account.id);
  t.is((await accounts.findById(account.id))?.username, who.username);
  t.is(await accounts.findByIdentifier('nobody_here'), null);
  t.is(await accounts.findByIdentifier('not a username!'), null);
  t.is(await accounts.findById('u_doesnotexist'), null);
});

for (const [label, clash] of [
  ['the same username', (taken: { username: string; email: string }) => ({ username: taken.username, email: 'other1@example.com', field: 'username' })],
  [
    'the username in other case',
    (taken: { username: string; email: string }) => ({ username: taken.username.toUpperCase(), email: 'other2@example.com', field: 'username' }),
  ],
  ['the same email', (taken: { username: string; email: string }) => ({ username: 'someone_else1', email: taken.email, field: 'email' })],
  [
    'the email in other case',
    (taken: { username: string; email: string }) => ({ username: 'someone_else2', email: taken.email.toUpperCase(), field: 'email' }),
  ],
] as const) {
  test(`registering ${label} → AUTH_IDENTITY_TAKEN naming the field, and nothing changes`, async (t) => {
    const taken = fresh('taken');
    const first = await accounts.register({ ...taken, password: 'first owner pass 1' });
    const model = accountModel(connection);
    const before = await model.find({}).sort({ _id: 1 }).lean();
    const { field, ...second } = clash(taken);
    const err = await errorOf(accounts.register({ ...second, password: 'second owner pass 1' }));
    t.is(err.code, 'AUTH_IDENTITY_TAKEN');
    t.deepEqual(err.details, { field });
    const after = await model.find({}).sort({ _id: 1 }).lean();
    // Other tests register concurrently: compare this test's accounts only.
    const mine = (docs: typeof before) =>
      docs.filter((d) => d._id === first.id || d.username === second.username.toLowerCase() || d.email === second.email.toLowerCase());
    t.deepEqual(mine(after), mine(before));
  });
}

test('concurrent registrations of one username: exactly one succeeds', async (t) => {
  const attempts = await Promise.all(
    [1, 2, 3, 4].map((i) => codeOf(accounts.register({ username: 'race_name', email: `race${i}@example.com`, password: 'racing password 1' }))),
  );
  t.is(attempts.filter((c) => c === 'ok').length, 1, attempts.join());
  t.is(attempts.filter((c) => c === 'AUTH_IDENTITY_TAKEN').length, 3);
  t.is(await accountModel(connection).countDocuments({ username: 'race_name' }), 1);
});

for (const [label, input, code] of [
  ['a short username', { username: 'ab', email: 'ab@example.com', password: 'valid password 1' }, 'REQUEST_INVALID'],
  ['a username with a dash', { username: 'a-b-c', email: 'abc@example.com', password: 'valid password 1' }, 'REQUEST_INVALID'],
  ['an invalid email', { username: 'valid_name', email: 'not-an-email', password: 'valid password 1' }, 'REQUEST_INVALID'],
  ['an unknown field', { username: 'valid_name', email: 'v@example.com', password: 'valid password 1', roles: ['admin'] }, 'REQUEST_INVALID'],
  ['a weak password', { username: 'valid_name', email: 'v@example.com', password: 'password' }, 'AUTH_WEAK_PASSWORD'],
  ['a password with the username', { username: 'valid_name', email: 'v@example.com', password: 'xVALID_NAMEx 1' }, 'AUTH_WEAK_PASSWORD'],
] as const) {
  test(`register refuses ${label} with ${code}`, async (t) => {
    t.is(await codeOf(accounts.register(input as never)), code);
  });
}

test('setRoles replaces the roles; an unknown role or account is refused', async (t) => {
  const account = await accounts.register({ ...fresh('roles'), password: 'roles password 1' });
  t.deepEqual((await accounts.setRoles(account.id, ['user', 'creator', 'creator'])).roles, ['user', 'creator']);
  t.deepEqual((await accounts.findById(account.id))?.roles, ['user', 'creator']);
  t.is(await codeOf(accounts.setRoles(account.id, ['root' as never])), 'REQUEST_INVALID');
  t.is(await codeOf(accounts.setRoles(account.id, [])), 'REQUEST_INVALID');
  t.is(await codeOf(accounts.setRoles('u_missing', ['user'])), 'USER_NOT_FOUND');
});

test('linkProvider links an identity once; it then finds the account; linking again is idempotent', async (t) => {
  const account = await accounts.register({ ...fresh('linker'), password: 'linker password 1' });
  const linked = await accounts.linkProvider(account.id, 'google', 'g-linker-1');
  t.deepEqual(linked.providers, [{ provider: 'google', subject: 'g-linker-1' }]);
  t.is((await accounts.findByProvider('google', 'g-linker-1'))?.id, account.id);
  t.is(await accounts.findByProvider('facebook', 'g-linker-1'), null, 'subjects are per provider');
  t.deepEqual((await accounts.linkProvider(account.id, 'google', 'g-linker-1')).providers, linked.providers);
  const both = await accounts.linkProvider(account.id, 'twitter', 't-linker-1');
  t.deepEqual(both.providers, [
    { provider: 'google', subject: 'g-linker-1' },
    { provider: 'twitter', subject: 't-linker-1' },
  ]);
});

test('a provider identity belongs to one account: linking it to another → AUTH_IDENTITY_TAKEN', async (t) => {
  const a = await accounts.register({ ...fresh('owner'), password: 'owner password 1' });
  const b = await accounts.register({ ...fresh('other'), password: 'other password 1' });
  await accounts.linkProvider(a.id, 'facebook', 'fb-shared');
  const err = await errorOf(accounts.linkProvider(b.id, 'facebook', 'fb-shared'));
  t.is(err.code, 'AUTH_IDENTITY_TAKEN');
  t.deepEqual(err.details, { field: 'provider' });
  t.deepEqual((await accounts.findById(b.id))?.providers, []);
  t.is((await accounts.findByProvider('facebook', 'fb-shared'))?.id, a.id);
});

test('an account links one identity per provider; unknown accounts and providers are refused', async (t) => {
  const a = await accounts.register({ ...fresh('single'), password: 'single password 1' });
  await accounts.linkProvider(a.id, 'google', 'g-single-1');
  const err = await errorOf(accounts.linkProvider(a.id, 'google', 'g-single-2'));
  t.is(err.code, 'AUTH_IDENTITY_TAKEN');
  t.is(await accounts.findByProvider('google', 'g-single-2'), null);
  t.is(await codeOf(accounts.linkProvider('u_missing', 'google', 'g-nobody')), 'USER_NOT_FOUND');
  t.is(await codeOf(accounts.linkProvider(a.id, 'myspace' as never, 'x')), 'REQUEST_INVALID');
});

test('concurrent links of one provider identity to two accounts: exactly one wins', async (t) => {
  const a = await accounts.register({ ...fresh('racea'), password: 'race a password 1' });
  const b = await accounts.register({ ...fresh('raceb'), password: 'race b password 1' });
  const outcomes = await Promise.all([codeOf(accounts.linkProvider(a.id, 'twitter', 'tw-race')), codeOf(accounts.linkProvider(b.id, 'twitter', 'tw-race'))]);
  t.deepEqual([...outcomes].sort(), ['AUTH_IDENTITY_TAKEN', 'ok']);
  t.truthy(await accounts.findByProvider('twitter', 'tw-race'));
});

test('createOAuthAccount uses the suggested name, made valid, and suffixes it when taken', async (t) => {
  const first = await accounts.createOAuthAccount({
    provider: 'google',
    subject: 'g-jose-1',
    email: 'Jose.Perez@Example.com',
    emailVerified: true,
    suggestedUsername: 'José Pérez',
  });
  t.like(first, {
    username: 'jose_perez',
    displayUsername: 'Jose_Perez',
    email: 'jose.perez@example.com',
    emailVerified: true,
    hasPassword: false,
    roles: ['user'],
  });
  t.deepEqual(first.providers, [{ provider: 'google', subject: 'g-jose-1' }]);
  const second = await accounts.createOAuthAccount({ provider: 'facebook', subject: 'fb-jose-2', emailVerified: false, suggestedUsername: 'José Pérez' });
  t.is(second.username, 'jose_perez2');
  t.is(second.email, null);
  const third = await accounts.createOAuthAccount({ provider: 'twitter', subject: 'tw-jose-3', emailVerified: false, suggestedUsername: 'jose_perez' });
  t.is(third.username, 'jose_perez3');
  t.is((await accounts.findByProvider('facebook', 'fb-jose-2'))?.id, second.id);
});

test('createOAuthAccount makes a valid name from anything, and accounts without email do not collide', async (t) => {
  const a = await accounts.createOAuthAccount({ provider: 'twitter', subject: 'tw-odd-1', emailVerified: false, suggestedUsername: '李' });
  const b = await accounts.createOAuthAccount({ provider: 'twitter', subject: 'tw-odd-2', emailVerified: false, suggestedUsername: 'x' });
  const c = await accounts.createOAuthAccount({ provider: 'twitter', subject: 'tw-odd-3', emailVerified: false, suggestedUsername: 'a'.repeat(40) });
  t.regex(a.username, /^user\d*$/);
  t.is(b.username, 'x_user');
  t.is(c.username, 'a'.repeat(30));
  const d = await accounts.createOAuthAccount({ provider: 'twitter', subject: 'tw-odd-4', emailVerified: false, suggestedUsername: 'a'.repeat(40) });
  t.is(d.username, `${'a'.repeat(29)}2`, 'the suffix keeps the name within 30 characters');
});

test('createOAuthAccount refuses a taken email or provider identity with AUTH_IDENTITY_TAKEN naming it', async (t) => {
  const who = fresh('oauthclash');
  await accounts.register({ ...who, password: 'clash password 1' });
  const emailErr = await errorOf(
    accounts.createOAuthAccount({ provider: 'google', subject: 'g-clash', email: who.email.toUpperCase(), emailVerified: true, suggestedUsername: 'clasher' }),
  );
  t.is(emailErr.code, 'AUTH_IDENTITY_TAKEN');
  t.deepEqual(emailErr.details, { field: 'email' });
  await accounts.createOAuthAccount({ provider: 'google', subject: 'g-clash-2', emailVerified: false, suggestedUsername: 'clasher2' });
  const providerErr = await errorOf(
    accounts.createOAuthAccount({ provider: 'google', subject: 'g-clash-2', emailVerified: false, suggestedUsername: 'clasher3' }),
  );
  t.is(providerErr.code, 'AUTH_IDENTITY_TAKEN');
  t.deepEqual(providerErr.details, { field: 'provider' });
  t.is(await accountModel(connection).countDocuments({ username: 'clasher3' }), 0);
});

test('the schema is strict: unknown fields are refused at write time', async (t) => {
  await t.throwsAsync(
    accountModel(connection).create({
      _id: 'u_strict',
      username: 'strict_one',
      displayUsername: 'strict_one',
      emailVerified: false,
      createdAt: new Date(),
      isAdmin: true,
    } as never),
    { name: 'StrictModeError' },
  );
  t.is(await accountModel(connection).countDocuments({ _id: 'u_strict' }), 0);
});
