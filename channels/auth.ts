// auth: accounts and sessions over the socket. Registering, signing in and
// refreshing also sign the calling socket in, so an app never has to
// reconnect to change identity; the access token expires after
// ACCESS_TOKEN_TTL_SECONDS and the socket is told (`auth:expired`) so it can
// refresh in place.
import { z } from 'zod';
import { UserActor } from '../actors/user.ts';
import type { IssuedSession } from '../server/auth/tokens.ts';
import { emailInput, usernameInput } from '../server/auth/accounts.ts';
import { defineChannel, defineEvent, ROLES, type EventContext, type Session } from './define.ts';

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
      summary: 'Creates an account with a password (argon2id) and signs this socket in.',
      access: { public: true },
      rateLimit: { capacity: 5, perSecond: 0.05 },
      maxBytes: 2048,
      request: z.object({ username: usernameInput, email: emailInput, password: z.string().max(256), displayName: z.string().trim().min(1).max(50).optional() }).strict(),
      ack: signedIn,
      handler: async (ctx, { username, email, password, displayName }) => {
        const account = await ctx.services.accounts.register({ username, email, password });
        await ctx.services.actors.ref(UserActor, account.id).ask('create', { username: account.displayUsername, displayName: displayName ?? account.displayUsername });
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
        await ctx.services.deliver(account.id, 'security.signed_in', { sessionId: issued.sessionId, ip: ctx.ip });
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
      access: { roles: ROLES },
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
      access: { roles: ROLES },
      rateLimit: { capacity: 5, perSecond: 1 },
      maxBytes: 64,
      request: z.object({}).strict(),
      ack: z.object({ revokedSessions: z.number().int() }),
      handler: async (ctx) => {
        const { userId } = ctx.session;
        ctx.setSession(undefined);
        const revoked = await ctx.services.tokens.revokeAllSessions(userId);
        await ctx.services.deliver(userId, 'security.signed_out_everywhere', { sessions: revoked.length });
        return { revokedSessions: revoked.length };
      },
    }),
  },
});

function signIn(ctx: EventContext, username: string, issued: IssuedSession) {
  const session: Session = { userId: issued.userId, sessionId: issued.sessionId, roles: issued.roles, expiresAt: issued.expiresAt };
  ctx.setSession(session);
  return {
    userId: issued.userId,
    username,
    roles: issued.roles,
    tokens: { accessToken: issued.accessToken, refreshToken: issued.refreshToken, expiresAt: issued.expiresAt, refreshExpiresAt: issued.refreshExpiresAt },
  };
}
