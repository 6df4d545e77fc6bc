// The ledger's documents (the protocol that writes them: payments/ledger.ts).
//
//   ledger_entries    one journal entry per idempotency key (`_id`), its
//                     postings, and where it is in the apply protocol
//   ledger_balances   the cached balance of one account in one currency
//                     (`_id` = `<account>|<currency>`), with the holds of the
//                     entries being applied to it
//
// They are written through the driver (payments/ledger.ts) and read back
// through the zod schemas below, never trusted as stored.
//
// Access paths and their indexes:
//   an entry by key                         _id
//   entries of an account (replay)          { accounts }   (multikey)
//   entries left pending (repair)           { status, createdAt }
//   a balance                               _id
//   balances with holds (repair)            { holdCount }
import { z } from 'zod';

export const LEDGER_ENTRIES_COLLECTION = 'ledger_entries';
export const LEDGER_BALANCES_COLLECTION = 'ledger_balances';

export const ENTRY_STATUSES = ['pending', 'applied', 'void'] as const;
export type EntryStatus = (typeof ENTRY_STATUSES)[number];

export const postingSchema = z.object({
  account: z.string().min(1),
  amount: z.number().int(),
  currency: z.string().min(1),
});
export type Posting = z.output<typeof postingSchema>;

export const entryDocSchema = z.object({
  _id: z.string(),
  kind: z.string(),
  postings: z.array(postingSchema),
  /** The distinct accounts of the postings, for the replay index. */
  accounts: z.array(z.string()),
  refs: z.record(z.string(), z.string()),
  /** Hash of kind, postings and refs: a resend with the same key must carry the same digest. */
  digest: z.string(),
  status: z.enum(ENTRY_STATUSES),
  /** The attempt whose holds this entry applies ('' while void). */
  attempt: z.string(),
  /** While void: the attempts the repair sweep ruled out (their holds were or will be released). */
  voided: z.array(z.string()),
  createdAt: z.date(),
  appliedAt: z.date().nullable(),
});
export type EntryDoc = z.output<typeof entryDocSchema>;

export const balanceDocSchema = z.object({
  _id: z.string(),
  account: z.string(),
  currency: z.string(),
  /** Sum of the postings applied. */
  balance: z.number().int(),
  /** Sum of the debits held for entries not yet applied. */
  reserved: z.number().int(),
  /** balance - reserved: what a debit may take now. */
  free: z.number().int(),
  /** Bumped by every posting applied. */
  version: z.number().int(),
  /** Holds of entries being applied: `<attempt>|<reserved amount>|<entry id>`. */
  holds: z.array(z.string()),
  holdCount: z.number().int(),
  /** The entry applied last ('' before the first). */
  lastEntry: z.string(),
  updatedAt: z.date(),
});
export type BalanceDoc = z.output<typeof balanceDocSchema>;

export function balanceId(account: string, currency: string): string {
  return `${account}|${currency}`;
}

export const LEDGER_INDEXES = {
  entries: [
    { key: { accounts: 1 }, name: 'accounts_1' },
    { key: { status: 1, createdAt: 1 }, name: 'status_1_createdAt_1' },
  ],
  balances: [{ key: { holdCount: 1 }, name: 'holdCount_1' }],
} as const;
