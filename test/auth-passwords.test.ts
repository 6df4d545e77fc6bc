// Password hashing and password rules (auth/passwords.ts).
import { hash } from '@node-rs/argon2';
import test from 'ava';
import { FlockError } from '../kernel/errors.ts';
import { PASSWORD_HASH_PARAMS, checkPasswordRules, hashPassword, needsRehash, verifyPassword, type PasswordRule } from '../auth/passwords.ts';

test('a password is stored as argon2id with the OWASP minimum parameters and verifies', async (t) => {
  const stored = await hashPassword('correct horse 42');
  t.regex(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
  t.true(await verifyPassword(stored, 'correct horse 42'));
  t.false(await verifyPassword(stored, 'correct horse 43'));
  t.false(needsRehash(stored));
});

test('the hash parameters are explicit: argon2id, 19456 KiB, 2 passes, 1 lane', (t) => {
  t.like(PASSWORD_HASH_PARAMS, { memoryCost: 19_456, timeCost: 2, parallelism: 1 });
});

test('two hashes of one password differ (random salt)', async (t) => {
  t.not(await hashPassword('same password 1'), await hashPassword('same password 1'));
});

for (const [label, malformed] of [
  ['empty', ''],
  ['not a hash', 'hunter2'],
  ['bcrypt', '$2b$10$abcdefghijklmnopqrstuuK5a0k0Zy0m0ZPq2qQZ3m6n5Zb2cW6xK'],
  ['truncated argon2id', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA'],
] as const) {
  test(`verifyPassword returns false, never throws, for a malformed hash: ${label}`, async (t) => {
    t.false(await verifyPassword(malformed, 'whatever password 1'));
    t.true(needsRehash(malformed));
  });
}

test('needsRehash is true for a hash made with other parameters', async (t) => {
  const older = await hash('old password 1', { ...PASSWORD_HASH_PARAMS, timeCost: 1, memoryCost: 8192 });
  t.true(await verifyPassword(older, 'old password 1'), 'still verifies');
  t.true(needsRehash(older));
});

const identity = { username: 'Alice_99', email: 'Wonder.Land@example.com' };

for (const [password, rule] of [
  ['short1', 'length'],
  ['nine9char', 'length'],
  [`a1${'x'.repeat(255)}`, 'length'],
  ['onlyletterspassword', 'not-only-letters'],
  ['ÉtéÀLaPlageSansChiffres', 'not-only-letters'],
  ['12345678901234', 'not-only-digits'],
  ['my alice_99 password', 'not-username'],
  ['MY-ALICE_99-PASSWORD', 'not-username'],
  ['wonder.land 2024!', 'not-email'],
  ['xxWONDER.LANDxx 1', 'not-email'],
] as const satisfies readonly (readonly [string, PasswordRule])[]) {
  test(`a weak password is refused by rule ${rule}: ${JSON.stringify(password.length > 30 ? `${password.slice(0, 20)}…` : password)}`, (t) => {
    const err = t.throws(() => checkPasswordRules(password, identity), { instanceOf: FlockError });
    t.is(err?.code, 'AUTH_WEAK_PASSWORD');
    t.deepEqual(err?.details, { rule });
    t.true(err.message.length > 0 && err.message !== 'The password does not meet the rules', 'the message names the rule');
  });
}

for (const password of ['ten chars1', 'correct horse battery staple', `a1${'x'.repeat(254)}`, '🙂🙂🙂🙂🙂🙂🙂🙂🙂1', 'alice 99 is not the username']) {
  test(`an acceptable password passes the rules: ${JSON.stringify(password.slice(0, 30))}`, (t) => {
    t.notThrows(() => checkPasswordRules(password, identity));
  });
}

test('a one- or two-letter email local part does not forbid its letters', (t) => {
  t.notThrows(() => checkPasswordRules('banana bread 1', { username: 'zed', email: 'an@example.com' }));
});
