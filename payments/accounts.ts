// The ledger's chart of accounts: every account is named by a type and, for
// the per-creator types, an owner (`creator_available:<userId>`). Which types
// exist, whether they are per-user, and which may never go below zero are data
// in ACCOUNT_TYPES; the ledger (payments/ledger.ts) refuses an entry that would
// take a non-negative account below zero.
//
// Signs: a balance is the sum of the amounts posted to the account, and the
// accounts are credit-normal: a positive balance is what the platform owes
// (creators' pending, available and in-transit money) or has earned or spent
// (platform_fees, stripe_fees). The platform's side of the money is mirrored:
// fan_payments goes negative by what fans paid in, stripe_balance positive by
// what left Stripe for creators' banks, refunds and disputes negative by what
// the platform absorbed. Every entry sums to zero, so all balances do.

export const ACCOUNT_TYPES = {
  /** Platform-wide clearing of what fans paid (negative: money received). */
  fan_payments: { perUser: false, nonNegative: false },
  /** A creator's earnings not yet released (Stripe's pending funds). */
  creator_pending: { perUser: true, nonNegative: true },
  /** A creator's earnings they may pay out. */
  creator_available: { perUser: true, nonNegative: true },
  /** Flock's cut of tips and purchases. */
  platform_fees: { perUser: false, nonNegative: false },
  /** What Stripe kept as processing and dispute fees. */
  stripe_fees: { perUser: false, nonNegative: false },
  /** Payouts requested and not yet paid or failed. */
  payouts_in_transit: { perUser: true, nonNegative: true },
  /** What the platform absorbed on refunds (the share Stripe and creators did not bear). */
  refunds: { perUser: false, nonNegative: false },
  /** What the platform absorbed on disputes, dispute fees included. */
  disputes: { perUser: false, nonNegative: false },
  /** Cash that left the Stripe balance for creators' banks (positive: paid out). */
  stripe_balance: { perUser: false, nonNegative: false },
} as const satisfies Record<string, { perUser: boolean; nonNegative: boolean }>;

export type AccountType = keyof typeof ACCOUNT_TYPES;
export type PlatformAccountType = { [K in AccountType]: (typeof ACCOUNT_TYPES)[K]['perUser'] extends false ? K : never }[AccountType];
export type UserAccountType = Exclude<AccountType, PlatformAccountType>;
/** An account name: a platform account's type, or `<type>:<owner>`. */
export type AccountName = PlatformAccountType | `${UserAccountType}:${string}`;

/** Owners are user ids: no '|' (balance ids use it) and none of what stored keys may not hold. */
const OWNER = /^[A-Za-z0-9_-]{1,64}$/;

export function platformAccount(type: PlatformAccountType): AccountName {
  return type;
}

export function userAccount(type: UserAccountType, userId: string): AccountName {
  if (!OWNER.test(userId)) throw new TypeError(`not a valid account owner: ${JSON.stringify(userId)}`);
  return `${type}:${userId}`;
}

export interface ParsedAccount {
  type: AccountType;
  owner: string | null;
}

function isAccountType(name: string): name is AccountType {
  return Object.hasOwn(ACCOUNT_TYPES, name);
}

/** The type and owner of an account name; null when it names no account. */
export function parseAccount(name: string): ParsedAccount | null {
  const colon = name.indexOf(':');
  const type = colon < 0 ? name : name.slice(0, colon);
  if (!isAccountType(type)) return null;
  if (!ACCOUNT_TYPES[type].perUser) return colon < 0 ? { type, owner: null } : null;
  const owner = name.slice(colon + 1);
  return colon > 0 && OWNER.test(owner) ? { type, owner } : null;
}

export function isAccountName(name: string): name is AccountName {
  return parseAccount(name) !== null;
}

/** Whether the ledger refuses entries that would take this account below zero. */
export function isNonNegative(name: AccountName): boolean {
  const parsed = parseAccount(name);
  return parsed !== null && ACCOUNT_TYPES[parsed.type].nonNegative;
}
