// Provider sign-in through a real node: OAUTH_CONFIG points Google at a local
// OAuth2/OIDC server (oauth2-mock-server); an app signs in over the socket
// with a Google ID token, gets a session and a profile, and a second sign-in
// finds the same account.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { OAuth2Server } from 'oauth2-mock-server';
import { codeOf } from './helpers/outcome.ts';
import { startNodeProcess } from './helpers/node-process.ts';
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
