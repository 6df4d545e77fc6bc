// Sign-in with Google, Facebook and X: the browser redirect flow, tokens from
// mobile apps, and linking a provider to a signed-in account. Transport-free:
// routes.ts adapts the redirect flow to HTTP; the socket channel calls
// signInWithToken, link and (for link flows) start.
//
// Redirect flow. start() makes the provider's authorization URL with a state
// and a PKCE challenge; the state, the code_verifier and the flow's intent wait
// in Redis (state-store.ts), so any node can take the callback, once.
// A sign-in flow is also bound to the browser that started it: start() returns
// a random binding, the HTTP adapter keeps it in a cookie, and the callback
// must present it. Without that, someone could finish a flow they started and
// hand the callback URL to a victim, whose browser would be signed in to the
// attacker's account (login CSRF); the state alone does not prevent it when it
// is stored server-side.
//
// Link flows (start with linkUserId, from an authenticated socket) end with a
// one-time link code handed to returnTo; the app redeems it with link() as the
// same signed-in user. A code that reaches anyone else is worthless to them:
// it links only to the account that started the flow, and only when that
// account redeems it (and the channel asks for a recent sign-in first,
// auth/recent-auth.ts). Every new link, explicit or made by a sign-in whose
// verified email matched, is reported to onLinked, which tells the user.
//
//   {prefix}:oauth:link:{code}  JSON { userId, provider, subject }, EX linkCodeTtlSeconds
// ({prefix}: REDIS_KEY_PREFIX unless the settings name another)
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { OAUTH_PROVIDERS, type OAuthProvider } from '../../models/account.ts';
import { FlockError, isFlockError } from '../../kernel/errors.ts';
import { providerInput, subjectInput, type Account } from '../accounts.ts';
import { parseInput } from '../../kernel/zod-issues.ts';
import type { IssuedSession, TokenService } from '../tokens.ts';
import { facebookProvider } from './facebook.ts';
import { googleProvider } from './google.ts';
import { authenticate } from './passport-glue.ts';
import { appTokenSchema, oauthFailed, strategyUserSchema, type ProviderAdapter, type ProviderContext, type ProviderIdentity } from './provider.ts';
import { linkIdentity, resolveAccount, type AccountDirectory, type Resolution } from './resolve-account.ts';
import { createReturnToPolicy } from './return-to.ts';
import { parseOAuthSettings, type OAuthSettings, type ProviderSettingsMap } from './settings.ts';
import { createStateStore, discardState, flowResultSchema, hashBinding, type FlowIntent } from './state-store.ts';
import { twitterProvider } from './twitter.ts';
import { userIdInput } from '../../kernel/ids.ts';

export interface StartOptions {
  /** Where the browser goes after the callback; must be under settings.allowedReturnTo. Default: settings.defaultReturnTo. */
  returnTo?: string;
  /** Makes this a link flow for that (signed-in) user instead of a sign-in. */
  linkUserId?: string;
}

export interface OAuthStart {
  /** The provider's authorization URL: send the browser there. */
  url: string;
  state: string;
  /** For sign-in flows: the secret the callback must present (keep it in a cookie). Null for link flows. */
  binding: string | null;
  expiresInSeconds: number;
  /** The provider's callback URL (its scheme decides whether the binding cookie is Secure). */
  callbackUrl: string;
}

export type OAuthCallbackResult =
  | { kind: 'session'; provider: OAuthProvider; session: IssuedSession; account: Account; resolution: Resolution; returnTo: string | null }
  | { kind: 'link'; provider: OAuthProvider; linkCode: string; returnTo: string | null };

export interface OAuthSignIn {
  session: IssuedSession;
  account: Account;
  resolution: Resolution;
}

export interface OAuthService {
  /** Providers with settings, in catalogue order. */
  readonly enabled: readonly OAuthProvider[];
  /** Where browser flows without a returnTo (and their errors) go; null if unset. */
  readonly defaultReturnTo: string | null;
  /** REQUEST_INVALID for a returnTo outside the allow-list; AUTH_OAUTH_FAILED for a provider without settings. */
  start(provider: OAuthProvider, options?: StartOptions): Promise<OAuthStart>;
  /**
   * Finishes a redirect flow from the callback's query (unknown: validated
   * here). AUTH_OAUTH_FAILED for a provider error, a bad, used, expired or
   * foreign state, a missing binding, or a refused code;
   * AUTH_OAUTH_UNVERIFIED_EMAIL and AUTH_IDENTITY_TAKEN from account resolution.
   */
  callback(provider: OAuthProvider, query: unknown, options?: { binding?: string }): Promise<OAuthCallbackResult>;
  /** `token` is `{ idToken }` (Google) or `{ accessToken }` from the provider's SDK. */
  signInWithToken(provider: OAuthProvider, token: unknown): Promise<OAuthSignIn>;
  /**
   * Links a provider identity to the signed-in user's account. `credential` is
   * `{ linkCode }` from a link flow, or `{ idToken }` / `{ accessToken }` as in
   * signInWithToken. AUTH_IDENTITY_TAKEN if the identity belongs to another account.
   */
  link(userId: string, provider: OAuthProvider, credential: unknown): Promise<Account>;
}

export interface OAuthServiceDeps {
  accounts: AccountDirectory;
  tokens: Pick<TokenService, 'createSession'>;
  redis: Redis;
  /** REDIS_KEY_PREFIX, for the flow states and link codes; settings.redisPrefix overrides it. */
  prefix?: string;
  settings: OAuthSettings;
  /** Called after a provider identity was newly linked to an account (the node notifies the user); must not throw. */
  onLinked?: (userId: string, provider: OAuthProvider, via: LinkedVia) => Promise<void>;
}

/** How a link was made: from a signed-in session, or by a provider sign-in matching the account's verified email. */
export type LinkedVia = 'link' | 'signIn';

const PROVIDERS: { [K in OAuthProvider]: (settings: ProviderSettingsMap[K], ctx: ProviderContext) => ProviderAdapter } = {
  google: googleProvider,
  facebook: facebookProvider,
  twitter: twitterProvider,
};

const callbackQuery = z.object({
  state: z.string().max(256).optional(),
  code: z.string().min(1).max(4096).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(2048).optional(),
  // Facebook's own error parameters.
  error_code: z.string().max(64).optional(),
  error_message: z.string().max(2048).optional(),
});

const LINK_CODE = /^[A-Za-z0-9_-]{43}$/;
const linkCredential = z.union([z.object({ linkCode: z.string().regex(LINK_CODE, 'is not a link code') }).strict(), ...appTokenSchema.options]);
const linkRecord = z.object({ userId: userIdInput, provider: providerInput, subject: subjectInput }).strict();

export function createOAuthService(deps: OAuthServiceDeps): OAuthService {
  const settings = parseOAuthSettings(deps.settings);
  const redisPrefix = settings.redisPrefix ?? deps.prefix;
  if (redisPrefix === undefined) throw new FlockError('CONFIG_INVALID', 'OAuth settings: no Redis key prefix (pass the cluster prefix)');
  const returnTo = createReturnToPolicy(settings.allowedReturnTo);
  const defaultReturnTo = settings.defaultReturnTo === undefined ? null : returnTo.check(settings.defaultReturnTo);
  if (settings.defaultReturnTo !== undefined && defaultReturnTo === null) {
    throw new FlockError('CONFIG_INVALID', 'OAuth settings: defaultReturnTo is not under allowedReturnTo');
  }

  const adapters = new Map<OAuthProvider, ProviderAdapter>();
  const build = <K extends OAuthProvider>(provider: K, providerSettings: ProviderSettingsMap[K] | undefined) => {
    if (providerSettings === undefined) return;
    const store = createStateStore({ redis: deps.redis, prefix: redisPrefix, ttlSeconds: settings.stateTtlSeconds, provider });
    adapters.set(provider, PROVIDERS[provider](providerSettings, { store, timeoutMs: settings.providerTimeoutMs }));
  };
  build('google', settings.providers.google);
  build('facebook', settings.providers.facebook);
  build('twitter', settings.providers.twitter);

  const adapterFor = (provider: unknown): ProviderAdapter => {
    const name = parseInput(providerInput, provider, 'provider');
    const adapter = adapters.get(name);
    if (!adapter) throw new FlockError('AUTH_OAUTH_FAILED', 'provider not configured', { details: { provider: name } });
    return adapter;
  };
  const linkKey = (code: string) => `${redisPrefix}:oauth:link:${code}`;

  const linked = async (userId: string, provider: OAuthProvider, via: LinkedVia) => deps.onLinked?.(userId, provider, via);

  async function signIn(identity: ProviderIdentity): Promise<OAuthSignIn> {
    const { account, resolution } = await resolveAccount(deps.accounts, identity);
    if (resolution === 'linked') await linked(account.id, identity.provider, 'signIn');
    const session = await deps.tokens.createSession(account.id, account.roles);
    return { session, account, resolution };
  }

  return {
    enabled: OAUTH_PROVIDERS.filter((p) => adapters.has(p)),
    defaultReturnTo,

    async start(provider, options = {}) {
      const adapter = adapterFor(provider);
      let target = defaultReturnTo;
      if (options.returnTo !== undefined) {
        target = returnTo.check(parseInput(z.string(), options.returnTo, 'returnTo'));
        if (target === null) throw new FlockError('REQUEST_INVALID', 'returnTo is not an allowed address', { details: { field: 'returnTo' } });
      }
      const linkUserId = options.linkUserId === undefined ? null : parseInput(userIdInput, options.linkUserId, 'user id');
      const binding = linkUserId === null ? randomBytes(32).toString('base64url') : null;
      const intent: FlowIntent = { returnTo: target, linkUserId, bindingHash: binding === null ? null : hashBinding(binding) };

      const outcome = await authenticate(adapter.strategy, { query: {} }, { ...adapter.startOptions, state: intent }, settings.providerTimeoutMs);
      if (outcome.kind !== 'redirect') throw failure(outcome.kind === 'error' ? outcome.error : undefined, 'the sign-in could not be started');
      const state = new URL(outcome.url).searchParams.get('state');
      if (state === null) throw new FlockError('SERVER_INTERNAL', 'the strategy made an authorization URL without state');
      return { url: outcome.url, state, binding, expiresInSeconds: settings.stateTtlSeconds, callbackUrl: adapter.callbackUrl };
    },

    async callback(provider, query, options = {}) {
      const adapter = adapterFor(provider);
      const q = parseInput(callbackQuery, query, 'OAuth callback');
      if (q.error !== undefined || q.error_code !== undefined) {
        // The flow is over either way: its state must not be usable again.
        if (q.state !== undefined) await discardState(deps.redis, redisPrefix, q.state);
        const cancelled = q.error === 'access_denied' || q.error_code === '200';
        throw new FlockError('AUTH_OAUTH_FAILED', cancelled ? 'the sign-in was cancelled at the provider' : 'the provider refused the sign-in', {
          details: { providerError: q.error ?? q.error_code },
        });
      }
      if (q.code === undefined || q.state === undefined) throw new FlockError('REQUEST_INVALID', 'OAuth callback: code and state are required');

      const context = options.binding === undefined ? {} : { binding: options.binding };
      const outcome = await authenticate(adapter.strategy, { query: { code: q.code, state: q.state }, context }, {}, settings.providerTimeoutMs);
      if (outcome.kind === 'fail') throw new FlockError('AUTH_OAUTH_FAILED', `OAuth state refused: ${challengeMessage(outcome.challenge)}`);
      if (outcome.kind !== 'success') throw failure(outcome.kind === 'error' ? outcome.error : undefined, 'the provider did not accept the authorization code');

      const user = strategyUserSchema.parse(outcome.user);
      const intent = flowResultSchema.parse(
        typeof outcome.info === 'object' && outcome.info !== null && 'state' in outcome.info ? outcome.info.state : undefined,
      );
      const identity = adapter.identity(user.profile);

      if (intent.linkUserId !== null) {
        const linkCode = randomBytes(32).toString('base64url');
        const record: z.input<typeof linkRecord> = { userId: intent.linkUserId, provider: identity.provider, subject: identity.subject };
        await deps.redis.set(linkKey(linkCode), JSON.stringify(record), 'EX', settings.linkCodeTtlSeconds);
        return { kind: 'link', provider: adapter.provider, linkCode, returnTo: intent.returnTo };
      }
      const signedIn = await signIn(identity);
      return { kind: 'session', provider: adapter.provider, ...signedIn, returnTo: intent.returnTo };
    },

    async signInWithToken(provider, token) {
      const adapter = adapterFor(provider);
      return signIn(await adapter.verifyToken(parseInput(appTokenSchema, token, 'provider token')));
    },

    async link(userId, provider, credential) {
      const id = parseInput(userIdInput, userId, 'user id');
      const adapter = adapterFor(provider);
      const input = parseInput(linkCredential, credential, 'link credential');
      let identity: ProviderIdentity;
      if ('linkCode' in input) {
        const raw = await deps.redis.getdel(linkKey(input.linkCode));
        const record = raw === null ? undefined : linkRecord.safeParse(safeJson(raw)).data;
        if (!record) throw new FlockError('AUTH_OAUTH_FAILED', 'unknown, expired or already used link code');
        if (record.userId !== id || record.provider !== adapter.provider)
          throw new FlockError('AUTH_OAUTH_FAILED', 'this link code was issued for another account or provider');
        identity = { provider: record.provider, subject: record.subject, email: null, emailVerified: false, suggestedUsername: '' };
      } else {
        identity = await adapter.verifyToken(input);
      }
      const before = await deps.accounts.findByProvider(identity.provider, identity.subject);
      const account = await linkIdentity(deps.accounts, id, identity);
      if (before?.id !== id) await linked(id, identity.provider, 'link');
      return account;
    },
  };
}

/** Passport and provider errors become AUTH_OAUTH_FAILED (cause kept); our own coded errors pass through. */
function failure(err: unknown, message: string): FlockError {
  if (isFlockError(err)) return err;
  return oauthFailed(message, err);
}

function challengeMessage(challenge: unknown): string {
  if (typeof challenge === 'object' && challenge !== null && 'message' in challenge && typeof challenge.message === 'string') return challenge.message;
  return 'refused';
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
