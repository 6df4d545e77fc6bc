// Accounts: one document per user, holding the sign-in identities (username,
// email, password hash, linked OAuth providers) and the roles. Every change is
// a single-document update, and uniqueness comes from unique indexes only, so
// concurrent sign-ups on several nodes are settled by the database, on MongoDB
// and on FerretDB v1 alike.
//
// FerretDB v1 does not enforce a unique index on a path inside an array
// (`providers.provider`), nor match `$elemMatch` on subdocuments, so each
// linked provider is also kept as a scalar, `providerSubjects.<provider>`,
// with its own unique index: that is what makes one provider identity belong to
// one account, and what findByProvider reads. The `providers` array is the
// same data in the shape callers show; both are written in the same update.
// The compound index on the array is kept for MongoDB, where it holds too.
import { Schema, type Connection, type Model } from 'mongoose';
import { modelOn } from '../kernel/mongo.ts';

export const ACCOUNT_ROLES = ['user', 'creator', 'moderator', 'admin'] as const;
export type AccountRole = (typeof ACCOUNT_ROLES)[number];

export const OAUTH_PROVIDERS = ['google', 'facebook', 'twitter'] as const;
export type OAuthProvider = (typeof OAUTH_PROVIDERS)[number];

/** Stored usernames: lowercase; `displayUsername` keeps the case the user chose. */
export const USERNAME_PATTERN = /^[a-z0-9_]{3,30}$/;

export interface ProviderLink {
  provider: OAuthProvider;
  subject: string;
}

export interface AccountDoc {
  _id: string;
  username: string;
  displayUsername: string;
  /** Absent (never null) when unknown, so the sparse unique index skips it. */
  email?: string;
  emailVerified: boolean;
  /** Absent for accounts that only sign in with a provider. */
  passwordHash?: string;
  roles: AccountRole[];
  /** Absent until the first link: an empty array would still be indexed. */
  providers?: ProviderLink[];
  providerSubjects?: Partial<Record<OAuthProvider, string>>;
  createdAt: Date;
}

const providerLinkSchema = new Schema<ProviderLink>(
  {
    provider: { type: String, required: true, enum: OAUTH_PROVIDERS },
    subject: { type: String, required: true },
  },
  { _id: false, strict: 'throw' },
);

export const accountSchema = new Schema<AccountDoc>(
  {
    _id: { type: String, required: true },
    username: { type: String, required: true, lowercase: true, match: USERNAME_PATTERN },
    displayUsername: { type: String, required: true },
    email: { type: String, lowercase: true, trim: true },
    emailVerified: { type: Boolean, required: true, default: false },
    passwordHash: { type: String },
    roles: { type: [{ type: String, enum: ACCOUNT_ROLES }], default: ['user'] },
    providers: { type: [providerLinkSchema], default: undefined },
    // A nested path, not a subdocument: minimize drops it while empty.
    providerSubjects: {
      google: { type: String },
      facebook: { type: String },
      twitter: { type: String },
    } satisfies Record<OAuthProvider, unknown>,
    createdAt: { type: Date, required: true, default: () => new Date() },
  },
  { collection: 'accounts', versionKey: false, minimize: true, strict: 'throw' },
);
accountSchema.index({ username: 1 }, { unique: true });
accountSchema.index({ email: 1 }, { unique: true, sparse: true });
accountSchema.index({ 'providers.provider': 1, 'providers.subject': 1 }, { unique: true, sparse: true });
for (const provider of OAUTH_PROVIDERS) {
  accountSchema.index({ [`providerSubjects.${provider}`]: 1 }, { unique: true, sparse: true });
}

export type AccountModel = Model<AccountDoc>;

/** The model on a given connection (each node, or each test, may use its own). */
export function accountModel(connection: Connection): AccountModel {
  return modelOn(connection, 'Account', accountSchema);
}
