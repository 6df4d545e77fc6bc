// Access and refresh tokens against the suite's real MongoDB (and Redis for
// revocations). Two token services on two connections stand for two nodes.
import test from 'ava';
import { type Redis } from 'ioredis';
import { SignJWT, decodeProtectedHeader, decodeJwt } from 'jose';
import type { Connection } from 'mongoose';
import { createHash, randomBytes } from 'node:crypto';
import { accountModel } from '../models/account.ts';
import { refreshTokenModel } from '../models/refresh-token.ts';
import { createAccountService, type Account, type AccountService } from '../auth/accounts.ts';
import { createRevocations } from '../auth/revocations.ts';
import { createTokenService, type TokenService, type TokenServiceDeps } from '../auth/tokens.ts';
import { FlockError } from '../kernel/errors.ts';
import '../kernel/mongo.ts';
import { testServices } from './helpers/services.ts';

const secret = randomBytes(32);
const services = testServices('auth_tokens');
const { prefix } = services;
let connection: Connection;
let otherNode: Connection;
let redis: Redis;
let accounts: AccountService;
let tokens: TokenService;
let tokensOnOtherNode: TokenService;

const service = (overrides: Partial<TokenServiceDeps> = {}, on: Connection = connection): TokenService =>
  createTokenService({
    connection: on,
    settings: { secret, issuer: 'flock-test', audience: 'flock-app' },
    lookupRoles: async (userId) => (await accounts.findById(userId))?.roles ?? null,
    ...overrides,
  });

test.before(async () => {
  connection = await services.mongo();
  otherNode = await services.mongo();
  redis = services.redis();
  accounts = createAccountService({ connection });
  await accounts.init();
  tokens = service();
  tokensOnOtherNode = service({}, otherNode);
  await tokens.init();
});
test.after.always(async () => {
  await services.cleanup();
});

let n = 0;
const newAccount = async (): Promise<Account> => {
  n += 1;
  return accounts.register({ username: `tok${n}`, email: `tok${n}@example.com`, password: 'token test pass 1' });
};
const codeOf = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err: unknown) => (err instanceof FlockError ? err.code : String(err)),
  );
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

test('a session gets an HS256 access token whose claims verify, and an opaque refresh token', async (t) => {
  const account = await newAccount();
  const session = await tokens.createSession(account.id, ['user', 'creator']);
  t.regex(session.sessionId, /^s_[A-Za-z0-9_-]{22}$/);
  t.regex(session.refreshToken, /^[A-Za-z0-9_-]{43}$/);
  t.deepEqual(decodeProtectedHeader(session.accessToken), { alg: 'HS256', typ: 'JWT' });
  t.like(decodeJwt(session.accessToken), { sub: account.id, sid: session.sessionId, roles: ['user', 'creator'], iss: 'flock-test', aud: 'flock-app' });
  t.true(Math.abs(session.expiresAt - (Date.now() + 900_000)) < 5_000, 'access TTL defaults to 900 s');
  t.deepEqual(await tokensOnOtherNode.verifyAccessToken(session.accessToken), {
    userId: account.id,
    sessionId: session.sessionId,
    roles: ['user', 'creator'],
    expiresAt: session.expiresAt,
    authTime: session.authTime,
  });
});

test('the refresh token is stored only as its SHA-256', async (t) => {
  const account = await newAccount();
  const session = await tokens.createSession(account.id, ['user']);
  const hash = createHash('sha256').update(session.refreshToken).digest('hex');
  const doc = await refreshTokenModel(connection).findById(hash).lean();
  t.like(doc, { family: session.sessionId, userId: account.id, rotatedAt: null, revokedAt: null });
  t.false(JSON.stringify(doc).includes(session.refreshToken));
});

test('an expired access token → AUTH_TOKEN_EXPIRED', async (t) => {
  const account = await newAccount();
  const past = service({ now: () => Date.now() - 3_600_000 });
  const { accessToken } = await past.createSession(account.id, ['user']);
  t.is(await codeOf(tokens.verifyAccessToken(accessToken)), 'AUTH_TOKEN_EXPIRED');
});

test('a token a few seconds past expiry is still accepted within the clock tolerance', async (t) => {
  const account = await newAccount();
  const { accessToken } = await service({ now: () => Date.now() - 902_000 }).createSession(account.id, ['user']);
  t.is(await codeOf(tokens.verifyAccessToken(accessToken)), 'ok');
});

test('forged, tampered and foreign tokens → AUTH_TOKEN_INVALID', async (t) => {
  const account = await newAccount();
  const { accessToken, sessionId } = await tokens.createSession(account.id, ['user']);
  const claims = {
    sub: account.id,
    sid: sessionId,
    roles: ['admin'],
    iss: 'flock-test',
    aud: 'flock-app',
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 600,
  };
  const sign = (alg: string, key: Uint8Array, payload: Record<string, unknown> = claims) => new SignJWT(payload).setProtectedHeader({ alg }).sign(key);
  const [head, body, signature] = accessToken.split('.') as [string, string, string];
  const cases: [string, string][] = [
    ['another secret', await sign('HS256', randomBytes(32))],
    ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`],
    ['HS512 with the right secret', await sign('HS512', secret)],
    ['HS384 with the right secret', await sign('HS384', secret)],
    ['a tampered payload', `${head}.${b64({ ...decodeJwt(accessToken), roles: ['admin'] })}.${signature}`],
    ['a stripped signature', `${head}.${body}.`],
    ['another issuer', await sign('HS256', secret, { ...claims, iss: 'someone-else' })],
    ['another audience', await sign('HS256', secret, { ...claims, aud: 'other-app' })],
    ['no session id', await sign('HS256', secret, { ...claims, sid: undefined })],
    ['an unknown role', await sign('HS256', secret, { ...claims, roles: ['root'] })],
    ['an expired token with another secret', await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(1).sign(randomBytes(32))],
    ['garbage', 'not.a.jwt'],
    ['empty', ''],
  ];
  for (const [label, token] of cases) t.is(await codeOf(tokens.verifyAccessToken(token)), 'AUTH_TOKEN_INVALID', label);
  t.is(await codeOf(tokens.verifyAccessToken(await sign('HS256', secret))), 'ok', 'the same claims, properly signed, pass');
});

test('a secret shorter than 32 bytes is a configuration error', (t) => {
  const err = t.throws(() => createTokenService({ connection, settings: { secret: randomBytes(31) }, lookupRoles: async () => null }), {
    instanceOf: FlockError,
  });
  t.is(err?.code, 'CONFIG_INVALID');
});

test('refresh rotates: a new pair in the same session, and the old refresh token is spent', async (t) => {
  const account = await newAccount();
  const first = await tokens.createSession(account.id, ['user']);
  const second = await tokensOnOtherNode.refresh(first.refreshToken);
  t.is(second.sessionId, first.sessionId);
  t.is(second.userId, account.id);
  t.not(second.refreshToken, first.refreshToken);
  t.is((await tokens.verifyAccessToken(second.accessToken)).sessionId, first.sessionId);
  const third = await tokens.refresh(second.refreshToken);
  t.is(third.sessionId, first.sessionId);
  const family = await refreshTokenModel(connection).find({ family: first.sessionId }).lean();
  t.is(family.length, 3);
  t.is(family.filter((d) => d.rotatedAt !== null).length, 2);
});

test('reusing a rotated refresh token → AUTH_REFRESH_REUSED and the whole family is revoked', async (t) => {
  const account = await newAccount();
  const first = await tokens.createSession(account.id, ['user']);
  const second = await tokens.refresh(first.refreshToken);
  t.is(await codeOf(tokens.refresh(first.refreshToken)), 'AUTH_REFRESH_REUSED');
  t.is(await codeOf(tokens.refresh(second.refreshToken)), 'AUTH_REFRESH_INVALID', 'the newest token of the family fails too');
  t.is(await codeOf(tokens.refresh(first.refreshToken)), 'AUTH_REFRESH_REUSED', 'and the reused one stays refused');
  t.is(await refreshTokenModel(connection).countDocuments({ family: first.sessionId, revokedAt: null }), 0);
});

test('concurrent refreshes of one token on two nodes: exactly one wins, the other is reuse and revokes the session', async (t) => {
  const account = await newAccount();
  for (let round = 0; round < 5; round++) {
    const session = await tokens.createSession(account.id, ['user']);
    const outcomes = await Promise.allSettled([tokens.refresh(session.refreshToken), tokensOnOtherNode.refresh(session.refreshToken)]);
    const won = outcomes.filter((o): o is PromiseFulfilledResult<Awaited<ReturnType<TokenService['refresh']>>> => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    t.is(won.length, 1, `round ${round}`);
    t.is((lost[0]?.reason as FlockError).code, 'AUTH_REFRESH_REUSED');
    t.is(await codeOf(tokens.refresh(won[0]!.value.refreshToken)), 'AUTH_REFRESH_INVALID', "the winner's token was revoked with its family");
    t.is(await refreshTokenModel(connection).countDocuments({ family: session.sessionId }), 2, "the loser's unsent token was removed");
  }
});

for (const [label, token] of [
  ['an unknown token', randomBytes(32).toString('base64url')],
  ['a malformed token', 'short'],
  ['an operator object', { $ne: null }],
] as const) {
  test(`refresh with ${label} → AUTH_REFRESH_INVALID`, async (t) => {
    t.is(await codeOf(tokens.refresh(token as string)), 'AUTH_REFRESH_INVALID');
  });
}

test('refresh with an expired refresh token → AUTH_REFRESH_INVALID', async (t) => {
  const account = await newAccount();
  const session = await tokens.createSession(account.id, ['user']);
  const later = service({ now: () => Date.now() + 31 * 24 * 3_600_000 });
  t.is(await codeOf(later.refresh(session.refreshToken)), 'AUTH_REFRESH_INVALID');
  t.is(await codeOf(tokens.refresh(session.refreshToken)), 'ok', 'nothing was spent');
});

test('the access token carries when the user signed in (auth_time), and refreshing keeps it instead of renewing it', async (t) => {
  const account = await newAccount();
  const signedInAt = Date.now() - 3_600_000;
  const session = await service({ now: () => signedInAt }).createSession(account.id, ['user']);
  t.is(session.authTime, Math.floor(signedInAt / 1000) * 1000);
  t.is(decodeJwt(session.accessToken).auth_time, Math.floor(signedInAt / 1000));
  const refreshed = await tokens.refresh(session.refreshToken);
  t.is(refreshed.authTime, session.authTime, 'a refresh is not a sign-in');
  t.is((await tokensOnOtherNode.verifyAccessToken(refreshed.accessToken)).authTime, session.authTime);
  const again = await tokensOnOtherNode.refresh(refreshed.refreshToken);
  t.is(again.authTime, session.authTime, 'nor is the next one');
});

test('a token without auth_time (signed before it was recorded) reads as never signed in recently', async (t) => {
  const account = await newAccount();
  const old = await new SignJWT({ sid: 's_oldtoken0000000000000', roles: ['user'] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(account.id)
    .setIssuer('flock-test')
    .setAudience('flock-app')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(secret);
  t.is((await tokens.verifyAccessToken(old)).authTime, 0);
  const legacyRefresh = await tokens.createSession(account.id, ['user']);
  const hash = createHash('sha256').update(legacyRefresh.refreshToken).digest('hex');
  await refreshTokenModel(connection).updateOne({ _id: hash }, { $unset: { authTime: 1 } });
  t.is((await tokens.refresh(legacyRefresh.refreshToken)).authTime, 0);
});

test('a refreshed access token carries the roles the account has now', async (t) => {
  const account = await newAccount();
  const session = await tokens.createSession(account.id, ['user']);
  await accounts.setRoles(account.id, ['user', 'moderator']);
  const next = await tokens.refresh(session.refreshToken);
  t.deepEqual(next.roles, ['user', 'moderator']);
  t.deepEqual((await tokens.verifyAccessToken(next.accessToken)).roles, ['user', 'moderator']);
});

test('the session of a deleted account cannot be refreshed', async (t) => {
  const account = await newAccount();
  const session = await tokens.createSession(account.id, ['user']);
  await accountModel(connection).deleteOne({ _id: account.id });
  t.is(await codeOf(tokens.refresh(session.refreshToken)), 'AUTH_REFRESH_INVALID');
  t.is(await refreshTokenModel(connection).countDocuments({ family: session.sessionId, revokedAt: null }), 0);
});

test('revokeSession ends one session; only its owner may end it when userId is given', async (t) => {
  const [alice, mallory] = [await newAccount(), await newAccount()];
  const kept = await tokens.createSession(alice.id, ['user']);
  const ended = await tokens.createSession(alice.id, ['user']);
  t.false(await tokens.revokeSession(ended.sessionId, { userId: mallory.id }), 'not her session');
  t.is(await codeOf(tokens.refresh(ended.refreshToken)), 'ok', 'still alive');
  t.true(await tokens.revokeSession(ended.sessionId, { userId: alice.id }));
  t.false(await tokens.revokeSession(ended.sessionId), 'already revoked');
  t.is(await refreshTokenModel(connection).countDocuments({ family: ended.sessionId, revokedAt: null }), 0);
  t.is(await codeOf(tokens.refresh(kept.refreshToken)), 'ok', 'the other session is untouched');
});

test('revokeAllSessions revokes every family of the user and returns their ids', async (t) => {
  const [user, other] = [await newAccount(), await newAccount()];
  const sessions = [
    await tokens.createSession(user.id, ['user']),
    await tokens.createSession(user.id, ['user']),
    await tokens.createSession(user.id, ['user']),
  ];
  const rotated = await tokens.refresh(sessions[0]!.refreshToken);
  const unrelated = await tokens.createSession(other.id, ['user']);
  const revoked = await tokens.revokeAllSessions(user.id);
  t.deepEqual([...revoked].sort(), sessions.map((s) => s.sessionId).sort());
  for (const token of [rotated.refreshToken, sessions[1]!.refreshToken, sessions[2]!.refreshToken])
    t.is(await codeOf(tokens.refresh(token)), 'AUTH_REFRESH_INVALID');
  t.is(await codeOf(tokens.refresh(unrelated.refreshToken)), 'ok');
  t.deepEqual(await tokens.revokeAllSessions(user.id), [], 'nothing left to revoke');
});

test('with revocations, a revoked session is announced and its access tokens are refused on every node', async (t) => {
  const revocations = createRevocations({ redis, connection, settings: { prefix } });
  const a = service({ revocations });
  const b = service({ revocations: createRevocations({ redis, connection: otherNode, settings: { prefix } }) }, otherNode);
  const account = await newAccount();
  const signedOut = await a.createSession(account.id, ['user']);
  const stolen = await a.createSession(account.id, ['user']);
  await b.refresh(stolen.refreshToken);

  await a.revokeSession(signedOut.sessionId);
  t.is(await codeOf(b.verifyAccessToken(signedOut.accessToken)), 'AUTH_SESSION_REVOKED');
  const ttl = await redis.ttl(`${prefix}:revoked:${signedOut.sessionId}`);
  t.true(ttl > 890 && ttl <= 905, `revocation kept for the access TTL: ${ttl}`);

  t.is(await codeOf(a.refresh(stolen.refreshToken)), 'AUTH_REFRESH_REUSED');
  t.is(await codeOf(b.verifyAccessToken(stolen.accessToken)), 'AUTH_SESSION_REVOKED', 'reuse detection revokes the access tokens too');
  t.is(await codeOf(tokens.verifyAccessToken(stolen.accessToken)), 'ok', 'a service without revocations checks signatures only');
});

test('purgeExpired deletes only expired refresh tokens', async (t) => {
  const account = await newAccount();
  const old = await service({ now: () => Date.now() - 40 * 24 * 3_600_000 }).createSession(account.id, ['user']);
  const live = await tokens.createSession(account.id, ['user']);
  t.true((await tokens.purgeExpired()) >= 1);
  const model = refreshTokenModel(connection);
  t.is(await model.countDocuments({ family: old.sessionId }), 0);
  t.is(await model.countDocuments({ family: live.sessionId }), 1);
});
