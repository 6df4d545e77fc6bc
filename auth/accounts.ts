// Accounts: registration, look-up by any sign-in identity, roles and OAuth
// provider links. Every write is one single-document operation and uniqueness
// is left to the unique indexes (models/account.ts): a username, email or
// provider identity claimed by two nodes at once goes to exactly one account,
// the other gets AUTH_IDENTITY_TAKEN. Nothing is checked-then-written.
import { randomBytes } from 'node:crypto';
import mongoose, { type Connection } from 'mongoose';
import { z } from 'zod';
import {
  ACCOUNT_ROLES,
  OAUTH_PROVIDERS,
  USERNAME_PATTERN,
  accountModel,
  type AccountDoc,
  type AccountModel,
  type AccountRole,
  type OAuthProvider,
  type ProviderLink,
} from '../models/account.ts';
import { FlockError } from '../kernel/errors.ts';
import { parseInput } from '../kernel/zod-issues.ts';
import { checkPasswordRules, hashPassword } from './passwords.ts';
import { userIdInput } from '../kernel/ids.ts';
import { duplicateKeyIndex } from '../kernel/duplicate-key.ts';

/** A username as typed: any case; stored lowercase. */
export const usernameInput = z.string().regex(/^[A-Za-z0-9_]{3,30}$/, 'must be 3 to 30 letters, digits or underscores');
export const emailInput = z.email().max(254);
export const roleInput = z.enum(ACCOUNT_ROLES);
export const providerInput = z.enum(OAUTH_PROVIDERS);
/** Provider subjects are opaque ids (Google "sub", Facebook/Twitter user ids). */
export const subjectInput = z.string().min(1).max(255);

export const registrationSchema = z
  .object({
    username: usernameInput,
    email: emailInput,
    // Length and content rules are checked by checkPasswordRules, which names the rule.
    password: z.string().max(4096),
  })
  .strict();
export type Registration = z.input<typeof registrationSchema>;

export const oauthAccountSchema = z
  .object({
    provider: providerInput,
    subject: subjectInput,
    email: emailInput.optional(),
    emailVerified: z.boolean(),
    suggestedUsername: z.string().max(256),
  })
  .strict();
export type OAuthAccountInput = z.input<typeof oauthAccountSchema>;

/** An account as the rest of Flock sees it: never the password hash. */
export interface Account {
  id: string;
  username: string;
  displayUsername: string;
  email: string | null;
  emailVerified: boolean;
  roles: AccountRole[];
  providers: ProviderLink[];
  /** False for accounts that can only sign in with a provider. */
  hasPassword: boolean;
  createdAt: Date;
}

export type IdentityField = 'username' | 'email' | 'provider';

export interface AccountService {
  /** Waits for the collection and its unique indexes; writes wait for it too. */
  init(): Promise<void>;
  /** Throws REQUEST_INVALID, AUTH_WEAK_PASSWORD, or AUTH_IDENTITY_TAKEN with details.field. */
  register(input: Registration): Promise<Account>;
  /** A username (any case) or an email address; null when no account has it. */
  findByIdentifier(identifier: string): Promise<Account | null>;
  /** Like findByIdentifier, with the password hash, for the sign-in check only. */
  findCredentials(identifier: string): Promise<{ account: Account; passwordHash: string | null } | null>;
  findById(userId: string): Promise<Account | null>;
  /** Replaces the roles; USER_NOT_FOUND if there is no such account. */
  setRoles(userId: string, roles: readonly AccountRole[]): Promise<Account>;
  /** Records that the owner proved control of the account's email (e.g. by a mailed code). */
  markEmailVerified(userId: string): Promise<Account>;
  /**
   * Links a provider identity to the account (one identity per provider per
   * account). Idempotent for the same identity; AUTH_IDENTITY_TAKEN when the
   * identity belongs to another account or the account has another one.
   */
  linkProvider(userId: string, provider: OAuthProvider, subject: string): Promise<Account>;
  findByProvider(provider: OAuthProvider, subject: string): Promise<Account | null>;
  /**
   * A new account for a provider identity, under the suggested username or
   * the first free one made from it by suffixing. AUTH_IDENTITY_TAKEN when the
   * email or the provider identity is already registered.
   */
  createOAuthAccount(input: OAuthAccountInput): Promise<Account>;
  /** Swaps the hash (after a rehash at sign-in) unless it changed meanwhile. */
  replacePasswordHash(userId: string, expectedHash: string, nextHash: string): Promise<boolean>;
}

export function createAccountService(deps: { connection: Connection }): AccountService {
  const model = accountModel(deps.connection);
  // Model.init() is memoised by mongoose: awaiting it before each insert is
  // free once the unique indexes exist, and inserting before they do could
  // let a duplicate through.
  const ready = () => model.init().then(() => undefined);

  return {
    init: ready,

    async register(input) {
      const { username, email, password } = parseInput(registrationSchema, input, 'registration');
      checkPasswordRules(password, { username, email });
      const doc: AccountDoc = {
        _id: newUserId(),
        username: username.toLowerCase(),
        displayUsername: username,
        email: email.toLowerCase(),
        emailVerified: false,
        passwordHash: await hashPassword(password),
        roles: ['user'],
        createdAt: new Date(),
      };
      await ready();
      try {
        await model.create(doc);
      } catch (err) {
        const field = await conflictingField(model, err, doc, ['username', 'email']);
        if (field === null) throw err;
        throw identityTaken(field);
      }
      return toAccount(doc);
    },

    async findByIdentifier(identifier) {
      const found = await findDocByIdentifier(model, identifier);
      return found && toAccount(found);
    },

    async findCredentials(identifier) {
      const found = await findDocByIdentifier(model, identifier);
      return found && { account: toAccount(found), passwordHash: found.passwordHash ?? null };
    },

    async findById(userId) {
      const id = parseInput(userIdInput, userId, 'user id');
      const found = await model.findById(id).lean<AccountDoc>();
      return found && toAccount(found);
    },

    async setRoles(userId, roles) {
      const id = parseInput(userIdInput, userId, 'user id');
      const next = [
        ...new Set(
          parseInput(
            z
              .array(roleInput)
              .min(1)
              .max(ACCOUNT_ROLES.length * 2),
            roles,
            'roles',
          ),
        ),
      ];
      const updated = await model.findOneAndUpdate({ _id: id }, { $set: { roles: next } }, { returnDocument: 'after' }).lean<AccountDoc>();
      if (!updated) throw new FlockError('USER_NOT_FOUND', `no account ${id}`);
      return toAccount(updated);
    },

    async markEmailVerified(userId) {
      const id = parseInput(userIdInput, userId, 'user id');
      const updated = await model.findOneAndUpdate({ _id: id }, { $set: { emailVerified: true } }, { returnDocument: 'after' }).lean<AccountDoc>();
      if (!updated) throw new FlockError('USER_NOT_FOUND', `no account ${id}`);
      return toAccount(updated);
    },

    async linkProvider(userId, provider, subject) {
      const id = parseInput(userIdInput, userId, 'user id');
      const link = parseInput(z.object({ provider: providerInput, subject: subjectInput }), { provider, subject }, 'provider link');
      const path = `providerSubjects.${link.provider}`;
      await ready();
      try {
        // One update: the account gains the link only if it has none for this
        // provider, and the unique index refuses an identity another account has.
        const updated = await model
          .findOneAndUpdate(
            { _id: id, [path]: mongoose.trusted({ $exists: false }) },
            { $set: { [path]: link.subject }, $push: { providers: link } },
            { returnDocument: 'after' },
          )
          .lean<AccountDoc>();
        if (updated) return toAccount(updated);
      } catch (err) {
        const field = await conflictingField(model, err, { ...link, _id: id }, ['provider']);
        if (field === null) throw err;
        throw identityTaken('provider', `this ${link.provider} identity is linked to another account`);
      }
      const current = await model.findById(id).lean<AccountDoc>();
      if (!current) throw new FlockError('USER_NOT_FOUND', `no account ${id}`);
      if (current.providerSubjects?.[link.provider] === link.subject) return toAccount(current);
      throw identityTaken('provider', `this account is already linked to another ${link.provider} identity`);
    },

    async findByProvider(provider, subject) {
      const link = parseInput(z.object({ provider: providerInput, subject: subjectInput }), { provider, subject }, 'provider link');
      const found = await model.findOne({ [`providerSubjects.${link.provider}`]: link.subject }).lean<AccountDoc>();
      return found && toAccount(found);
    },

    async createOAuthAccount(input) {
      const { provider, subject, email, emailVerified, suggestedUsername } = parseInput(oauthAccountSchema, input, 'OAuth account');
      const candidates = usernameCandidates(suggestedUsername);
      await ready();
      // One read skips the names already taken; the insert stays the authority.
      const taken = new Set(
        (
          await model
            .find({ username: mongoose.trusted({ $in: candidates.map((c) => c.toLowerCase()) }) }, { username: 1 })
            .lean<Pick<AccountDoc, 'username'>[]>()
        ).map((d) => d.username),
      );
      for (const candidate of candidates) {
        if (taken.has(candidate.toLowerCase())) continue;
        const doc: AccountDoc = {
          _id: newUserId(),
          username: candidate.toLowerCase(),
          displayUsername: candidate,
          ...(email === undefined ? {} : { email: email.toLowerCase() }),
          emailVerified: email !== undefined && emailVerified,
          roles: ['user'],
          providers: [{ provider, subject }],
          providerSubjects: { [provider]: subject },
          createdAt: new Date(),
        };
        try {
          await model.create(doc);
          return toAccount(doc);
        } catch (err) {
          // Provider and email first: if either is taken, another name will not help.
          const field = await conflictingField(model, err, { ...doc, provider, subject }, ['provider', 'email', 'username']);
          if (field === null) throw err;
          if (field !== 'username') throw identityTaken(field);
        }
      }
      throw new FlockError('AUTH_IDENTITY_TAKEN', `no free username could be made from ${JSON.stringify(suggestedUsername)}`, {
        details: { field: 'username' },
      });
    },

    async replacePasswordHash(userId, expectedHash, nextHash) {
      const result = await model.updateOne({ _id: userId, passwordHash: expectedHash }, { $set: { passwordHash: nextHash } });
      return result.modifiedCount === 1;
    },
  };
}

function newUserId(): string {
  return `u_${randomBytes(16).toString('base64url')}`;
}

function toAccount(doc: AccountDoc): Account {
  return {
    id: doc._id,
    username: doc.username,
    displayUsername: doc.displayUsername,
    email: doc.email ?? null,
    emailVerified: doc.emailVerified,
    roles: [...doc.roles],
    providers: (doc.providers ?? []).map((p) => ({ provider: p.provider, subject: p.subject })),
    hasPassword: typeof doc.passwordHash === 'string',
    createdAt: doc.createdAt,
  };
}

async function findDocByIdentifier(model: AccountModel, identifier: unknown): Promise<AccountDoc | null> {
  const normalized = parseInput(z.string().max(320), identifier, 'identifier').trim().toLowerCase();
  if (normalized.includes('@')) return model.findOne({ email: normalized }).lean<AccountDoc>();
  // Not a possible username: no query at all.
  if (!USERNAME_PATTERN.test(normalized)) return null;
  return model.findOne({ username: normalized }).lean<AccountDoc>();
}

function identityTaken(field: IdentityField | undefined, message?: string): FlockError {
  const text = message ?? (field === undefined ? undefined : `that ${field} is already registered`);
  return new FlockError('AUTH_IDENTITY_TAKEN', text, field === undefined ? {} : { details: { field } });
}

interface Candidate {
  _id: string;
  username?: string;
  email?: string | undefined;
  provider?: OAuthProvider;
  subject?: string;
}

/**
 * Which identity a failed write collided with: null if the error is not a
 * unique-index violation, undefined if it is but the culprit is gone. When
 * the server does not name the index (FerretDB on insert), the candidate's
 * identities are looked up, in `order`.
 */
async function conflictingField(
  model: AccountModel,
  err: unknown,
  candidate: Candidate,
  order: readonly IdentityField[],
): Promise<IdentityField | undefined | null> {
  const named = duplicateKeyIndex(err);
  if (named === null) return null;
  if (/providers|providerSubjects/.test(named)) return 'provider';
  if (/(^|[ _])email(_1)?( |$)/.test(named)) return 'email';
  if (/(^|[ _])username(_1)?( |$)/.test(named)) return 'username';
  for (const field of order) {
    const filter = lookupFilter(field, candidate);
    if (filter && (await model.exists(filter).then((found) => found !== null && found._id !== candidate._id))) return field;
  }
  return undefined;
}

function lookupFilter(field: IdentityField, c: Candidate): Record<string, string> | undefined {
  if (field === 'username') return c.username === undefined ? undefined : { username: c.username };
  if (field === 'email') return c.email === undefined ? undefined : { email: c.email };
  return c.provider === undefined || c.subject === undefined ? undefined : { [`providerSubjects.${c.provider}`]: c.subject };
}

/**
 * The suggested name made into a valid username (accents dropped, other
 * characters to "_"), then the same with 2..9 appended, then a few random
 * four-digit suffixes: ordered so people mostly get their own name or a short
 * variant, and bounded so a popular name cannot loop.
 */
function usernameCandidates(suggested: string): string[] {
  let base = suggested
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .replace(/[^A-Za-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 30);
  if (base.length < 3) base = base ? `${base}_user` : 'user';
  const withSuffix = (suffix: string) => `${base.slice(0, 30 - suffix.length)}${suffix}`;
  const out = [base];
  for (let n = 2; n <= 9; n++) out.push(withSuffix(String(n)));
  for (let i = 0; i < 6; i++) out.push(withSuffix(String(1000 + (randomBytes(2).readUInt16BE() % 9000))));
  return [...new Set(out)];
}
