// A journal entry as the payment flows hand it to the ledger, its validation,
// and what the apply protocol derives from it: one leg per balance it moves
// (account and currency), with the amount to hold on it.
//
// An entry is refused before anything is written when an amount is not a
// non-zero safe integer (PAYMENT_AMOUNT_INVALID), a currency is not allowed
// (PAYMENT_CURRENCY_UNSUPPORTED), or its postings do not sum to zero in each
// currency (PAYMENT_LEDGER_UNBALANCED).
import { createHash } from 'node:crypto';
import { FlockError } from '../kernel/errors.ts';
import { balanceId, type Posting } from '../models/ledger.ts';
import { isAccountName, isNonNegative, type AccountName } from './accounts.ts';
import { checkCurrency, MAX_POSTING_AMOUNT } from './money.ts';

export const MAX_POSTINGS = 20;
export const MAX_REFS = 20;
const ID = /^[A-Za-z0-9_:.\-|]{1,200}$/;
/** Stored keys: no '.', no leading '$' (FerretDB v1 refuses them). */
const REF_KEY = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

export interface PostingInput {
  account: AccountName;
  /** Signed, in minor units: positive adds to the account's balance. */
  amount: number;
  currency: string;
}

export interface EntryInput {
  /** The idempotency key: `tip:pi_123`, `payout:po_9:requested`. */
  id: string;
  kind: string;
  postings: readonly PostingInput[];
  /** Ids of the Stripe and Flock objects behind the entry. */
  refs?: Readonly<Record<string, string>>;
}

/** What the protocol moves on one balance for one entry. */
export interface Leg {
  balanceId: string;
  account: AccountName;
  currency: string;
  /** Net of the entry's postings on this balance. */
  amount: number;
  /** What the hold takes from `free` first: the debit, 0 for a credit. */
  reserve: number;
  /** Whether the hold must find `free >= reserve`. */
  guarded: boolean;
}

export interface PreparedEntry {
  id: string;
  kind: string;
  postings: Posting[];
  refs: Record<string, string>;
  accounts: string[];
  digest: string;
  legs: Leg[];
}

export function prepareEntry(input: EntryInput, currencies: readonly string[]): PreparedEntry {
  if (!ID.test(input.id)) throw new FlockError('REQUEST_INVALID', `ledger entry id must match ${ID.source}`, { details: { id: input.id } });
  if (!/^[a-z][a-z_]{0,39}$/.test(input.kind))
    throw new FlockError('REQUEST_INVALID', 'ledger entry kind must be a lower-case word', { details: { kind: input.kind } });
  if (input.postings.length < 2 || input.postings.length > MAX_POSTINGS)
    throw new FlockError('REQUEST_INVALID', `a ledger entry has 2 to ${MAX_POSTINGS} postings`, { details: { postings: input.postings.length } });
  const refs = { ...input.refs };
  const refKeys = Object.keys(refs);
  if (refKeys.length > MAX_REFS || refKeys.some((k) => !REF_KEY.test(k)))
    throw new FlockError('REQUEST_INVALID', `ledger refs: at most ${MAX_REFS}, keys matching ${REF_KEY.source}`, { details: { refs: refKeys } });

  const sums = new Map<string, number>();
  for (const p of input.postings) {
    if (!isAccountName(p.account)) throw new FlockError('REQUEST_INVALID', `not a ledger account: ${String(p.account)}`, { details: { account: p.account } });
    if (!Number.isSafeInteger(p.amount) || p.amount === 0 || Math.abs(p.amount) > MAX_POSTING_AMOUNT)
      throw new FlockError('PAYMENT_AMOUNT_INVALID', 'a posting amount is a non-zero integer number of minor units', {
        details: { min: -MAX_POSTING_AMOUNT, max: MAX_POSTING_AMOUNT, amount: p.amount, account: p.account },
      });
    checkCurrency(p.currency, currencies);
    sums.set(p.currency, (sums.get(p.currency) ?? 0) + p.amount);
  }
  const unbalanced = [...sums].filter(([, sum]) => sum !== 0);
  if (unbalanced.length > 0) throw new FlockError('PAYMENT_LEDGER_UNBALANCED', undefined, { details: { id: input.id, sums: Object.fromEntries(unbalanced) } });

  const postings = input.postings.map(({ account, amount, currency }) => ({ account, amount, currency }));
  return {
    id: input.id,
    kind: input.kind,
    postings,
    refs,
    accounts: [...new Set(postings.map((p) => p.account))],
    digest: digestOf(input.kind, postings, refs),
    legs: legsOf(postings),
  };
}

/** The legs of a stored entry (the repair sweep applies entries it did not prepare). */
export function legsOf(postings: readonly Posting[]): Leg[] {
  const legs = new Map<string, Leg>();
  for (const p of postings) {
    if (!isAccountName(p.account)) continue;
    const id = balanceId(p.account, p.currency);
    const leg = legs.get(id) ?? { balanceId: id, account: p.account, currency: p.currency, amount: 0, reserve: 0, guarded: isNonNegative(p.account) };
    leg.amount += p.amount;
    legs.set(id, leg);
  }
  return [...legs.values()].sort((a, b) => (a.balanceId < b.balanceId ? -1 : 1)).map((leg) => ({ ...leg, reserve: Math.max(0, -leg.amount) }));
}

function digestOf(kind: string, postings: readonly Posting[], refs: Record<string, string>): string {
  const sortedRefs = Object.keys(refs)
    .sort()
    .map((k) => [k, refs[k]]);
  return createHash('sha256')
    .update(JSON.stringify([kind, postings.map((p) => [p.account, p.amount, p.currency]), sortedRefs]))
    .digest('base64url');
}

/** Per currency, the sum of the postings (all zero for a balanced entry). */
export function sumsByCurrency(postings: readonly Posting[]): Map<string, number> {
  const sums = new Map<string, number>();
  for (const p of postings) sums.set(p.currency, (sums.get(p.currency) ?? 0) + p.amount);
  return sums;
}
