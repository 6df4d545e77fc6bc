// Provider sign-in through a real node: OAUTH_CONFIG points Google at a local
// OAuth2/OIDC server (oauth2-mock-server); an app signs in over the socket
// with a Google ID token, gets a session and a profile, and a second sign-in
// finds the same account.
import test from 'ava';
import { SignJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import { OAuth2Server } from 'oauth2-mock-server';
import type { StreamEvent } from '../streams/catalogue.ts';
import { codeOf } from './helpers/outcome.ts';
import { requireEnv } from './helpers/env.ts';
import { eventually, startNodeProcess } from './helpers/node-process.ts';
import { assertEventsValid, checkedClient } from './helpers/clients.ts';

const CLIENT_ID = 'flock-test-client';

test('an app signs in with a Google ID token over the socket, and again into the same account', async (t) => {
  const mock = new OAuth2Server();
  await mock.issuer.keys.generate('RS256');
  await mock.start(0, '127.0.0.1');
  t.teardown(() => mock.stop());
  const issuer = `http://127.0.0.1:${mock.address().port}`;
  mock.issuer.url = issuer;
  const oauthConfig = {
    providers: {
      google: {
        clientId: CLIENT_ID,
        clientSecret: 'secret',
        callbackUrl: 'http://127.0.0.1/auth/google/callback',
        authorizationUrl: `${issuer}/authorize`,
        tokenUrl: `${issuer}/token`,
        userInfoUrl: `${issuer}/userinfo`,
        jwksUrl: `${issuer}/jwks`,
        issuers: [issuer],
      },
    },
    allowedReturnTo: ['flockapp://oauth'],
  };
  const node = await startNodeProcess({ env: { OAUTH_CONFIG: JSON.stringify(oauthConfig) } });
  t.teardown(async () => {
    await node.stop();
    assertEventsValid();
  });

  const subject = `g-${randomBytes(4).toString('hex')}`;
  const idToken = () =>
    mock.issuer.buildToken({
      scopesOrTransform: (_header, payload) => {
        Object.assign(payload, { aud: CLIENT_ID, sub: subject, email: `${subject}@gmail.test`, email_verified: true, name: 'Gee Tester' });
      },
    });

  const app = checkedClient(node.url, { socket: { reconnection: false } });
  t.teardown(() => app.close());
  await app.connected();
  const first = await app.request('auth:signInWithProvider', { provider: 'google', idToken: await idToken() });
  t.is(first.resolution, 'created');
  const me = await app.request('users:me', {});
  t.is(me.email, `${subject}@gmail.test`);
  t.is(me.profile.userId, first.userId);

  const again = await app.request('auth:signInWithProvider', { provider: 'google', idToken: await idToken() });
  t.is(again.resolution, 'existing');
  t.is(again.userId, first.userId);

  const forged = await mock.issuer.buildToken({ scopesOrTransform: (_h, p) => Object.assign(p, { aud: 'someone-else', sub: subject }) });
  t.is(await codeOf(app.request('auth:signInWithProvider', { provider: 'google', idToken: forged })), 'AUTH_OAUTH_FAILED');
  t.is(await codeOf(app.request('auth:signInWithProvider', { provider: 'facebook', accessToken: 'whatever-token' })), 'AUTH_OAUTH_FAILED', 'not configured');
});

test('linking a provider needs a recent sign-in or the password, and tells the user', async (t) => {
  const mock = new OAuth2Server();
  await mock.issuer.keys.generate('RS256');
  await mock.start(0, '127.0.0.1');
  t.teardown(() => mock.stop());
  const issuer = `http://127.0.0.1:${mock.address().port}`;
  mock.issuer.url = issuer;
  const oauthConfig = {
    providers: {
      google: {
        clientId: CLIENT_ID,
        clientSecret: 'secret',
        callbackUrl: 'http://127.0.0.1/auth/google/callback',
        jwksUrl: `${issuer}/jwks`,
        issuers: [issuer],
      },
    },
  };
  const node = await startNodeProcess({ env: { OAUTH_CONFIG: JSON.stringify(oauthConfig), AUTH_REAUTH_MAX_AGE_SECONDS: '60' } });
  t.teardown(async () => {
    await node.stop();
    assertEventsValid();
  });
  const idToken = (subject: string) =>
    mock.issuer.buildToken({ scopesOrTransform: (_header, payload) => Object.assign(payload, { aud: CLIENT_ID, sub: subject, name: 'Linker' }) });
  const connect = async (token?: string) => {
    const c = checkedClient(node.url, { ...(token && { token }), socket: { reconnection: false } });
    t.teardown(() => c.close());
    await c.connected();
    return c;
  };
  const PASSWORD = 'link password 42';
  const register = async () => {
    const username = `l${randomBytes(5).toString('hex')}`;
    const c = await connect();
    return { c, ...(await c.request('auth:register', { username, email: `${username}@example.test`, password: PASSWORD })) };
  };

  // Just registered: the sign-in is recent, the link goes through, and every socket of the user hears of it.
  const owner = await register();
  const elsewhere = await connect(owner.tokens.accessToken);
  const heard: StreamEvent[] = [];
  elsewhere.socket.on('stream:event', (e) => heard.push(e));
  const fresh = await owner.c.request('auth:linkProvider', { provider: 'google', idToken: await idToken(`g-${randomBytes(4).toString('hex')}`) });
  t.deepEqual(
    fresh.providers.map((p) => p.provider),
    ['google'],
  );
  t.true(
    await eventually(async () => heard.some((e) => e.type === 'auth:providerLinked' && e.data.provider === 'google' && e.data.via === 'link')),
    'auth:providerLinked on the personal stream',
  );

  // A stolen access token of an old sign-in (signed like the node's, auth_time an hour ago) cannot add a way in.
  const victim = await register();
  const now = Math.floor(Date.now() / 1000);
  const stolen = await new SignJWT({ sid: `s_${randomBytes(16).toString('base64url')}`, roles: ['user'], auth_time: now - 3600 })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(victim.userId)
    .setIssuer('flock')
    .setAudience('flock')
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(new Uint8Array(Buffer.from(requireEnv('JWT_SECRET'), 'base64')));
  const thief = await connect(stolen);
  const thiefIdentity = `g-${randomBytes(4).toString('hex')}`;
  t.is(await codeOf(thief.request('auth:linkProvider', { provider: 'google', idToken: await idToken(thiefIdentity) })), 'AUTH_REAUTH_REQUIRED');
  t.is(
    await codeOf(thief.request('auth:linkProvider', { provider: 'google', idToken: await idToken(thiefIdentity), password: 'a guess 1234' })),
    'AUTH_INVALID_CREDENTIALS',
  );
  const probe = await (await connect()).request('auth:signInWithProvider', { provider: 'google', idToken: await idToken(thiefIdentity) });
  t.true(probe.resolution === 'created' && probe.userId !== victim.userId, 'the identity was never linked to the victim');
  // The owner of that session, with the password, can.
  const linked = await thief.request('auth:linkProvider', {
    provider: 'google',
    idToken: await idToken(`g-${randomBytes(4).toString('hex')}`),
    password: PASSWORD,
  });
  t.deepEqual(
    linked.providers.map((p) => p.provider),
    ['google'],
  );
});
