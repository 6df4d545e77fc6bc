// Refresh tokens: one document per token ever issued, keyed by the SHA-256 of
// the token so a database leak yields nothing usable. Tokens of one sign-in
// form a family (the session id); each refresh marks the presented token
// rotated and adds the next one, so a rotated token that comes back is proof
// of theft or a client bug, and the family is revoked (auth/tokens.ts).
//
// No TTL index: FerretDB v1 does not implement `expireAfterSeconds`. Expired
// documents are deleted by the housekeeping job (jobs/housekeeping.ts), or by
// purgeExpired() in auth/tokens.ts.
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

export const REFRESH_TOKEN_COLLECTION = 'refresh_tokens';

export interface RefreshTokenDoc {
  /** SHA-256 of the token, hex. */
  _id: string;
  /** The session id: shared by every token of one sign-in. */
  family: string;
  userId: string;
  createdAt: Date;
  expiresAt: Date;
  /** Set once, when the token is exchanged for the next one. */
  rotatedAt: Date | null;
  /** Set on every token of the family when the session is revoked. */
  revokedAt: Date | null;
  /** When the user signed in to open the session (password or provider), carried from token to token; absent on older tokens. */
  authTime?: Date;
}

export const refreshTokenSchema = new Schema<RefreshTokenDoc>(
  {
    _id: { type: String, required: true },
    family: { type: String, required: true },
    userId: { type: String, required: true },
    createdAt: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
    rotatedAt: { type: Date, default: null },
    revokedAt: { type: Date, default: null },
    authTime: { type: Date },
  },
  { collection: REFRESH_TOKEN_COLLECTION, versionKey: false, minimize: false, strict: 'throw' },
);
refreshTokenSchema.index({ family: 1 });
refreshTokenSchema.index({ userId: 1 });
refreshTokenSchema.index({ expiresAt: 1 });

export type RefreshTokenModel = Model<RefreshTokenDoc>;

/** The model on a given connection (each node, or each test, may use its own). */
export function refreshTokenModel(connection: Connection): RefreshTokenModel {
  return modelOn(connection, 'RefreshToken', refreshTokenSchema);
}
