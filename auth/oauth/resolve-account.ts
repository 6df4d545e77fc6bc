// Which account a provider identity signs in to, and explicit linking. The
// rules, in order:
//   1. the identity is linked to an account → that account;
//   2. an account has the identity's email, the provider verified the email
//      and so did Flock (account.emailVerified) → the identity is linked to
//      that account, which signs in;
//   3. an account has the email but the provider did not verify it →
//      AUTH_OAUTH_UNVERIFIED_EMAIL: an address anyone can type into a
//      provider profile must not open someone else's account;
//   3b. the provider verified it but Flock never did (password accounts are
//      registered without email verification) → AUTH_IDENTITY_TAKEN: linking
//      would let whoever registered the address first keep a password into
//      the real owner's account (pre-hijacking); the owner signs in and links
//      the provider from there;
//   4. otherwise a new account for the identity (username from the profile).
// Uniqueness is the database's (AccountService): when another node creates or
// links the same identity or email between our read and our write, the write
// fails with AUTH_IDENTITY_TAKEN and the rules run again on the new facts.
import { FlockError, isFlockError } from '../../kernel/errors.ts';
import type { Account, AccountService } from '../accounts.ts';
import type { ProviderIdentity } from './provider.ts';

export type Resolution = 'existing' | 'linked' | 'created';

export type AccountDirectory = Pick<AccountService, 'findByProvider' | 'findByIdentifier' | 'linkProvider' | 'createOAuthAccount'>;

const ATTEMPTS = 3;

export async function resolveAccount(accounts: AccountDirectory, identity: ProviderIdentity): Promise<{ account: Account; resolution: Resolution }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await resolveOnce(accounts, identity);
    } catch (err) {
      // A lost race; anything else (e.g. the account holding the email is
      // already linked to another identity of this provider) is final.
      if (attempt >= ATTEMPTS || !isRace(err)) throw err;
    }
  }
}

async function resolveOnce(accounts: AccountDirectory, identity: ProviderIdentity): Promise<{ account: Account; resolution: Resolution }> {
  const { provider, subject, email, emailVerified } = identity;
  const linked = await accounts.findByProvider(provider, subject);
  if (linked) return { account: linked, resolution: 'existing' };

  if (email !== null) {
    const holder = await accounts.findByIdentifier(email);
    if (holder) {
      // Created or linked by another node since the look-up above.
      if (holder.providers.some((p) => p.provider === provider && p.subject === subject)) return { account: holder, resolution: 'existing' };
      if (!emailVerified) throw new FlockError('AUTH_OAUTH_UNVERIFIED_EMAIL');
      if (!holder.emailVerified) {
        throw new FlockError('AUTH_IDENTITY_TAKEN', 'an account already uses this email; sign in to it and link the provider from there', {
          details: { field: 'email' },
        });
      }
      return { account: await accounts.linkProvider(holder.id, provider, subject), resolution: 'linked' };
    }
  }

  const account = await accounts.createOAuthAccount({
    provider,
    subject,
    ...(email === null ? {} : { email }),
    emailVerified,
    suggestedUsername: identity.suggestedUsername,
  });
  return { account, resolution: 'created' };
}

/**
 * Links the identity to the signed-in user's account. Idempotent for an
 * identity the account already has; AUTH_IDENTITY_TAKEN when it belongs to
 * another account or the account has another identity of that provider.
 */
export async function linkIdentity(
  accounts: Pick<AccountService, 'findByProvider' | 'linkProvider'>,
  userId: string,
  identity: ProviderIdentity,
): Promise<Account> {
  const owner = await accounts.findByProvider(identity.provider, identity.subject);
  if (owner && owner.id !== userId) {
    throw new FlockError('AUTH_IDENTITY_TAKEN', `this ${identity.provider} identity is linked to another account`, { details: { field: 'provider' } });
  }
  if (owner) return owner;
  return accounts.linkProvider(userId, identity.provider, identity.subject);
}

/** Taken by a concurrent writer: the identity, or the email, appeared after we looked. */
function isRace(err: unknown): boolean {
  if (!isFlockError(err) || err.code !== 'AUTH_IDENTITY_TAKEN') return false;
  const field = err.details?.field;
  return field === 'provider' || field === 'email';
}
