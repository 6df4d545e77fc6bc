// The HTTP routes of the redirect flow on the engine a node picks here (port 0;
// uWebSockets.js on Node 20, node:http where no uWS binary loads),
// walked by real HTTP requests: our /start, the mock provider's /authorize,
// our /callback, with the cookie a browser would keep.
import test from 'ava';
import { type Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import { randomBytes } from 'node:crypto';
import { OAuth2Server, type MutableResponse } from 'oauth2-mock-server';
import { createAccountService, type AccountService } from '../auth/accounts.ts';
import { createOAuthService, type OAuthService } from '../auth/oauth/oauth-service.ts';
import { oauthRoutes } from '../routes/oauth.ts';
import { RateLimiter } from '../server/rate-limit.ts';
import type { HttpEngine, Listening } from '../server/http-engine.ts';
import { openTestEngine } from './helpers/engines.ts';
import { pino } from 'pino';
import { createTokenService, type TokenService } from '../auth/tokens.ts';
import { testServices } from './helpers/services.ts';

const APP = 'https://app.example.com/';
const services = testServices('oauth_routes');
const { prefix } = services;

let connection: Connection;
let redis: Redis;
let accounts: AccountService;
let tokens: TokenService;
let mock: OAuth2Server;
let engine: HttpEngine | undefined;
let listening: Listening | undefined;
let base: string;
let oauth: OAuthService;

test.before(async () => {
  connection = await services.mongo();
  redis = services.redis();
  accounts = createAccountService({ connection });
  await accounts.init();
  tokens = createTokenService({ connection, settings: { secret: randomBytes(32) }, lookupRoles: async (id) => (await accounts.findById(id))?.roles ?? null });
  await tokens.init();

  mock = new OAuth2Server();
  await mock.issuer.keys.generate('RS256');
  await mock.start(0, '127.0.0.1');
  const issuer = `http://127.0.0.1:${mock.address().port}`;
  mock.issuer.url = issuer;
  // Every userinfo call answers a fresh verified Google profile.
  mock.service.on('beforeUserinfo', (response: MutableResponse) => {
    const id = randomBytes(5).toString('hex');
    response.body = { sub: `g-${id}`, email: `route_${id}@example.com`, email_verified: true, name: `Route ${id}` };
  });

  engine = await openTestEngine();
  listening = await engine.listen('127.0.0.1', 0);
  base = `http://127.0.0.1:${listening.port}`;
  oauth = createOAuthService({
    accounts,
    tokens,
    redis,
    settings: {
      providers: {
        google: {
          clientId: 'flock-web',
          clientSecret: 'secret',
          callbackUrl: `${base}/auth/google/callback`,
          authorizationUrl: `${issuer}/authorize`,
          tokenUrl: `${issuer}/token`,
          userInfoUrl: `${issuer}/userinfo`,
        },
      },
      allowedReturnTo: [APP],
      defaultReturnTo: `${APP}signed-in`,
      redisPrefix: prefix,
    },
  });
  engine.serveRoutes(oauthRoutes, {
    services: {
      nodeId: 'oauth-routes-test',
      readiness: { report: async () => ({ ready: true, lifecycle: 'ready', services: {} }) },
      metrics: async () => ({ contentType: 'text/plain', body: '' }),
      asyncApi: {},
      oauth,
    },
    authenticate: (token) => tokens.verifyAccessToken(token),
    limiter: new RateLimiter(redis, prefix),
    trustProxyHops: 0,
    log: pino({ level: 'silent' }),
  });
});

test.after.always(async () => {
  listening?.stopAccepting();
  engine?.close();
  await mock?.stop().catch(() => {});
  await services.cleanup();
});

const get = (url: string, headers: Record<string, string> = {}) => fetch(url, { redirect: 'manual', headers });

/** GET /start, then the provider's /authorize: the callback URL the browser is sent to, and the cookie it holds. */
async function startAndAuthorize(returnTo?: string): Promise<{ callbackUrl: string; cookie: string; start: Response }> {
  const start = await get(`${base}/auth/google/start${returnTo === undefined ? '' : `?returnTo=${encodeURIComponent(returnTo)}`}`);
  if (start.status !== 302) throw new Error(`start answered ${start.status}: ${await start.text()}`);
  const setCookie = start.headers.get('set-cookie') ?? '';
  const cookie = setCookie.split(';')[0] ?? '';
  const authorized = await get(start.headers.get('location') ?? '');
  return { callbackUrl: authorized.headers.get('location') ?? '', cookie, start };
}

const fragmentOf = (location: string) => new URLSearchParams(new URL(location).hash.slice(1));

test('GET /start redirects to the provider with state and PKCE and sets an HttpOnly binding cookie', async (t) => {
  const response = await get(`${base}/auth/google/start?returnTo=${encodeURIComponent(`${APP}home`)}`);
  t.is(response.status, 302);
  const location = new URL(response.headers.get('location') ?? '');
  t.is(location.pathname, '/authorize');
  t.is(location.searchParams.get('redirect_uri'), `${base}/auth/google/callback`);
  t.is(location.searchParams.get('code_challenge_method'), 'S256');
  t.regex(location.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
  t.regex(response.headers.get('set-cookie') ?? '', /^flock_oauth_[0-9a-f]{16}=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax$/);
  t.is(response.headers.get('cache-control'), 'no-store');
});

test('the whole browser flow: callback redirects to returnTo with the session in the fragment', async (t) => {
  const { callbackUrl, cookie } = await startAndAuthorize(`${APP}home?tab=feed`);
  t.true(callbackUrl.startsWith(`${base}/auth/google/callback?`));
  const response = await get(callbackUrl, { cookie });
  t.is(response.status, 302);
  const location = response.headers.get('location') ?? '';
  t.true(location.startsWith(`${APP}home?tab=feed#`), location);
  const fragment = fragmentOf(location);
  const claims = await tokens.verifyAccessToken(fragment.get('access_token') ?? '');
  t.regex(fragment.get('refresh_token') ?? '', /^[A-Za-z0-9_-]{43}$/);
  t.is(Number(fragment.get('expires_at')), claims.expiresAt);
  t.is(fragment.get('token_type'), 'Bearer');
  t.is((await tokens.refresh(fragment.get('refresh_token') ?? '')).userId, claims.userId, 'the refresh token works');
  t.regex(response.headers.get('set-cookie') ?? '', /Max-Age=0/, 'the binding cookie is cleared');
  t.is(response.headers.get('referrer-policy'), 'no-referrer');

  const replay = await get(callbackUrl, { cookie });
  t.is(replay.status, 302);
  t.is(fragmentOf(replay.headers.get('location') ?? '').get('error'), 'AUTH_OAUTH_FAILED', 'a replayed callback goes to defaultReturnTo with an error');
});

test('callback with Accept: application/json answers the session as JSON', async (t) => {
  const { callbackUrl, cookie } = await startAndAuthorize();
  const response = await get(callbackUrl, { cookie, accept: 'application/json' });
  t.is(response.status, 200);
  const body = (await response.json()) as { provider: string; resolution: string; returnTo: string; session: { accessToken: string; userId: string } };
  t.like(body, { provider: 'google', resolution: 'created', returnTo: `${APP}signed-in` });
  t.is((await tokens.verifyAccessToken(body.session.accessToken)).userId, body.session.userId);
});

test('callback without the binding cookie (a callback URL from someone else) is refused', async (t) => {
  const { callbackUrl } = await startAndAuthorize();
  const response = await get(callbackUrl, { accept: 'application/json' });
  t.is(response.status, 401);
  const body = (await response.json()) as { error: { code: string } };
  t.is(body.error.code, 'AUTH_OAUTH_FAILED');
  // The binding of another flow, sent under this flow's cookie name.
  const [mine, other] = [await startAndAuthorize(), await startAndAuthorize()];
  const swapped = `${mine.cookie.split('=')[0]}=${other.cookie.split('=')[1]}`;
  t.is((await get(mine.callbackUrl, { cookie: swapped, accept: 'application/json' })).status, 401, "another flow's binding");
});

test('open redirect: /start refuses a returnTo outside the allow-list, without redirecting anywhere', async (t) => {
  for (const returnTo of [
    'https://evil.example/',
    'https://app.example.com.evil.example/',
    'https://app.example.com@evil.example/',
    '//evil.example/',
    'javascript:alert(1)',
  ]) {
    const response = await get(`${base}/auth/google/start?returnTo=${encodeURIComponent(returnTo)}`);
    t.is(response.status, 400, returnTo);
    t.is(response.headers.get('location'), null, returnTo);
    t.is(response.headers.get('set-cookie'), null, returnTo);
    t.like(await response.json(), { error: { code: 'REQUEST_INVALID' } }, returnTo);
  }
});

test('unknown and unconfigured providers', async (t) => {
  const unknown = await get(`${base}/auth/myspace/start`);
  t.is(unknown.status, 404);
  t.like(await unknown.json(), { error: { code: 'HTTP_NOT_FOUND' } });
  const unconfigured = await get(`${base}/auth/facebook/start`);
  t.is(unconfigured.status, 401);
  t.like(await unconfigured.json(), { error: { code: 'AUTH_OAUTH_FAILED', message: 'provider not configured' } });
});

test('a provider error on the callback goes to defaultReturnTo with the error in the fragment', async (t) => {
  const { start } = await startAndAuthorize();
  const state = new URL(start.headers.get('location') ?? '').searchParams.get('state') ?? '';
  const response = await get(`${base}/auth/google/callback?error=access_denied&state=${state}`);
  t.is(response.status, 302);
  const location = response.headers.get('location') ?? '';
  t.true(location.startsWith(`${APP}signed-in#`));
  t.is(fragmentOf(location).get('error'), 'AUTH_OAUTH_FAILED');
});
