// Password hashing (argon2id) and the rules a new password must meet.
// Parameters are explicit rather than the library's defaults so that a
// dependency upgrade cannot silently change them, and needsRehash() can tell
// when stored hashes fall behind the policy.
import { hash, parseOptions, verify, type Algorithm, type Version } from '@node-rs/argon2';
import { FlockError } from '../kernel/errors.ts';

// `Algorithm` and `Version` are ambient const enums: tsx does not inline them
// and the package exports them empty at run time, so their values are spelled
// out here (Argon2id = 2, V0x13 = 1, per the package's index.d.ts).
const ARGON2ID = 2 as Algorithm;
const V0X13 = 1 as Version;

/** OWASP's minimum for argon2id: 19 MiB of memory, 2 passes, 1 lane. */
export const PASSWORD_HASH_PARAMS = {
  algorithm: ARGON2ID,
  version: V0X13,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
  outputLen: 32,
} as const;

export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

export type PasswordRule = 'length' | 'not-only-letters' | 'not-only-digits' | 'not-username' | 'not-email';

/** An argon2id PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash). */
export async function hashPassword(password: string): Promise<string> {
  return hash(password, PASSWORD_HASH_PARAMS);
}

/** False for a wrong password and for anything that is not a valid hash. */
export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

/** True when the hash was made with other parameters (or is unreadable): rehash it at the next sign-in. */
export function needsRehash(passwordHash: string): boolean {
  try {
    const used = parseOptions(passwordHash);
    return (
      used.algorithm !== PASSWORD_HASH_PARAMS.algorithm ||
      used.version !== PASSWORD_HASH_PARAMS.version ||
      used.memoryCost !== PASSWORD_HASH_PARAMS.memoryCost ||
      used.timeCost !== PASSWORD_HASH_PARAMS.timeCost ||
      used.parallelism !== PASSWORD_HASH_PARAMS.parallelism ||
      used.outputLen !== PASSWORD_HASH_PARAMS.outputLen
    );
  } catch {
    return true;
  }
}

/**
 * Throws AUTH_WEAK_PASSWORD naming the first rule the password breaks
 * (details.rule). Rules are few and cheap on purpose; the throttle and argon2
 * are what slow guessing down.
 */
export function checkPasswordRules(password: string, identity: { username?: string | undefined; email?: string | undefined }): void {
  const lowered = password.toLowerCase();
  // Code points, not UTF-16 units, so an emoji counts once.
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH || length > PASSWORD_MAX_LENGTH) {
    weak('length', `the password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters long`);
  }
  if (/^\p{L}+$/u.test(password)) weak('not-only-letters', 'the password must not be only letters');
  if (/^\p{Nd}+$/u.test(password)) weak('not-only-digits', 'the password must not be only digits');
  const username = identity.username?.toLowerCase();
  if (username && lowered.includes(username)) weak('not-username', 'the password must not contain the username');
  const localPart = emailLocalPart(identity.email);
  if (localPart && lowered.includes(localPart)) weak('not-email', 'the password must not contain the email address');
}

function weak(rule: PasswordRule, message: string): never {
  throw new FlockError('AUTH_WEAK_PASSWORD', message, { details: { rule } });
}

// A local part of one or two characters ("a@x.org") would rule out most
// passwords while protecting nothing, so it is ignored, like usernames, which
// are at least three characters.
function emailLocalPart(email: string | undefined): string | undefined {
  if (!email) return undefined;
  const at = email.lastIndexOf('@');
  const local = (at === -1 ? email : email.slice(0, at)).toLowerCase();
  return local.length >= 3 ? local : undefined;
}
