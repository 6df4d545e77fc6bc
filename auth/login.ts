// Password sign-in: the account look-up, the throttle and the hash check, in
// the order that keeps guessing slow and tells an attacker nothing: every
// verification is reserved in the throttle first (auth/throttle.ts), a spent
// budget is refused before any hash is checked, and an unknown identifier
// costs the same argon2 verification as a wrong password and gets the same
// answer.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { FlockError, messageOf } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import type { Account, AccountService } from './accounts.ts';
import { parseInput } from '../kernel/zod-issues.ts';
import { hashPassword, needsRehash, verifyPassword } from './passwords.ts';
import type { LoginThrottle } from './throttle.ts';

export const loginSchema = z
  .object({
    /** Username (any case) or email. */
    identifier: z.string().min(1).max(320),
    password: z.string().max(4096),
    /** The client's address as the gateway resolved it (TRUST_PROXY). */
    ip: z.string().min(1).max(64),
  })
  .strict();
export type LoginInput = z.input<typeof loginSchema>;

export interface LoginService {
  /** The account, or AUTH_THROTTLED / AUTH_INVALID_CREDENTIALS / REQUEST_INVALID. */
  authenticate(input: LoginInput): Promise<Account>;
}

export function createLoginService(deps: { accounts: AccountService; throttle: LoginThrottle; log?: Logger }): LoginService {
  // A real argon2id hash of a password nobody knows, with the current
  // parameters, so a missing account costs one verification like any other.
  const dummyHash = hashPassword(randomBytes(32).toString('base64url'));
  dummyHash.catch(() => {}); // awaited at the first use; not an unhandled rejection meanwhile

  return {
    async authenticate(input) {
      const { identifier, password, ip } = parseInput(loginSchema, input, 'sign-in');
      const found = await deps.accounts.findCredentials(identifier);
      // Counted per account when there is one, so its username and its email
      // share one budget; per identifier otherwise, which looks the same.
      const throttleKey = found ? `account:${found.account.id}` : `identifier:${identifier.trim().toLowerCase()}`;
      // Reserved before the hash is checked and recorded as a failure at
      // once, so parallel guesses cannot all pass a check made before any of
      // them failed.
      const reservation = await deps.throttle.reserve(throttleKey, ip);

      const storedHash = found?.passwordHash ?? null;
      const valid = storedHash !== null ? await verifyPassword(storedHash, password) : await verifyPassword(await dummyHash, password).then(() => false);
      if (!found || !valid) throw new FlockError('AUTH_INVALID_CREDENTIALS');

      await reservation.succeeded();
      if (storedHash !== null && needsRehash(storedHash)) await rehash(deps, found.account.id, storedHash, password);
      return found.account;
    },
  };
}

// Upgrading old hashes needs the plaintext, which exists only now. A failure
// here must not fail a correct sign-in; the next one tries again.
async function rehash(deps: { accounts: AccountService; log?: Logger }, userId: string, storedHash: string, password: string): Promise<void> {
  try {
    await deps.accounts.replacePasswordHash(userId, storedHash, await hashPassword(password));
  } catch (err) {
    deps.log?.warn({ err: messageOf(err), userId }, 'password rehash failed');
  }
}
