// Revoked sessions, kept while an access token of theirs may still be valid:
// the durable copy of the revocation marks in Redis (auth/revocations.ts), so
// a Redis that loses its data cannot bring revoked access tokens back.
//
// Expiry: a TTL index at expiresAt where the database has TTL indexes
// (MongoDB); FerretDB v1 does not, so there the index is a plain one and the
// housekeeping job (jobs/housekeeping.ts) deletes expired documents. Nothing
// reads an expired document either way: the rebuild asks for expiresAt > now.
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

export const REVOKED_SESSION_COLLECTION = 'revoked_sessions';

export interface RevokedSessionDoc {
  /** The session id (the refresh-token family). */
  _id: string;
  /** When the last access token the session may have issued expires (clock skew included). */
  expiresAt: Date;
  revokedAt: Date;
}

export const revokedSessionSchema = new Schema<RevokedSessionDoc>(
  {
    _id: { type: String, required: true },
    expiresAt: { type: Date, required: true },
    revokedAt: { type: Date, required: true },
  },
  { collection: REVOKED_SESSION_COLLECTION, versionKey: false, minimize: false, strict: 'throw', autoIndex: false },
);

/** The expiry index: TTL where the database has TTL indexes, a plain one (for the rebuild and the purge) elsewhere. */
export function revokedSessionExpiryIndex(ttl: boolean) {
  return { key: { expiresAt: 1 }, options: ttl ? { name: 'expiresAt_ttl', expireAfterSeconds: 0 } : { name: 'expiresAt_1' } } as const;
}

export type RevokedSessionModel = Model<RevokedSessionDoc>;

export function revokedSessionModel(connection: Connection): RevokedSessionModel {
  return modelOn(connection, 'RevokedSession', revokedSessionSchema);
}
