// What every provider module (google.ts, facebook.ts, twitter.ts) provides:
// a configured passport strategy for the redirect flow, the mapping from the
// provider's profile to a ProviderIdentity, and the check of a token an app
// obtained from the provider's SDK. Provider data is untrusted input: it is
// parsed with zod, never cast.
import type { Strategy as OAuth2Strategy, StateStore } from 'passport-oauth2';
import { z } from 'zod';
import type { OAuthProvider } from '../../models/account.ts';
import { emailInput } from '../accounts.ts';
import { FlockError } from '../../kernel/errors.ts';
import { loadProfile, useBearerHeader } from './passport-glue.ts';

/** Who the provider says the user is. */
export interface ProviderIdentity {
  provider: OAuthProvider;
  /** The provider's stable user id (Google "sub", Facebook and X user ids). */
  subject: string;
  /** Lowercased; null when the provider gave none, or gave something that is not an address. */
  email: string | null;
  /** True only when the provider itself says it verified the address. */
  emailVerified: boolean;
  suggestedUsername: string;
}

/** A token an app sends instead of running the redirect flow. */
export type AppToken = { idToken: string } | { accessToken: string };

export const appTokenSchema = z.union([
  z.object({ idToken: z.string().min(1).max(8192) }).strict(),
  z.object({ accessToken: z.string().min(1).max(8192) }).strict(),
]);

export interface ProviderAdapter {
  readonly provider: OAuthProvider;
  /** Configured with the Redis state store, PKCE and state on. */
  readonly strategy: OAuth2Strategy;
  readonly callbackUrl: string;
  /** Extra options for authenticate() at the start of the redirect flow. */
  readonly startOptions: Record<string, unknown>;
  /** The profile a strategy loaded → the identity; AUTH_OAUTH_FAILED if it lacks an id. */
  identity(profile: unknown): ProviderIdentity;
  /**
   * The identity a token from an app proves, after checking that the token was
   * issued to one of our client ids; AUTH_OAUTH_FAILED otherwise.
   */
  verifyToken(token: AppToken): Promise<ProviderIdentity>;
}

export interface ProviderContext {
  store: StateStore;
  timeoutMs: number;
}

/** The raw JSON of a passport profile (`_json`), for the provider's own schema. */
export function profileJson(profile: unknown): unknown {
  return typeof profile === 'object' && profile !== null && '_json' in profile ? profile._json : undefined;
}

export function oauthFailed(message: string, cause?: unknown): FlockError {
  return new FlockError('AUTH_OAUTH_FAILED', message, cause === undefined ? {} : { cause });
}

/** A provider-given address if it is one, lowercased. */
export function normalizeEmail(value: unknown): string | null {
  const parsed = emailInput.safeParse(value);
  return parsed.success ? parsed.data.toLowerCase() : null;
}

/** Google and OIDC send booleans; Google's tokeninfo sends "true"/"false". */
export const booleanish = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);

/** GET a JSON document from a provider, bounded in time; AUTH_OAUTH_FAILED on any failure. */
export async function fetchProviderJson(url: URL, timeoutMs: number, what: string): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (err) {
    throw oauthFailed(`${what}: the provider could not be reached`, err);
  }
  const body: unknown = await response.json().catch(() => undefined);
  if (!response.ok) throw oauthFailed(`${what}: the provider refused the token (HTTP ${response.status})`);
  return body;
}

/** What a strategy's success hands back: the provider's access token and the loaded profile. */
export interface StrategyUser {
  accessToken: string;
  profile: unknown;
}

/**
 * The strategies' verify callback. Accounts are resolved after passport is
 * done (oauth-service.ts), in async code, so this only passes the results on.
 */
export function keepTokens(accessToken: string, _refreshToken: string, profile: unknown, done: (err: null, user: StrategyUser) => void): void {
  done(null, { accessToken, profile });
}

export const strategyUserSchema = z.object({ accessToken: z.string().min(1), profile: z.unknown() });

/** What every provider's settings have (auth/oauth/settings.ts). */
export interface ClientSettings {
  clientId: string;
  clientSecret: string;
  callbackUrl: string;
}

/** The strategy options every provider sets the same way: our client and callback, the Redis state store, state and PKCE on. */
export function commonStrategyOptions(settings: ClientSettings, ctx: ProviderContext) {
  return {
    clientID: settings.clientId,
    clientSecret: settings.clientSecret,
    callbackURL: settings.callbackUrl,
    store: ctx.store,
    state: true,
    pkce: true,
  } as const;
}

/** Reads a provider profile (`_json` of what its strategy loads) as an identity; AUTH_OAUTH_FAILED if it has none. */
export type IdentityOf = (json: unknown) => ProviderIdentity;

/**
 * A provider's adapter from its parts: the strategy (made to send the access
 * token in a header), how its profile maps to an identity, and the checks of
 * the app tokens it takes (an access token, and for some an ID token).
 */
export function providerAdapter(
  provider: OAuthProvider,
  parts: {
    /** The provider's name in messages ("Google", "X"). */
    name: string;
    strategy: OAuth2Strategy;
    settings: ClientSettings;
    identity: IdentityOf;
    accessToken(token: string): Promise<ProviderIdentity>;
    idToken?(token: string): Promise<ProviderIdentity>;
  },
): ProviderAdapter {
  useBearerHeader(parts.strategy);
  return {
    provider,
    strategy: parts.strategy,
    callbackUrl: parts.settings.callbackUrl,
    startOptions: {},
    identity: (profile) => parts.identity(profileJson(profile)),
    verifyToken(token) {
      if ('accessToken' in token) return parts.accessToken(token.accessToken);
      if (parts.idToken) return parts.idToken(token.idToken);
      return Promise.reject(oauthFailed(`${parts.name} sign-in takes an access token`));
    },
  };
}

/** The identity the provider's profile endpoint gives for an access token; AUTH_OAUTH_FAILED when it cannot be loaded. */
export async function profileIdentity(
  strategy: OAuth2Strategy,
  accessToken: string,
  ctx: ProviderContext,
  name: string,
  identity: IdentityOf,
): Promise<ProviderIdentity> {
  const profile = await loadProfile(strategy, accessToken, ctx.timeoutMs).catch((err: unknown) => {
    throw oauthFailed(`the ${name} profile could not be loaded`, err);
  });
  return identity(profileJson(profile));
}
