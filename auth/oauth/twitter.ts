// X (Twitter): the redirect flow through @superfaceai/passport-twitter-oauth2
// (OAuth 2.0 with PKCE, profile from /2/users/me). X has no endpoint that says
// which client an access token was issued to, so a token from an app proves the
// user but not that it was meant for us; such tokens are refused unless
// acceptUncheckedAccessTokens is set. Apps can run the redirect flow instead
// (system browser, returnTo on the app's own scheme).
//
// X gives an email only as `confirmed_email` (user.fields=confirmed_email with
// the users.email scope); when present it is one X has confirmed.
import { Strategy as TwitterStrategy } from '@superfaceai/passport-twitter-oauth2';
import { z } from 'zod';
import type { TwitterSettings } from './settings.ts';
import * as provider from './provider.ts';

export const TWITTER_DEFAULTS = {
  /** The strategy always adds users.read. */
  scope: ['tweet.read'],
} as const;

const twitterUser = z.object({
  id: z.string().min(1).max(255),
  username: z.string().max(256).optional(),
  name: z.string().max(256).optional(),
  confirmed_email: z.unknown().optional(),
});

export function twitterProvider(settings: TwitterSettings, ctx: provider.ProviderContext): provider.ProviderAdapter {
  const strategy = new TwitterStrategy(
    {
      ...provider.commonStrategyOptions(settings, ctx),
      clientType: settings.clientType ?? 'confidential',
      authorizationURL: settings.authorizationUrl,
      tokenURL: settings.tokenUrl,
      userProfileURL: settings.userInfoUrl,
      scope: (settings.scope ?? [...TWITTER_DEFAULTS.scope]).filter((s) => s !== 'users.read'),
    },
    provider.keepTokens,
  );

  return provider.providerAdapter('twitter', {
    name: 'X',
    strategy,
    settings,
    identity: twitterIdentity,
    async accessToken(accessToken) {
      if (settings.acceptUncheckedAccessTokens !== true) {
        throw provider.oauthFailed('X access tokens cannot be checked for the app they were issued to; sign in through the redirect flow');
      }
      return provider.profileIdentity(strategy, accessToken, ctx, 'X', twitterIdentity);
    },
  });
}

function twitterIdentity(raw: unknown): provider.ProviderIdentity {
  const user = twitterUser.safeParse(raw);
  if (!user.success) throw provider.oauthFailed('the X profile has no user id');
  const { id, username, name, confirmed_email: confirmed } = user.data;
  const address = provider.normalizeEmail(confirmed);
  return {
    provider: 'twitter',
    subject: id,
    email: address,
    emailVerified: address !== null,
    suggestedUsername: username ?? name ?? 'user',
  };
}
