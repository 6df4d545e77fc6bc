// OAuth sign-in end to end: the redirect flow and app tokens, against a real
// local OAuth 2 server (oauth2-mock-server) standing in for Google, Facebook
// and X, with the suite's real MongoDB and Redis. Each test gets its own mock
// server, so its hooks (profiles, token responses) cannot leak into another
// test running at the same time. Google's tokeninfo and Facebook's debug_token
// are not OAuth 2 endpoints the mock has; a small local server answers them.
import test, { type ExecutionContext } from 'ava';
import { type Redis } from 'ioredis';
import type { Connection } from 'mongoose';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { OAuth2Server, type MutableResponse, type TokenRequestIncomingMessage } from 'oauth2-mock-server';
import type { OAuthProvider } from '../models/account.ts';
import { createAccountService, type Account, type AccountService } from '../auth/accounts.ts';
import { createOAuthService, type LinkedVia, type OAuthService } from '../auth/oauth/oauth-service.ts';
import type { OAuthSettings } from '../auth/oauth/settings.ts';
import { createTokenService, type TokenService } from '../auth/tokens.ts';
import { FlockError } from '../kernel/errors.ts';
import { testServices } from './helpers/services.ts';

const CLIENT_ID = 'flock-web-client';
const CLIENT_SECRET = 'flock-web-secret';
const APP_RETURN = 'https://app.example.com/signed-in';
const services = testServices('oauth_flow');
const { prefix } = services;

let connection: Connection;
let redis: Redis;
let accounts: AccountService;
let tokens: TokenService;

/** Google tokeninfo and Facebook debug_token answers, by access token. */
const tokenChecks = new Map<string, { status: number; body: unknown }>();
const debugTokenAppTokens: string[] = [];
let checksServer: http.Server;
let checksUrl: string;

test.before(async () => {
  connection = await services.mongo();
  redis = services.redis();
  accounts = createAccountService({ connection });
  await accounts.init();
  tokens = createTokenService({
    connection,
    settings: { secret: randomBytes(32) },
    lookupRoles: async (userId) => (await accounts.findById(userId))?.roles ?? null,
  });
  await tokens.init();
  checksServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://checks');
    const token = url.searchParams.get(url.pathname === '/tokeninfo' ? 'access_token' : 'input_token') ?? '';
    if (url.pathname === '/debug_token') debugTokenAppTokens.push(url.searchParams.get('access_token') ?? '');
    const answer = tokenChecks.get(token) ?? { status: 400, body: { error: 'invalid_token' } };
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => checksServer.listen(0, '127.0.0.1', resolve));
  checksUrl = `http://127.0.0.1:${(checksServer.address() as AddressInfo).port}`;
});
test.after.always(async () => {
  checksServer?.close();
  await services.cleanup();
});

interface Rig {
  mock: OAuth2Server;
  issuer: string;
  oauth: OAuthService;
  /** Every onLinked call: [userId, provider, via]. */
  linked: [string, OAuthProvider, LinkedVia][];
}

/** A mock provider on a free port and an OAuth service whose three providers all point at it. */
async function rig(t: ExecutionContext, tweak: (settings: OAuthSettings) => void = () => {}): Promise<Rig> {
  const mock = new OAuth2Server();
  await mock.issuer.keys.generate('RS256');
  await mock.start(0, '127.0.0.1');
  t.teardown(() => mock.stop());
  const issuer = `http://127.0.0.1:${mock.address().port}`;
  mock.issuer.url = issuer;
  const endpoints = (provider: OAuthProvider) => ({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    callbackUrl: `https://api.example.com/auth/${provider}/callback`,
    authorizationUrl: `${issuer}/authorize`,
    tokenUrl: `${issuer}/token`,
    userInfoUrl: `${issuer}/userinfo`,
  });
  const settings: OAuthSettings = {
    providers: {
      google: { ...endpoints('google'), jwksUrl: `${issuer}/jwks`, issuers: [issuer], tokenInfoUrl: `${checksUrl}/tokeninfo` },
      facebook: { ...endpoints('facebook'), debugTokenUrl: `${checksUrl}/debug_token` },
      twitter: endpoints('twitter'),
    },
    allowedReturnTo: ['https://app.example.com/', 'flockapp://oauth'],
    redisPrefix: prefix,
    // Generous: the suite's heavier files load this machine; no test here is about the timeout.
    providerTimeoutMs: 30_000,
  };
  tweak(settings);
  const linked: Rig['linked'] = [];
  const onLinked = async (userId: string, provider: OAuthProvider, via: LinkedVia) => {
    linked.push([userId, provider, via]);
  };
  return { mock, issuer, linked, oauth: createOAuthService({ accounts, tokens, redis, settings, onLinked }) };
}

/** The profile the mock's userinfo endpoint returns next. */
function nextProfile(mock: OAuth2Server, body: Record<string, unknown>, seen?: (req: http.IncomingMessage) => void): void {
  mock.service.once('beforeUserinfo', (response: MutableResponse, req: http.IncomingMessage) => {
    response.body = body;
    seen?.(req);
  });
}

/** What the browser does between start and callback: the mock's /authorize answers with a redirect carrying code and state. */
async function authorize(url: string): Promise<Record<string, string>> {
  const response = await fetch(url, { redirect: 'manual' });
  if (response.status !== 302) throw new Error(`authorize answered ${response.status}`);
  const back = new URL(response.headers.get('location') ?? '');
  return Object.fromEntries(back.searchParams);
}

const unique = () => randomBytes(5).toString('hex');
const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err: unknown) => (err instanceof FlockError ? err.code : String(err)),
  );
const messageOf = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
const register = (tag = unique()) => accounts.register({ username: `pw_${tag}`, email: `pw_${tag}@example.com`, password: 'oauth flow test pass 1' });
const googleProfile = (overrides: Record<string, unknown> = {}) => ({
  sub: `g-${unique()}`,
  email: `g_${unique()}@example.com`,
  email_verified: true,
  name: 'Grace Hopper',
  ...overrides,
});

// ---------------------------------------------------------------------------
// Redirect flow

test('redirect flow: start → the provider → callback signs a new user in, with state and an S256 PKCE challenge', async (t) => {
  const { mock, issuer, oauth } = await rig(t);
  const started = await oauth.start('google', { returnTo: APP_RETURN });
  const authUrl = new URL(started.url);
  t.is(`${authUrl.origin}${authUrl.pathname}`, `${issuer}/authorize`);
  t.like(Object.fromEntries(authUrl.searchParams), {
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: 'https://api.example.com/auth/google/callback',
    scope: 'openid email profile',
    code_challenge_method: 'S256',
    state: started.state,
  });
  const challenge = authUrl.searchParams.get('code_challenge') ?? '';
  t.regex(challenge, /^[A-Za-z0-9_-]{43}$/);
  t.false(authUrl.searchParams.has('code_verifier'), 'the verifier never leaves the server');
  t.truthy(started.binding);

  const stored = await redis.get(`${prefix}:oauth:state:${started.state}`);
  t.truthy(stored, 'the flow waits in Redis');
  const ttl = await redis.ttl(`${prefix}:oauth:state:${started.state}`);
  t.true(ttl > 590 && ttl <= 600, `short TTL: ${ttl}`);

  let verifier = '';
  mock.service.once('beforeResponse', (_response: MutableResponse, req: TokenRequestIncomingMessage) => {
    verifier = String(req.body.code_verifier);
  });
  const profile = googleProfile();
  nextProfile(mock, profile);
  const query = await authorize(started.url);
  t.is(query.state, started.state);
  const result = await oauth.callback('google', query, { binding: started.binding! });

  t.is(createHash('sha256').update(verifier).digest('base64url'), challenge, 'the token request carried the verifier of the challenge');
  if (result.kind !== 'session') return t.fail('expected a session');
  t.is(result.resolution, 'created');
  t.is(result.returnTo, APP_RETURN);
  t.like(result.account, { email: profile.email, emailVerified: true, providers: [{ provider: 'google', subject: profile.sub }] });
  const claims = await tokens.verifyAccessToken(result.session.accessToken);
  t.is(claims.userId, result.account.id);
  t.is(await redis.exists(`${prefix}:oauth:state:${started.state}`), 0, 'the state is spent');
});

test('redirect flow: a replayed callback is refused', async (t) => {
  const { mock, oauth } = await rig(t);
  const started = await oauth.start('google');
  nextProfile(mock, googleProfile());
  const query = await authorize(started.url);
  t.is((await oauth.callback('google', query, { binding: started.binding! })).kind, 'session');
  t.is(await codeOf(oauth.callback('google', query, { binding: started.binding! })), 'AUTH_OAUTH_FAILED');
});

test('redirect flow: a forged, malformed or missing state is refused before any code exchange', async (t) => {
  const { mock, oauth } = await rig(t);
  let exchanges = 0;
  mock.service.on('beforeResponse', () => exchanges++);
  const started = await oauth.start('google');
  const { code } = await authorize(started.url);
  for (const state of [randomBytes(32).toString('base64url'), 'short', `${started.state}x`]) {
    t.is(await codeOf(oauth.callback('google', { code, state }, { binding: started.binding! })), 'AUTH_OAUTH_FAILED', state);
  }
  t.is(await codeOf(oauth.callback('google', { code }, { binding: started.binding! })), 'REQUEST_INVALID');
  t.is(await codeOf(oauth.callback('google', { code: ['a', 'b'], state: started.state })), 'REQUEST_INVALID', 'query values are strings');
  t.is(exchanges, 0);
});

test('redirect flow: a callback without the binding of the browser that started it is refused (login CSRF), and burns the state', async (t) => {
  const { mock, oauth } = await rig(t);
  const started = await oauth.start('google');
  nextProfile(mock, googleProfile());
  const query = await authorize(started.url);
  t.regex(await messageOf(oauth.callback('google', query)), /another browser/);
  t.is(await codeOf(oauth.callback('google', query, { binding: started.binding! })), 'AUTH_OAUTH_FAILED', 'spent');
  const other = await oauth.start('google');
  t.regex(await messageOf(oauth.callback('google', await authorize(other.url), { binding: started.binding! })), /another browser/);
});

test('redirect flow: a state is only good for the provider that issued it', async (t) => {
  const { oauth } = await rig(t);
  const started = await oauth.start('google');
  const query = await authorize(started.url);
  t.regex(await messageOf(oauth.callback('facebook', query, { binding: started.binding! })), /another provider/);
});

test('redirect flow: an error from the provider ends the flow with AUTH_OAUTH_FAILED', async (t) => {
  const { oauth } = await rig(t);
  const started = await oauth.start('google');
  const err = await t.throwsAsync(oauth.callback('google', { error: 'access_denied', state: started.state }, { binding: started.binding! }), {
    instanceOf: FlockError,
  });
  t.is(err?.code, 'AUTH_OAUTH_FAILED');
  t.regex(err?.message ?? '', /cancelled/);
  t.is(await redis.exists(`${prefix}:oauth:state:${started.state}`), 0);
});

test('redirect flow: a code the provider refuses → AUTH_OAUTH_FAILED', async (t) => {
  const { mock, oauth } = await rig(t);
  mock.service.once('beforeResponse', (response: MutableResponse) => {
    response.statusCode = 400;
    response.body = { error: 'invalid_grant', error_description: 'code expired' };
  });
  const started = await oauth.start('google');
  t.is(await codeOf(oauth.callback('google', await authorize(started.url), { binding: started.binding! })), 'AUTH_OAUTH_FAILED');
});

test('redirect flow: start refuses a returnTo outside the allow-list and an unconfigured provider', async (t) => {
  const { oauth } = await rig(t, (s) => {
    delete s.providers.twitter;
  });
  for (const returnTo of ['https://evil.example.com/', 'https://app.example.com.evil.test/', '/relative', 'javascript:alert(1)']) {
    t.is(await codeOf(oauth.start('google', { returnTo })), 'REQUEST_INVALID', returnTo);
  }
  t.is(await codeOf(oauth.start('google', { returnTo: 'flockapp://oauth/done' })), 'ok', 'an app scheme on the list');
  const err = await t.throwsAsync(oauth.start('twitter'), { instanceOf: FlockError });
  t.is(err?.code, 'AUTH_OAUTH_FAILED');
  t.is(err?.message, 'provider not configured');
  t.deepEqual(oauth.enabled, ['google', 'facebook']);
});

test('redirect flow with Facebook: Graph fields and appsecret_proof; its email never counts as verified', async (t) => {
  const { mock, oauth } = await rig(t);
  const existing = await register();
  const started = await oauth.start('facebook');
  t.is(new URL(started.url).searchParams.get('scope'), 'email,public_profile');
  let profileUrl = '';
  let bearer = '';
  nextProfile(mock, { id: `fb-${unique()}`, name: 'Ada Lovelace', email: existing.email }, (req) => {
    profileUrl = req.url ?? '';
    bearer = req.headers.authorization ?? '';
  });
  t.is(await codeOf(oauth.callback('facebook', await authorize(started.url), { binding: started.binding! })), 'AUTH_OAUTH_UNVERIFIED_EMAIL');
  const params = new URL(profileUrl, 'http://x').searchParams;
  t.is(params.get('fields'), 'id,name,email');
  const accessToken = bearer.replace(/^Bearer /, '');
  t.is(params.get('appsecret_proof'), createHmac('sha256', CLIENT_SECRET).update(accessToken).digest('hex'));
  t.false(params.has('access_token'), 'the token goes in the Authorization header, not the URL');

  const fresh = await oauth.start('facebook');
  const id = `fb-${unique()}`;
  const name = `Ada ${unique()}`;
  nextProfile(mock, { id, name, email: `ada_${unique()}@example.com` });
  const result = await oauth.callback('facebook', await authorize(fresh.url), { binding: fresh.binding! });
  if (result.kind !== 'session') return t.fail('expected a session');
  t.like(result.account, { displayUsername: name.replace(' ', '_'), emailVerified: false, providers: [{ provider: 'facebook', subject: id }] });
});

test('redirect flow with X: PKCE, users.read, and the username from the profile', async (t) => {
  const { mock, oauth } = await rig(t);
  const started = await oauth.start('twitter');
  const params = new URL(started.url).searchParams;
  t.is(params.get('code_challenge_method'), 'S256');
  t.is(params.get('scope'), 'tweet.read users.read');
  const username = `x_${unique()}`;
  let basic = '';
  mock.service.once('beforeResponse', (_response: MutableResponse, req: TokenRequestIncomingMessage) => {
    basic = req.headers.authorization ?? '';
  });
  nextProfile(mock, { data: { id: `x-${unique()}`, name: 'Xavier', username } });
  const result = await oauth.callback('twitter', await authorize(started.url), { binding: started.binding! });
  t.is(basic, `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`, 'confidential client credentials in the header');
  if (result.kind !== 'session') return t.fail('expected a session');
  t.like(result.account, { username, email: null });
  t.is(result.resolution, 'created');
});

test('redirect flow: a verified email of an existing account links the provider and signs in to that account', async (t) => {
  const { mock, oauth, linked } = await rig(t);
  const existing = await accounts.markEmailVerified((await register()).id);
  const started = await oauth.start('google');
  const profile = googleProfile({ email: existing.email });
  nextProfile(mock, profile);
  const result = await oauth.callback('google', await authorize(started.url), { binding: started.binding! });
  if (result.kind !== 'session') return t.fail('expected a session');
  t.is(result.resolution, 'linked');
  t.is(result.account.id, existing.id);
  t.is(result.session.userId, existing.id);
  t.is((await accounts.findByProvider('google', profile.sub))?.id, existing.id);
  t.deepEqual(linked, [[existing.id, 'google', 'signIn']], 'the account owner is told');
});

test('redirect flow: an unverified email of an existing account → AUTH_OAUTH_UNVERIFIED_EMAIL', async (t) => {
  const { mock, oauth } = await rig(t);
  const existing = await register();
  const started = await oauth.start('google');
  const profile = googleProfile({ email: existing.email, email_verified: false });
  nextProfile(mock, profile);
  t.is(await codeOf(oauth.callback('google', await authorize(started.url), { binding: started.binding! })), 'AUTH_OAUTH_UNVERIFIED_EMAIL');
  t.is(await accounts.findByProvider('google', profile.sub), null);
});

// ---------------------------------------------------------------------------
// Tokens from apps

const idToken = (mock: OAuth2Server, claims: Record<string, unknown>, expiresIn?: number) =>
  mock.issuer.buildToken({
    ...(expiresIn === undefined ? {} : { expiresIn }),
    scopesOrTransform: (_header, payload) => {
      Object.assign(payload, { aud: CLIENT_ID, ...claims });
    },
  });

test('app token: a Google ID token checked against the JWKS signs in, creating the account', async (t) => {
  const { mock, oauth } = await rig(t);
  const profile = googleProfile();
  const signedIn = await oauth.signInWithToken('google', { idToken: await idToken(mock, profile) });
  t.is(signedIn.resolution, 'created');
  t.like(signedIn.account, { email: profile.email, emailVerified: true, providers: [{ provider: 'google', subject: profile.sub }] });
  t.is((await tokens.verifyAccessToken(signedIn.session.accessToken)).userId, signedIn.account.id);
  const again = await oauth.signInWithToken('google', { idToken: await idToken(mock, profile) });
  t.is(again.account.id, signedIn.account.id);
  t.is(again.resolution, 'existing');
});

test('app token: Google ID tokens for another audience, from another issuer or key, or expired are refused', async (t) => {
  const { mock, oauth } = await rig(t);
  const stranger = new OAuth2Server();
  await stranger.issuer.keys.generate('RS256');
  await stranger.start(0, '127.0.0.1');
  t.teardown(() => stranger.stop());
  stranger.issuer.url = mock.issuer.url; // same iss claim, different key
  const profile = googleProfile();
  const cases: [string, string][] = [
    ['another audience', await idToken(mock, { ...profile, aud: 'someone-elses-app' })],
    ['another issuer', await idToken(mock, { ...profile, iss: 'https://accounts.example.test' })],
    ['expired', await idToken(mock, { ...profile, iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 })],
    ['signed with a key not in the JWKS', await idToken(stranger, profile)],
    ['not a JWT', 'ya29.not-a-jwt'],
  ];
  for (const [label, token] of cases) t.is(await codeOf(oauth.signInWithToken('google', { idToken: token })), 'AUTH_OAUTH_FAILED', label);
  t.is(await accounts.findByProvider('google', profile.sub), null);
  t.is(await codeOf(oauth.signInWithToken('google', { password: 'x' })), 'REQUEST_INVALID');
});

test('app token: a Google ID token with an unverified email of an existing account → AUTH_OAUTH_UNVERIFIED_EMAIL', async (t) => {
  const { mock, oauth } = await rig(t);
  const existing = await register();
  t.is(
    await codeOf(oauth.signInWithToken('google', { idToken: await idToken(mock, googleProfile({ email: existing.email, email_verified: false })) })),
    'AUTH_OAUTH_UNVERIFIED_EMAIL',
  );
  t.is(
    await codeOf(oauth.signInWithToken('google', { idToken: await idToken(mock, googleProfile({ email: existing.email })) })),
    'AUTH_IDENTITY_TAKEN',
    'Flock never verified it',
  );
  await accounts.markEmailVerified(existing.id);
  const linked = await oauth.signInWithToken('google', { idToken: await idToken(mock, googleProfile({ email: existing.email })) });
  t.is(linked.resolution, 'linked');
  t.is(linked.account.id, existing.id);
});

test('app token: a Google access token issued to our client signs in through userinfo; one issued to another app is refused', async (t) => {
  const { mock, oauth } = await rig(t);
  const profile = googleProfile();
  const ours = await mock.issuer.buildToken();
  tokenChecks.set(ours, { status: 200, body: { aud: CLIENT_ID, azp: CLIENT_ID, sub: profile.sub, email_verified: 'true' } });
  nextProfile(mock, profile);
  const signedIn = await oauth.signInWithToken('google', { accessToken: ours });
  t.like(signedIn.account, { email: profile.email, providers: [{ provider: 'google', subject: profile.sub }] });

  const theirs = await mock.issuer.buildToken();
  tokenChecks.set(theirs, { status: 200, body: { aud: 'other-app', azp: 'other-app', sub: profile.sub } });
  t.regex(await messageOf(oauth.signInWithToken('google', { accessToken: theirs })), /another app/);
  t.is(await codeOf(oauth.signInWithToken('google', { accessToken: 'revoked-token' })), 'AUTH_OAUTH_FAILED', 'tokeninfo refuses it');

  const mismatched = await mock.issuer.buildToken();
  tokenChecks.set(mismatched, { status: 200, body: { aud: CLIENT_ID, sub: 'somebody-else' } });
  nextProfile(mock, profile);
  t.is(await codeOf(oauth.signInWithToken('google', { accessToken: mismatched })), 'AUTH_OAUTH_FAILED');
});

test('app token: a Facebook access token must belong to our app (debug_token) and to the user /me returns', async (t) => {
  const { mock, oauth } = await rig(t);
  const id = `fb-${unique()}`;
  const ours = `EAA${unique()}`;
  tokenChecks.set(ours, { status: 200, body: { data: { app_id: CLIENT_ID, is_valid: true, user_id: id } } });
  nextProfile(mock, { id, name: 'Ada Lovelace' });
  const signedIn = await oauth.signInWithToken('facebook', { accessToken: ours });
  t.like(signedIn.account, { providers: [{ provider: 'facebook', subject: id }] });
  t.is(debugTokenAppTokens.at(-1), `${CLIENT_ID}|${CLIENT_SECRET}`, 'debug_token is asked as our app');

  const substituted = `EAA${unique()}`;
  tokenChecks.set(substituted, { status: 200, body: { data: { app_id: 'another-app', is_valid: true, user_id: id } } });
  t.regex(await messageOf(oauth.signInWithToken('facebook', { accessToken: substituted })), /another app/);
  const invalid = `EAA${unique()}`;
  tokenChecks.set(invalid, { status: 200, body: { data: { app_id: CLIENT_ID, is_valid: false } } });
  t.is(await codeOf(oauth.signInWithToken('facebook', { accessToken: invalid })), 'AUTH_OAUTH_FAILED');
  const otherUser = `EAA${unique()}`;
  tokenChecks.set(otherUser, { status: 200, body: { data: { app_id: CLIENT_ID, is_valid: true, user_id: 'someone-else' } } });
  nextProfile(mock, { id, name: 'Ada Lovelace' });
  t.is(await codeOf(oauth.signInWithToken('facebook', { accessToken: otherUser })), 'AUTH_OAUTH_FAILED');
  t.is(await codeOf(oauth.signInWithToken('facebook', { idToken: 'x.y.z' })), 'AUTH_OAUTH_FAILED');
});

test('app token: X access tokens are refused unless unchecked tokens are accepted', async (t) => {
  const strict = await rig(t);
  t.regex(await messageOf(strict.oauth.signInWithToken('twitter', { accessToken: 'x-token' })), /redirect flow/);
  const lax = await rig(t, (s) => {
    s.providers.twitter = { ...s.providers.twitter!, acceptUncheckedAccessTokens: true };
  });
  const username = `x_${unique()}`;
  nextProfile(lax.mock, { data: { id: `x-${unique()}`, username, name: 'X' } });
  t.is((await lax.oauth.signInWithToken('twitter', { accessToken: 'x-token' })).account.username, username);
});

// ---------------------------------------------------------------------------
// Linking

test('link with an app token: a signed-in user adds Google; the same identity cannot go to another account', async (t) => {
  const { mock, oauth, linked: told } = await rig(t);
  const [alice, bob] = [await register(), await register()];
  const profile = googleProfile({ email: `other_${unique()}@example.com` });
  const linked: Account = await oauth.link(alice.id, 'google', { idToken: await idToken(mock, profile) });
  t.deepEqual(linked.providers, [{ provider: 'google', subject: profile.sub }]);
  t.is((await oauth.signInWithToken('google', { idToken: await idToken(mock, profile) })).account.id, alice.id, 'and it signs in to her account');
  t.is(await codeOf(oauth.link(bob.id, 'google', { idToken: await idToken(mock, profile) })), 'AUTH_IDENTITY_TAKEN');
  await oauth.link(alice.id, 'google', { idToken: await idToken(mock, profile) });
  t.deepEqual(told, [[alice.id, 'google', 'link']], 'told once: not for a sign-in, a refused link or linking again');
});

test('link flow: start for a signed-in user → provider → a link code only that user can redeem, once', async (t) => {
  const { mock, oauth } = await rig(t);
  const [alice, mallory] = [await register(), await register()];
  const started = await oauth.start('google', { linkUserId: alice.id, returnTo: 'flockapp://oauth/linked' });
  t.is(started.binding, null, 'redeemed by the signed-in user, not bound to a browser');
  const profile = googleProfile();
  nextProfile(mock, profile);
  const result = await oauth.callback('google', await authorize(started.url));
  if (result.kind !== 'link') return t.fail('expected a link code');
  t.is(result.returnTo, 'flockapp://oauth/linked');
  t.is(await accounts.findByProvider('google', profile.sub), null, 'nothing linked before the user redeems the code');

  t.is(await codeOf(oauth.link(alice.id, 'facebook', { linkCode: result.linkCode })), 'AUTH_OAUTH_FAILED', 'another provider');
  const again = await oauth.start('google', { linkUserId: alice.id });
  nextProfile(mock, profile);
  const second = await oauth.callback('google', await authorize(again.url));
  if (second.kind !== 'link') return t.fail('expected a link code');
  t.is(await codeOf(oauth.link(mallory.id, 'google', { linkCode: second.linkCode })), 'AUTH_OAUTH_FAILED', "someone else's code");
  t.is(await codeOf(oauth.link(alice.id, 'google', { linkCode: second.linkCode })), 'AUTH_OAUTH_FAILED', 'a refused code is spent');

  const third = await oauth.start('google', { linkUserId: alice.id });
  nextProfile(mock, profile);
  const ok = await oauth.callback('google', await authorize(third.url));
  if (ok.kind !== 'link') return t.fail('expected a link code');
  const linked = await oauth.link(alice.id, 'google', { linkCode: ok.linkCode });
  t.deepEqual(linked.providers, [{ provider: 'google', subject: profile.sub }]);
  t.is(await codeOf(oauth.link(alice.id, 'google', { linkCode: ok.linkCode })), 'AUTH_OAUTH_FAILED', 'once');
});
