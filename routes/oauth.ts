// The browser redirect flow of sign-in with a provider:
//   GET /auth/:provider/start?returnTo=...   302 to the provider; sets the browser binding cookie
//   GET /auth/:provider/callback?code&state  302 to returnTo with the result in the fragment,
//                                            or JSON when the request accepts application/json
// Fragment of a sign-in: access_token, refresh_token, expires_at and
// refresh_expires_at (epoch ms), token_type=Bearer; of a link flow: link_code
// and provider; of a failure: error (a Flock code) and error_description.
// A fragment never reaches a server (ours, the app's, or a Referer).
import { createHash } from 'node:crypto';
import type { OAuthCallbackResult, OAuthService } from '../auth/oauth/oauth-service.ts';
import { providerInput } from '../auth/accounts.ts';
import { errorCatalogue, FlockError, isFlockError, toErrorBody } from '../kernel/errors.ts';
import { defineRoute, type RouteContext, type RouteResult } from './define.ts';

type Headers = [string, string][];

// Tokens and codes pass through these responses: never cache them, never leak the URL.
const PRIVATE: Headers = [
  ['cache-control', 'no-store'],
  ['referrer-policy', 'no-referrer'],
];

/** A start is a Redis write and a redirect: generous for a person, a wall for a script. */
const START_LIMIT = { capacity: 20, perSecond: 1 };

export const oauthRoutes = [
  defineRoute({
    method: 'GET',
    path: '/auth/:provider/start',
    summary: 'Starts sign-in with a provider: redirects to it, with state and PKCE kept for any node to finish the flow.',
    auth: { kind: 'none' },
    body: { kind: 'none' },
    rateLimit: START_LIMIT,
    handler: async (req, ctx) => {
      const { oauth, provider } = setup(req.params.provider, ctx);
      const returnTo = req.query.get('returnTo');
      try {
        const started = await oauth.start(provider, returnTo === null ? {} : { returnTo });
        const headers: Headers = [...PRIVATE];
        if (started.binding !== null) {
          const secure = new URL(started.callbackUrl).protocol === 'https:' ? '; Secure' : '';
          headers.push([
            'set-cookie',
            `${bindingCookie(started.state)}=${started.binding}; Path=/; Max-Age=${started.expiresInSeconds}; HttpOnly; SameSite=Lax${secure}`,
          ]);
        }
        return { status: 302, location: started.url, headers };
      } catch (err) {
        // Never redirect on a refused start: the refused returnTo is the likely cause.
        report(ctx, err);
        throw err;
      }
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/auth/:provider/callback',
    summary:
      'Where the provider sends the browser back: finishes sign-in (or a link) and redirects to returnTo with the result in the URL fragment, or answers JSON.',
    auth: { kind: 'none' },
    body: { kind: 'none' },
    rateLimit: START_LIMIT,
    handler: async (req, ctx) => {
      const { oauth, provider } = setup(req.params.provider, ctx);
      const wantsJson = /\bapplication\/json\b/i.test(req.header('accept'));
      const state = req.query.get('state');
      const cookie = state === null ? undefined : bindingCookie(state);
      const binding = cookie === undefined ? undefined : req.cookies.get(cookie);
      // The flow is over whatever happens: the cookie goes.
      const headers: Headers = cookie === undefined ? [...PRIVATE] : [...PRIVATE, ['set-cookie', `${cookie}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`]];

      let result: OAuthCallbackResult;
      try {
        result = await oauth.callback(provider, Object.fromEntries(req.query), binding === undefined ? {} : { binding });
      } catch (err) {
        report(ctx, err);
        const target = oauth.defaultReturnTo;
        const body = toErrorBody(err);
        if (wantsJson || target === null) return { status: errorCatalogue[body.code].status, json: { error: body }, headers };
        return redirect(target, { error: body.code, error_description: body.message }, headers);
      }

      const target = result.returnTo ?? oauth.defaultReturnTo;
      if (result.kind === 'link') {
        if (wantsJson || target === null)
          return { status: 200, json: { provider: result.provider, linkCode: result.linkCode, returnTo: result.returnTo }, headers };
        return redirect(target, { link_code: result.linkCode, provider: result.provider }, headers);
      }
      const { session } = result;
      if (wantsJson || target === null)
        return { status: 200, json: { provider: result.provider, resolution: result.resolution, returnTo: result.returnTo, session }, headers };
      return redirect(
        target,
        {
          access_token: session.accessToken,
          refresh_token: session.refreshToken,
          expires_at: String(session.expiresAt),
          refresh_expires_at: String(session.refreshExpiresAt),
          token_type: 'Bearer',
        },
        headers,
      );
    },
  }),
];

/** The configured OAuth service and the provider the path names; HTTP_NOT_FOUND for anything else. */
function setup(name: string | undefined, ctx: RouteContext): { oauth: OAuthService; provider: ReturnType<typeof providerInput.parse> } {
  const oauth = ctx.services.oauth;
  const provider = providerInput.safeParse(name);
  if (!oauth || !provider.success) throw new FlockError('HTTP_NOT_FOUND', 'No such provider');
  return { oauth, provider: provider.data };
}

/** Failures that are not the client's are the operator's to see. */
function report(ctx: RouteContext, err: unknown): void {
  if (!isFlockError(err) || err.code === 'SERVER_INTERNAL' || err.code === 'SERVICE_UNREACHABLE') ctx.log.error({ err }, 'OAuth route failed');
}

/** Cookie of one flow's binding, named after its state so parallel flows (two tabs) do not clash. */
function bindingCookie(state: string): string {
  return `flock_oauth_${createHash('sha256').update(state).digest('hex').slice(0, 16)}`;
}

function redirect(target: string, fragment: Record<string, string>, headers: Headers): RouteResult {
  return { status: 302, location: `${target}#${new URLSearchParams(fragment).toString()}`, headers };
}
