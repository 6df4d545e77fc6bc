// Google: the redirect flow through passport-google-oauth20 (OpenID userinfo
// profile), and tokens from apps: an ID token is verified locally against
// Google's key set (issuer and audience pinned); an access token is first shown
// to the tokeninfo endpoint, which says which client it was issued to, so a
// token some other app obtained for the user cannot sign in here.
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Strategy as GoogleStrategy } from 'passport-google-oauth20';
import { z } from 'zod';
import type { GoogleSettings } from './settings.ts';
import * as provider from './provider.ts';

export const GOOGLE_DEFAULTS = {
  jwksUrl: 'https://www.googleapis.com/oauth2/v3/certs',
  issuers: ['https://accounts.google.com', 'accounts.google.com'],
  tokenInfoUrl: 'https://oauth2.googleapis.com/tokeninfo',
  scope: ['openid', 'email', 'profile'],
} as const;

/** The claims used, from userinfo or an ID token (same names in both). */
const googleClaims = z.object({
  sub: z.string().min(1).max(255),
  email: z.unknown().optional(),
  email_verified: provider.booleanish.optional(),
  name: z.string().max(256).optional(),
});

const tokenInfo = z.object({
  sub: z.string().min(1),
  aud: z.string().optional(),
  azp: z.string().optional(),
});

export function googleProvider(settings: GoogleSettings, ctx: provider.ProviderContext): provider.ProviderAdapter {
  const audiences = settings.audiences ?? [settings.clientId];
  const strategy = new GoogleStrategy(
    {
      ...provider.commonStrategyOptions(settings, ctx),
      authorizationURL: settings.authorizationUrl,
      tokenURL: settings.tokenUrl,
      userProfileURL: settings.userInfoUrl,
      scope: settings.scope ?? [...GOOGLE_DEFAULTS.scope],
    },
    provider.keepTokens,
  );
  // Fetched on first use and cached by jose, refetched when an unknown key id shows up.
  const keys = createRemoteJWKSet(new URL(settings.jwksUrl ?? GOOGLE_DEFAULTS.jwksUrl), { timeoutDuration: ctx.timeoutMs });

  return provider.providerAdapter('google', {
    name: 'Google',
    strategy,
    settings,
    identity: googleIdentity,
    async idToken(idToken) {
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(idToken, keys, {
          issuer: settings.issuers ?? [...GOOGLE_DEFAULTS.issuers],
          audience: audiences,
          algorithms: ['RS256'],
          requiredClaims: ['sub', 'exp', 'iat'],
          clockTolerance: 5,
        }));
      } catch (err) {
        throw provider.oauthFailed('the Google ID token is not valid for this app', err);
      }
      return googleIdentity(payload);
    },
    async accessToken(accessToken) {
      const infoUrl = new URL(settings.tokenInfoUrl ?? GOOGLE_DEFAULTS.tokenInfoUrl);
      infoUrl.searchParams.set('access_token', accessToken);
      const info = tokenInfo.safeParse(await provider.fetchProviderJson(infoUrl, ctx.timeoutMs, 'Google tokeninfo'));
      if (!info.success) throw provider.oauthFailed('Google tokeninfo answered something unexpected');
      const issuedTo = [info.data.aud, info.data.azp];
      if (!issuedTo.some((id) => id !== undefined && audiences.includes(id))) throw provider.oauthFailed('the Google access token was issued to another app');
      const identity = await provider.profileIdentity(strategy, accessToken, ctx, 'Google', googleIdentity);
      if (identity.subject !== info.data.sub) throw provider.oauthFailed('Google tokeninfo and userinfo disagree about the user');
      return identity;
    },
  });
}

function googleIdentity(raw: unknown): provider.ProviderIdentity {
  const claims = googleClaims.safeParse(raw);
  if (!claims.success) throw provider.oauthFailed('the Google profile has no user id');
  const { sub, email, email_verified: verified, name } = claims.data;
  const address = provider.normalizeEmail(email);
  return {
    provider: 'google',
    subject: sub,
    email: address,
    emailVerified: address !== null && verified === true,
    suggestedUsername: address?.split('@')[0] ?? name ?? 'user',
  };
}
