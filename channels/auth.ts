// auth: accounts and sessions over the socket. Registering, signing in and
// refreshing also sign the calling socket in, so an app never has to
// reconnect to change identity; the access token expires after
// ACCESS_TOKEN_TTL_SECONDS and the socket is told (`auth:expired`) so it can
// refresh in place.
import { z } from 'zod';
import { displayName, UserActor } from '../actors/contracts/user.ts';
import type { IssuedSession } from '../auth/tokens.ts';
import { emailInput, usernameInput } from '../auth/accounts.ts';
import { FlockError } from '../kernel/errors.ts';
import { defineChannel, defineEvent, ROLES, type EventContext, type Session, SIGNED_IN } from './define.ts';

const tokens = z.object({
  accessToken: z.string(),
  refreshToken: z.string(),
  /** Access token expiry, epoch ms. */
  expiresAt: z.number().int(),
  refreshExpiresAt: z.number().int(),
});
const signedIn = z.object({ userId: z.string(), username: z.string(), roles: z.array(z.enum(ROLES)), tokens });
const signInLimit = { capacity: 10, perSecond: 0.2 };

export const authChannel = defineChannel({
  name: 'auth',
  description: 'Registration, sign-in, token refresh and sign-out.',
  events: {
    register: defineEvent({
      summary:
        'Creates an account with a password (argon2id) and signs this socket in. Throttled per IP (AUTH_THROTTLED); a taken username or email is AUTH_IDENTITY_TAKEN.',
      access: { public: true },
      rateLimit: { capacity: 5, perSecond: 0.05 },
      maxBytes: 2048,
      request: z.object({ username: usernameInput, email: emailInput, password: z.string().max(256), displayName: displayName.optional() }).strict(),
      ack: signedIn,
      handler: async (ctx, { username, email, password, displayName }) => {
        const account = await ctx.services.registration.register({ username, email, password, ip: ctx.ip });
        await ctx.services.actors
          .ref(UserActor, account.id)
          .ask('create', { username: account.displayUsername, displayName: displayName ?? account.displayUsername });
        const issued = await ctx.services.tokens.createSession(account.id, account.roles);
        return signIn(ctx, account.displayUsername, issued);
      },
    }),
    login: defineEvent({
      summary: 'Signs in with a username or email and a password, and signs this socket in. Throttled per account and per IP.',
      access: { public: true },
      rateLimit: signInLimit,
      maxBytes: 2048,
      request: z.object({ identifier: z.string().min(1).max(320), password: z.string().max(4096) }).strict(),
      ack: signedIn,
      handler: async (ctx, { identifier, password }) => {
        const account = await ctx.services.login.authenticate({ identifier, password, ip: ctx.ip });
        const issued = await ctx.services.tokens.createSession(account.id, account.roles);
        await ctx.services.deliver(account.id, 'auth:signedIn', { sessionId: issued.sessionId, ip: ctx.ip });
        return signIn(ctx, account.displayUsername, issued);
      },
    }),
    refresh: defineEvent({
      summary:
        'Exchanges a refresh token for a new token pair (rotation) and re-signs this socket in place. ' +
        'Presenting a refresh token twice revokes its whole session (AUTH_REFRESH_REUSED).',
      access: { public: true },
      rateLimit: signInLimit,
      maxBytes: 1024,
      request: z.object({ refreshToken: z.string().min(16).max(512) }).strict(),
      ack: signedIn,
      handler: async (ctx, { refreshToken }) => {
        const issued = await ctx.services.tokens.refresh(refreshToken);
        const account = await ctx.services.accounts.findById(issued.userId);
        return signIn(ctx, account?.displayUsername ?? '', issued);
      },
    }),
    signInWithProvider: defineEvent({
      summary:
        'Mobile sign-in with a provider SDK token: a Google ID token, or a Google/Facebook access token (checked to be issued to this app). ' +
        'Signs in to the linked account, or links a matching account whose email both sides verified, or creates one; signs this socket in.',
      access: { public: true },
      rateLimit: signInLimit,
      maxBytes: 8192,
      request: z
        .object({
          provider: z.enum(['google', 'facebook', 'twitter']),
          idToken: z.string().min(16).max(8000).optional(),
          accessToken: z.string().min(8).max(4000).optional(),
        })
        .strict()
        .refine((r) => (r.idToken === undefined) !== (r.accessToken === undefined), 'send exactly one of idToken and accessToken'),
      ack: signedIn.extend({ resolution: z.enum(['existing', 'linked', 'created']) }),
      handler: async (ctx, { provider, idToken, accessToken }) => {
        const oauth = ctx.services.oauth;
        if (!oauth) throw new FlockError('AUTH_OAUTH_FAILED', 'no sign-in provider is configured on this server');
        const result = await oauth.signInWithToken(provider, idToken !== undefined ? { idToken } : { accessToken });
        const { account } = result;
        await ctx.services.actors.ref(UserActor, account.id).ask('create', { username: account.displayUsername, displayName: account.displayUsername });
        return { ...signIn(ctx, account.displayUsername, result.session), resolution: result.resolution };
      },
    }),
    startLink: defineEvent({
      summary:
        'Starts a browser flow that links a provider to the signed-in account; open the returned URL. The callback returns a link code for auth:linkProvider.',
      access: SIGNED_IN,
      rateLimit: { capacity: 5, perSecond: 0.2 },
      maxBytes: 1024,
      request: z.object({ provider: z.enum(['google', 'facebook', 'twitter']), returnTo: z.string().max(512).optional() }).strict(),
      ack: z.object({ url: z.string(), expiresInSeconds: z.number().int() }),
      handler: async (ctx, { provider, returnTo }) => {
        const oauth = ctx.services.oauth;
        if (!oauth) throw new FlockError('AUTH_OAUTH_FAILED', 'no sign-in provider is configured on this server');
        const started = await oauth.start(provider, { linkUserId: ctx.session.userId, ...(returnTo !== undefined && { returnTo }) });
        return { url: started.url, expiresInSeconds: started.expiresInSeconds };
      },
    }),
    linkProvider: defineEvent({
      summary:
        'Links a provider identity to the signed-in account, with the link code a flow started by auth:startLink returned, or with an SDK token. ' +
        'Needs a sign-in within AUTH_REAUTH_MAX_AGE_SECONDS or the password (AUTH_REAUTH_REQUIRED); the user gets an auth:providerLinked stream event.',
      access: SIGNED_IN,
      rateLimit: { capacity: 5, perSecond: 0.2 },
      maxBytes: 8192,
      request: z
        .object({
          provider: z.enum(['google', 'facebook', 'twitter']),
          linkCode: z.string().min(8).max(200).optional(),
          idToken: z.string().min(16).max(8000).optional(),
          accessToken: z.string().min(8).max(4000).optional(),
          /** The account's password, when the session's sign-in is older than AUTH_REAUTH_MAX_AGE_SECONDS. */
          password: z.string().max(4096).optional(),
        })
        .strict(),
      ack: z.object({ providers: z.array(z.object({ provider: z.string(), subject: z.string() })) }),
      handler: async (ctx, { provider, password, ...credential }) => {
        const oauth = ctx.services.oauth;
        if (!oauth) throw new FlockError('AUTH_OAUTH_FAILED', 'no sign-in provider is configured on this server');
        // Before the link code is spent, so the app can retry with the password.
        await ctx.services.recentAuth.require(ctx.session, { password, ip: ctx.ip });
        const account = await oauth.link(ctx.session.userId, provider, credential);
        return { providers: account.providers.map((p) => ({ provider: p.provider, subject: p.subject })) };
      },
    }),
    reauthenticate: defineEvent({
      summary: 'Signs this socket in with an access token (e.g. one refreshed over HTTP or on another socket).',
      access: { public: true },
      rateLimit: signInLimit,
      maxBytes: 4096,
      request: z.object({ accessToken: z.string().min(16).max(4096) }).strict(),
      ack: z.object({ userId: z.string(), roles: z.array(z.enum(ROLES)), expiresAt: z.number().int() }),
      handler: async (ctx, { accessToken }) => {
        const claims = await ctx.services.tokens.verifyAccessToken(accessToken);
        ctx.setSession(claims);
        return { userId: claims.userId, roles: claims.roles, expiresAt: claims.expiresAt };
      },
    }),
    logout: defineEvent({
      summary: 'Revokes this session on every node; this socket stays connected, signed out.',
      access: SIGNED_IN,
      rateLimit: { capacity: 5, perSecond: 1 },
      maxBytes: 64,
      request: z.object({}).strict(),
      ack: z.object({}),
      handler: async (ctx) => {
        const { sessionId, userId } = ctx.session;
        ctx.setSession(undefined);
        await ctx.services.tokens.revokeSession(sessionId, { userId });
        return {};
      },
    }),
    logoutAll: defineEvent({
      summary: 'Revokes every session of the user on every node ("log out everywhere"); other sockets are disconnected at once.',
      access: SIGNED_IN,
      rateLimit: { capacity: 5, perSecond: 1 },
      maxBytes: 64,
      request: z.object({}).strict(),
      ack: z.object({ revokedSessions: z.number().int() }),
      handler: async (ctx) => {
        const { userId } = ctx.session;
        ctx.setSession(undefined);
        const revoked = await ctx.services.tokens.revokeAllSessions(userId);
        await ctx.services.deliver(userId, 'auth:signedOutEverywhere', { sessions: revoked.length });
        return { revokedSessions: revoked.length };
      },
    }),
  },
});

function signIn(ctx: EventContext, username: string, issued: IssuedSession) {
  const session: Session = {
    userId: issued.userId,
    sessionId: issued.sessionId,
    roles: issued.roles,
    expiresAt: issued.expiresAt,
    authTime: issued.authTime,
  };
  ctx.setSession(session);
  return {
    userId: issued.userId,
    username,
    roles: issued.roles,
    tokens: { accessToken: issued.accessToken, refreshToken: issued.refreshToken, expiresAt: issued.expiresAt, refreshExpiresAt: issued.refreshExpiresAt },
  };
}
