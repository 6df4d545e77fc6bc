// Settings of the OAuth sign-in module: one optional block per provider (a
// provider without one is disabled) and the policy shared by every flow. The
// endpoint URLs default to the providers' real ones and exist so tests, and
// staging setups, can point a provider at a local OAuth server.
import { z } from 'zod';
import type { OAuthProvider } from '../../models/account.ts';
import { parseInput } from '../../kernel/zod-issues.ts';

const httpUrl = z.url({ protocol: /^https?$/ });

const providerBase = {
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  /** Our callback route as the provider sees it, e.g. https://api.example.com/auth/google/callback. */
  callbackUrl: httpUrl,
  authorizationUrl: httpUrl.optional(),
  tokenUrl: httpUrl.optional(),
  userInfoUrl: httpUrl.optional(),
  /** Scopes of the redirect flow; defaults per provider. */
  scope: z.array(z.string().min(1)).min(1).optional(),
  /**
   * Client (app) ids whose tokens apps may sign in with, e.g. the iOS and
   * Android client ids next to the web one. Default: [clientId].
   */
  audiences: z.array(z.string().min(1)).min(1).optional(),
};

export const googleSettingsSchema = z
  .object({
    ...providerBase,
    /** Keys that sign Google ID tokens. */
    jwksUrl: httpUrl.optional(),
    /** Accepted `iss` of ID tokens. */
    issuers: z.array(z.string().min(1)).min(1).optional(),
    /** Tells which client an access token was issued to. */
    tokenInfoUrl: httpUrl.optional(),
  })
  .strict();

export const facebookSettingsSchema = z
  .object({
    ...providerBase,
    /** Graph API version of the default URLs, e.g. "v22.0". */
    graphApiVersion: z
      .string()
      .regex(/^v\d+\.\d+$/)
      .optional(),
    /** Tells which app an access token was issued to (Graph API debug_token). */
    debugTokenUrl: httpUrl.optional(),
  })
  .strict();

export const twitterSettingsSchema = z
  .object({
    ...providerBase,
    /** "confidential" (web apps with a secret; the default) or "public" (PKCE only). */
    clientType: z.enum(['public', 'confidential']).optional(),
    /**
     * X has no endpoint that tells which client an access token belongs to, so
     * access tokens from apps are refused unless this is set (token
     * substitution: see twitter.ts).
     */
    acceptUncheckedAccessTokens: z.boolean().optional(),
  })
  .strict();

export type GoogleSettings = z.output<typeof googleSettingsSchema>;
export type FacebookSettings = z.output<typeof facebookSettingsSchema>;
export type TwitterSettings = z.output<typeof twitterSettingsSchema>;

/** Settings type of each provider; a provider missing here fails to compile. */
export interface ProviderSettingsMap {
  google: GoogleSettings;
  facebook: FacebookSettings;
  twitter: TwitterSettings;
}

const providersSchema = z
  .object({
    google: googleSettingsSchema.optional(),
    facebook: facebookSettingsSchema.optional(),
    twitter: twitterSettingsSchema.optional(),
  } satisfies Record<OAuthProvider, z.ZodType>)
  .strict();

/** A returnTo prefix: an absolute URL without credentials, query or fragment. */
const returnToPrefix = z.string().refine((raw) => {
  try {
    const url = new URL(raw);
    return url.username === '' && url.password === '' && url.search === '' && url.hash === '' && (url.host !== '' || url.pathname.length > 1);
  } catch {
    return false;
  }
}, 'must be an absolute URL without credentials, query or fragment, such as https://app.example.com/ or flockapp://oauth');

export const oauthSettingsSchema = z
  .object({
    providers: providersSchema,
    /** Where browser flows may return to: URL prefixes, compared after normalisation (see return-to.ts). */
    allowedReturnTo: z.array(returnToPrefix).default([]),
    /** Used when a flow was started without returnTo, and for errors of browser flows. */
    defaultReturnTo: z.string().optional(),
    /** Lifetime of a started redirect flow (state and PKCE verifier). */
    stateTtlSeconds: z.number().int().min(30).max(3600).default(600),
    /** Lifetime of the code a link flow hands back to the signed-in app. */
    linkCodeTtlSeconds: z.number().int().min(30).max(3600).default(300),
    /** Redis key prefix; default: the node's REDIS_KEY_PREFIX (OAuthServiceDeps.prefix). */
    redisPrefix: z.string().min(1).optional(),
    /** Bound on every call to a provider (token exchange, profile, key set, token checks). */
    providerTimeoutMs: z.number().int().min(100).max(60_000).default(10_000),
  })
  .strict();

export type OAuthSettings = z.input<typeof oauthSettingsSchema>;
export type ResolvedOAuthSettings = z.output<typeof oauthSettingsSchema>;

export function parseOAuthSettings(input: unknown): ResolvedOAuthSettings {
  return parseInput(oauthSettingsSchema, input, 'OAuth settings', 'CONFIG_INVALID');
}
