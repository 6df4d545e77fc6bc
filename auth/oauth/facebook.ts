// Facebook: the redirect flow through passport-facebook (Graph API /me with
// appsecret_proof), and access tokens from apps. Graph accepts any valid user
// token at /me, whichever app it was issued to, so an app token is first shown
// to debug_token (authenticated as our app) and must belong to one of our app
// ids and to the same user /me returns: otherwise any other Facebook app could
// sign its users in here as themselves (token substitution).
//
// Graph does not say whether it verified an email address, so Facebook emails
// count as unverified: they never attach Facebook to an existing account.
import { Strategy as FacebookStrategy } from 'passport-facebook';
import { z } from 'zod';
import type { FacebookSettings } from './settings.ts';
import * as provider from './provider.ts';

export const FACEBOOK_DEFAULTS = {
  graphApiVersion: 'v22.0',
  scope: ['email', 'public_profile'],
} as const;

const facebookProfile = z.object({
  id: z.string().min(1).max(255),
  name: z.string().max(256).optional(),
  email: z.unknown().optional(),
});

const debugToken = z.object({
  data: z.object({
    app_id: z.string(),
    is_valid: z.boolean(),
    user_id: z.string().optional(),
  }),
});

export function facebookProvider(settings: FacebookSettings, ctx: provider.ProviderContext): provider.ProviderAdapter {
  const graph = `https://graph.facebook.com/${settings.graphApiVersion ?? FACEBOOK_DEFAULTS.graphApiVersion}`;
  const appIds = settings.audiences ?? [settings.clientId];
  const strategy = new FacebookStrategy(
    {
      ...provider.commonStrategyOptions(settings, ctx),
      authorizationURL: settings.authorizationUrl ?? `https://www.facebook.com/${settings.graphApiVersion ?? FACEBOOK_DEFAULTS.graphApiVersion}/dialog/oauth`,
      tokenURL: settings.tokenUrl ?? `${graph}/oauth/access_token`,
      profileURL: settings.userInfoUrl ?? `${graph}/me`,
      profileFields: ['id', 'displayName', 'emails'],
      enableProof: true,
      scope: settings.scope ?? [...FACEBOOK_DEFAULTS.scope],
    },
    provider.keepTokens,
  );

  return provider.providerAdapter('facebook', {
    name: 'Facebook',
    strategy,
    settings,
    identity: facebookIdentity,
    async accessToken(accessToken) {
      const url = new URL(settings.debugTokenUrl ?? `${graph}/debug_token`);
      url.searchParams.set('input_token', accessToken);
      url.searchParams.set('access_token', `${settings.clientId}|${settings.clientSecret}`);
      const checked = debugToken.safeParse(await provider.fetchProviderJson(url, ctx.timeoutMs, 'Facebook debug_token'));
      if (!checked.success) throw provider.oauthFailed('Facebook debug_token answered something unexpected');
      const { app_id: appId, is_valid: valid, user_id: userId } = checked.data.data;
      if (!valid) throw provider.oauthFailed('the Facebook access token is not valid');
      if (!appIds.includes(appId)) throw provider.oauthFailed('the Facebook access token was issued to another app');
      const identity = await provider.profileIdentity(strategy, accessToken, ctx, 'Facebook', facebookIdentity);
      if (identity.subject !== userId) throw provider.oauthFailed('the Facebook access token belongs to another user');
      return identity;
    },
  });
}

function facebookIdentity(raw: unknown): provider.ProviderIdentity {
  const profile = facebookProfile.safeParse(raw);
  if (!profile.success) throw provider.oauthFailed('the Facebook profile has no user id');
  const { id, name, email } = profile.data;
  const address = provider.normalizeEmail(email);
  return {
    provider: 'facebook',
    subject: id,
    email: address,
    emailVerified: false,
    suggestedUsername: name ?? address?.split('@')[0] ?? 'user',
  };
}
