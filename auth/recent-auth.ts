// Re-authentication before sensitive account changes (linking a sign-in
// provider). A live access token proves a session, not a person: a stolen
// token must not be able to add a permanent way in. So such a change needs
// either a sign-in at most maxAgeSeconds old (the session's auth time: a
// password or provider sign-in, not a refresh) or the account's password
// again, checked through the sign-in throttle like any password.
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import type { AccountService } from './accounts.ts';
import type { LoginService } from './login.ts';
import type { Session } from './session.ts';

export interface RecentAuthProof {
  /** The account's password, when the sign-in is not recent enough. */
  password?: string | undefined;
  /** The client's address, for the throttle. */
  ip: string;
}

export interface RecentAuth {
  /**
   * Resolves when the session's user signed in recently or gave the right
   * password; AUTH_REAUTH_REQUIRED (details.maxAgeSeconds, details.password:
   * whether the account has one) otherwise, AUTH_INVALID_CREDENTIALS or
   * AUTH_THROTTLED for a wrong password.
   */
  require(session: Session, proof: RecentAuthProof): Promise<void>;
}

export function createRecentAuth(deps: {
  accounts: Pick<AccountService, 'findById'>;
  login: LoginService;
  maxAgeSeconds: number;
  /** Epoch ms; tests move it. */
  now?: () => number;
}): RecentAuth {
  const maxAgeMs = z.number().int().min(1).parse(deps.maxAgeSeconds) * 1000;
  const now = deps.now ?? Date.now;
  return {
    async require(session, proof) {
      if (proof.password === undefined) {
        const authTime = session.authTime ?? 0;
        if (authTime > 0 && now() - authTime <= maxAgeMs) return;
        const account = await deps.accounts.findById(session.userId);
        throw new FlockError('AUTH_REAUTH_REQUIRED', undefined, {
          details: { maxAgeSeconds: maxAgeMs / 1000, password: account?.hasPassword ?? false },
        });
      }
      const account = await deps.accounts.findById(session.userId);
      if (!account) throw new FlockError('AUTH_INVALID_CREDENTIALS');
      // Same path, budget and answers as a sign-in (an account without a password never matches).
      const proven = await deps.login.authenticate({ identifier: account.username, password: proof.password, ip: proof.ip });
      if (proven.id !== account.id) throw new FlockError('AUTH_INVALID_CREDENTIALS');
    },
  };
}
