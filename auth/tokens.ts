// Sessions and their tokens. A sign-in opens a session (its id is the family
// of its refresh tokens) and gets two tokens:
//   - an access token: a short-lived JWT (HS256, pinned on both sides) that
//     any node verifies without a database, carrying the user id, the session
//     id, the roles and `auth_time`, when the user last proved who they are
//     (a password or a provider sign-in; refreshing carries it over), which
//     sensitive changes check (auth/recent-auth.ts);
//   - a refresh token: 32 random bytes, stored only as its SHA-256
//     (models/refresh-token.ts), exchanged once for a new pair.
// Rotation makes a stolen refresh token detectable: each one works once, and
// a rotated token presented again revokes its whole family, so the thief and
// the victim are both signed out and the victim signs in again.
//
// Every state change is one single-document operation (FerretDB v1 has no
// transactions). refresh() inserts the next token before it marks the
// presented one rotated: whoever loses the race for the presented token finds
// it rotated and revokes the family, and since the winner's next token already
// exists by then, the revocation covers it too. The loser's own next token was
// never handed out and is deleted.
import { createHash, randomBytes } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';
import mongoose, { type Connection } from 'mongoose';
import { z } from 'zod';
import { ACCOUNT_ROLES, type AccountRole } from '../models/account.ts';
import { refreshTokenModel, type RefreshTokenDoc } from '../models/refresh-token.ts';
import { FlockError } from '../kernel/errors.ts';
import { parseInput } from '../kernel/zod-issues.ts';
import type { Revocations } from './revocations.ts';
import { userIdInput } from '../kernel/ids.ts';

export interface TokenSettings {
  /** HMAC key for access tokens: at least 32 random bytes, shared by every node. */
  readonly secret: Uint8Array;
  /** `iss` claim, set and required. */
  readonly issuer: string;
  /** `aud` claim, set and required. */
  readonly audience: string;
  readonly accessTtlSeconds: number;
  /** Lifetime of each refresh token; a session lasts while it is refreshed within this. */
  readonly refreshTtlSeconds: number;
  /** Allowed clock skew between nodes when checking `exp`, `iat`. */
  readonly clockToleranceSeconds: number;
}

export const DEFAULT_TOKEN_SETTINGS: Omit<TokenSettings, 'secret'> = {
  issuer: 'flock',
  audience: 'flock',
  accessTtlSeconds: 900,
  refreshTtlSeconds: 30 * 24 * 3600,
  clockToleranceSeconds: 5,
};

/** What a valid access token says; the shape of a socket's Session (channels/define.ts). */
export interface AccessClaims {
  userId: string;
  sessionId: string;
  roles: AccountRole[];
  /** Access token expiry, epoch ms. */
  expiresAt: number;
  /** When the session's user last signed in with a password or a provider, epoch ms (0: unknown, a token signed before auth times were recorded). */
  authTime: number;
}

export interface IssuedSession extends AccessClaims {
  accessToken: string;
  refreshToken: string;
  /** Refresh token expiry, epoch ms. */
  refreshExpiresAt: number;
}

/** The account's current roles, or null if the account is gone. */
export type RolesLookup = (userId: string) => Promise<readonly AccountRole[] | null>;

export interface TokenService {
  init(): Promise<void>;
  /** A new session for a user who just proved who they are (its auth time is now). */
  createSession(userId: string, roles: readonly AccountRole[]): Promise<IssuedSession>;
  /**
   * Exchanges a refresh token for a new pair in the same session, with the
   * account's current roles. AUTH_REFRESH_REUSED (and the session revoked)
   * for a token already exchanged; AUTH_REFRESH_INVALID for anything else
   * that is not a live token.
   */
  refresh(refreshToken: string): Promise<IssuedSession>;
  /**
   * AUTH_TOKEN_EXPIRED for a genuine token past its expiry, AUTH_TOKEN_INVALID
   * for anything else wrong, AUTH_SESSION_REVOKED for a revoked session (when
   * revocations are configured).
   */
  verifyAccessToken(token: string): Promise<AccessClaims>;
  /** Revokes every refresh token of the session (only the user's, if userId is given). True if any was live. */
  revokeSession(sessionId: string, options?: { userId?: string }): Promise<boolean>;
  /** Revokes every live session of the user; returns their ids. */
  revokeAllSessions(userId: string): Promise<string[]>;
  /** Deletes expired refresh tokens (FerretDB has no TTL index); returns how many. For the housekeeping job. */
  purgeExpired(): Promise<number>;
}

export interface TokenServiceDeps {
  connection: Connection;
  settings: Partial<Omit<TokenSettings, 'secret'>> & { secret: Uint8Array };
  lookupRoles: RolesLookup;
  /** When given, revoked sessions are announced to every node and verifyAccessToken refuses them. */
  revocations?: Pick<Revocations, 'revoke' | 'isRevoked'>;
  /** Epoch ms; tests move it. */
  now?: () => number;
}

export function createTokenService(deps: TokenServiceDeps): TokenService {
  const settings = parseSettings({ ...DEFAULT_TOKEN_SETTINGS, ...deps.settings });
  const model = refreshTokenModel(deps.connection);
  const now = deps.now ?? Date.now;
  const { secret } = settings;

  async function signAccess(userId: string, sessionId: string, roles: readonly AccountRole[], authTime: number): Promise<{ token: string; expiresAt: number }> {
    const issuedAt = Math.floor(now() / 1000);
    const expiresAt = issuedAt + settings.accessTtlSeconds;
    const token = await new SignJWT({ sid: sessionId, roles: [...roles], auth_time: Math.floor(authTime / 1000) })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(settings.issuer)
      .setAudience(settings.audience)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(secret);
    return { token, expiresAt: expiresAt * 1000 };
  }

  /** Stores a new refresh token of the family; the plaintext exists only in the return value. */
  async function insertRefresh(family: string, userId: string, at: Date, authTime: Date): Promise<{ token: string; hash: string; expiresAt: Date }> {
    const token = randomBytes(32).toString('base64url');
    const hash = sha256(token);
    const expiresAt = new Date(at.getTime() + settings.refreshTtlSeconds * 1000);
    const doc: RefreshTokenDoc = { _id: hash, family, userId, createdAt: at, expiresAt, rotatedAt: null, revokedAt: null, authTime };
    await model.create(doc);
    return { token, hash, expiresAt };
  }

  async function issue(
    userId: string,
    sessionId: string,
    roles: readonly AccountRole[],
    authTime: number,
    refresh: { token: string; expiresAt: Date },
  ): Promise<IssuedSession> {
    // Whole seconds, as the token carries it, so the issued session and its verified token agree.
    const authTimeMs = Math.floor(authTime / 1000) * 1000;
    const access = await signAccess(userId, sessionId, roles, authTimeMs);
    return {
      userId,
      sessionId,
      roles: [...roles],
      authTime: authTimeMs,
      accessToken: access.token,
      expiresAt: access.expiresAt,
      refreshToken: refresh.token,
      refreshExpiresAt: refresh.expiresAt.getTime(),
    };
  }

  async function revokeFamilies(filter: Record<string, unknown>): Promise<{ sessionIds: string[]; modified: number }> {
    // The revocation time doubles as this operation's mark, to read back
    // exactly the families it revoked (another revocation in the same
    // millisecond can only add ids, which is harmless).
    const revokedAt = new Date(now());
    const result = await model.updateMany({ ...filter, revokedAt: null }, { $set: { revokedAt } });
    if (result.modifiedCount === 0) return { sessionIds: [], modified: 0 };
    const sessionIds = (await model.distinct('family', { ...filter, revokedAt })).map(String);
    return { sessionIds, modified: result.modifiedCount };
  }

  async function announce(sessionIds: string[]): Promise<void> {
    if (!deps.revocations || sessionIds.length === 0) return;
    // Long enough to outlive any access token of these sessions, skew included.
    await deps.revocations.revoke(sessionIds, settings.accessTtlSeconds + settings.clockToleranceSeconds);
  }

  async function reused(family: string): Promise<never> {
    await revokeFamilies({ family });
    await announce([family]);
    throw new FlockError('AUTH_REFRESH_REUSED');
  }

  return {
    async init() {
      await model.init();
    },

    async createSession(userId, roles) {
      const id = parseInput(userIdInput, userId, 'user id');
      const validRoles = parseInput(rolesSchema, roles, 'roles');
      const sessionId = `s_${randomBytes(16).toString('base64url')}`;
      const at = new Date(now());
      const refresh = await insertRefresh(sessionId, id, at, at);
      return issue(id, sessionId, validRoles, at.getTime(), refresh);
    },

    async refresh(refreshToken) {
      if (typeof refreshToken !== 'string' || !REFRESH_TOKEN.test(refreshToken)) throw new FlockError('AUTH_REFRESH_INVALID');
      const hash = sha256(refreshToken);
      const at = new Date(now());
      const presented = await model.findById(hash).lean<RefreshTokenDoc>();
      if (!presented) throw new FlockError('AUTH_REFRESH_INVALID');
      // Reuse wins over expiry and revocation: a rotated token coming back is
      // the signal, whatever else became of its family.
      if (presented.rotatedAt !== null) return reused(presented.family);
      if (presented.revokedAt !== null || presented.expiresAt.getTime() <= at.getTime()) throw new FlockError('AUTH_REFRESH_INVALID');

      const roles = await deps.lookupRoles(presented.userId);
      if (!roles) {
        await revokeFamilies({ family: presented.family });
        await announce([presented.family]);
        throw new FlockError('AUTH_REFRESH_INVALID', 'the account no longer exists');
      }
      // Tokens stored before auth times were recorded have none: unknown, never recent.
      const authTime = presented.authTime ?? new Date(0);
      const next = await insertRefresh(presented.family, presented.userId, at, authTime);
      const claimed = await model
        .findOneAndUpdate(
          { _id: hash, rotatedAt: null, revokedAt: null, expiresAt: mongoose.trusted({ $gt: at }) },
          { $set: { rotatedAt: at } },
          { returnDocument: 'before' },
        )
        .lean<RefreshTokenDoc>();
      if (!claimed) {
        await model.deleteOne({ _id: next.hash });
        const after = await model.findById(hash).lean<RefreshTokenDoc>();
        if (after?.rotatedAt) return reused(after.family);
        throw new FlockError('AUTH_REFRESH_INVALID');
      }
      return issue(presented.userId, presented.family, parseInput(rolesSchema, roles, 'roles'), authTime.getTime(), next);
    },

    async verifyAccessToken(token) {
      if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw new FlockError('AUTH_TOKEN_INVALID');
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, secret, {
          algorithms: ['HS256'],
          issuer: settings.issuer,
          audience: settings.audience,
          clockTolerance: settings.clockToleranceSeconds,
          currentDate: new Date(now()),
          requiredClaims: ['sub', 'sid', 'exp', 'iat'],
        }));
      } catch (err) {
        if (err instanceof errors.JWTExpired) throw new FlockError('AUTH_TOKEN_EXPIRED', undefined, { cause: err });
        throw new FlockError('AUTH_TOKEN_INVALID', undefined, { cause: err });
      }
      const claims = accessPayload.safeParse(payload);
      if (!claims.success) throw new FlockError('AUTH_TOKEN_INVALID', 'the access token claims are malformed');
      const { sub, sid, roles, exp, auth_time: authTime } = claims.data;
      if (deps.revocations && (await deps.revocations.isRevoked(sid))) throw new FlockError('AUTH_SESSION_REVOKED');
      return { userId: sub, sessionId: sid, roles, expiresAt: exp * 1000, authTime: authTime * 1000 };
    },

    async revokeSession(sessionId, options = {}) {
      const sid = parseInput(sessionIdInput, sessionId, 'session id');
      const owner = options.userId === undefined ? {} : { userId: parseInput(userIdInput, options.userId, 'user id') };
      const { modified } = await revokeFamilies({ family: sid, ...owner });
      // Announced even when nothing was live: a retry after a failed announcement must get through.
      if (modified > 0 || options.userId === undefined) await announce([sid]);
      return modified > 0;
    },

    async revokeAllSessions(userId) {
      const id = parseInput(userIdInput, userId, 'user id');
      // Families whose every token has expired cannot mint access tokens any
      // more, so only live tokens are revoked (and announced).
      const { sessionIds } = await revokeFamilies({ userId: id, expiresAt: mongoose.trusted({ $gt: new Date(now()) }) });
      await announce(sessionIds);
      return sessionIds;
    },

    async purgeExpired() {
      const result = await model.deleteMany({ expiresAt: mongoose.trusted({ $lte: new Date(now()) }) });
      return result.deletedCount;
    },
  };
}

const REFRESH_TOKEN = /^[A-Za-z0-9_-]{43}$/;
const MAX_TOKEN_LENGTH = 8192;
const sessionIdInput = z.string().regex(/^s_[A-Za-z0-9_-]{1,64}$/, 'is not a session id');
const rolesSchema = z.array(z.enum(ACCOUNT_ROLES)).max(ACCOUNT_ROLES.length * 2);

const accessPayload = z.object({
  sub: userIdInput,
  sid: sessionIdInput,
  roles: rolesSchema,
  exp: z.number().int(),
  iat: z.number().int(),
  /** Absent from tokens signed before auth times were recorded: unknown, never recent. */
  auth_time: z.number().int().min(0).default(0),
});

const settingsSchema = z.object({
  secret: z.instanceof(Uint8Array).refine((s) => s.byteLength >= 32, 'must be at least 32 bytes'),
  issuer: z.string().min(1),
  audience: z.string().min(1),
  accessTtlSeconds: z.number().int().min(1),
  refreshTtlSeconds: z.number().int().min(1),
  clockToleranceSeconds: z.number().int().min(0),
});

function parseSettings(input: unknown): TokenSettings {
  return parseInput(settingsSchema, input, 'token settings', 'CONFIG_INVALID');
}

function sha256(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
