// Builders of the entries the payment flows post (pure: they read nothing).
// Each names its idempotency key after the Stripe object it records, so a
// webhook delivered twice posts once.
//
//   tipSucceeded      fan_payments → creator_pending, platform_fees, stripe_fees
//   fundsAvailable    creator_pending → creator_available
//   payoutRequested   creator_available → payouts_in_transit
//   payoutPaid        payouts_in_transit → stripe_balance
//   payoutFailed      payouts_in_transit → creator_available (the reverse)
//   refund            the tip reversed in proportion to the amount refunded
//   disputeOpened     the same, the platform's part into `disputes`
//   disputeWon        the opened dispute reversed
//   disputeLost       the dispute fee, borne by the platform
//
// Refunds and disputes: the creator gives back their share of the amount
// (rounded down), taken first from creator_pending (money not yet released,
// most likely this tip's), then from creator_available; what those cannot
// cover is absorbed by the platform in `refunds` (`disputes`), as is the share
// of Stripe's fee (Stripe does not return it) and the rounding. Flock's fee is
// given back in proportion (rounded down). Creators' accounts never go negative.
import { FlockError } from '../kernel/errors.ts';
import type { EntryDoc } from '../models/ledger.ts';
import { isAccountName, parseAccount, platformAccount, userAccount, type AccountName } from './accounts.ts';
import type { EntryInput, PostingInput } from './entry.ts';
import { splitTip } from './fees.ts';
import { checkAmount, mulDivFloor } from './money.ts';

export interface TipInput {
  /** The Stripe PaymentIntent: the key is `<kind>:<paymentIntentId>`. */
  paymentIntentId: string;
  kind?: 'tip' | 'purchase';
  creatorId: string;
  fanId?: string;
  gross: number;
  currency: string;
  stripeFee: number;
  feeBps?: number;
}

export function tipSucceeded(input: TipInput): EntryInput {
  const kind = input.kind ?? 'tip';
  const split = splitTip(input.gross, input.stripeFee, input.feeBps);
  return entry(
    `${kind}:${input.paymentIntentId}`,
    kind,
    input.currency,
    [
      [platformAccount('fan_payments'), -split.gross],
      [userAccount('creator_pending', input.creatorId), split.creator],
      [platformAccount('platform_fees'), split.platform],
      [platformAccount('stripe_fees'), split.stripe],
    ],
    { paymentIntent: input.paymentIntentId, creator: input.creatorId, ...(input.fanId !== undefined && { fan: input.fanId }) },
  );
}

export interface TransferInput {
  /** What the key is named after (a Stripe balance transaction, a payout id). */
  ref: string;
  creatorId: string;
  amount: number;
  currency: string;
}

export function fundsAvailable(input: TransferInput): EntryInput {
  return move(
    `available:${input.ref}`,
    'funds_available',
    input,
    userAccount('creator_pending', input.creatorId),
    userAccount('creator_available', input.creatorId),
  );
}

export function payoutRequested(input: TransferInput): EntryInput {
  return move(
    `payout:${input.ref}:requested`,
    'payout_requested',
    input,
    userAccount('creator_available', input.creatorId),
    userAccount('payouts_in_transit', input.creatorId),
  );
}

export function payoutPaid(input: TransferInput): EntryInput {
  return move(`payout:${input.ref}:paid`, 'payout_paid', input, userAccount('payouts_in_transit', input.creatorId), platformAccount('stripe_balance'));
}

export function payoutFailed(input: TransferInput): EntryInput {
  return move(
    `payout:${input.ref}:failed`,
    'payout_failed',
    input,
    userAccount('payouts_in_transit', input.creatorId),
    userAccount('creator_available', input.creatorId),
  );
}

export interface ReversalInput {
  /** The Stripe refund or dispute id. */
  ref: string;
  /** The tip or purchase entry being reversed. */
  tip: EntryDoc;
  amount: number;
  /** The creator's balances now (the ledger's `available`), in the tip's currency. */
  creatorPending: number;
  creatorAvailable: number;
}

export function refund(input: ReversalInput): EntryInput {
  return reversal(`refund:${input.ref}`, 'refund', 'refunds', input);
}

export function disputeOpened(input: ReversalInput): EntryInput {
  return reversal(`dispute:${input.ref}:opened`, 'dispute_opened', 'disputes', input);
}

/** Stripe gave the money back: the opened dispute's postings, reversed. */
export function disputeWon(disputeId: string, opened: EntryDoc): EntryInput {
  return {
    id: `dispute:${disputeId}:won`,
    kind: 'dispute_won',
    postings: opened.postings.flatMap((p) => (isAccountName(p.account) ? [{ account: p.account, amount: -p.amount, currency: p.currency }] : [])),
    refs: { dispute: disputeId, opened: opened._id },
  };
}

/** The money stays with the fan; Stripe's dispute fee is the platform's. */
export function disputeLost(disputeId: string, fee: number, currency: string): EntryInput {
  checkAmount(fee, 'dispute fee');
  return entry(
    `dispute:${disputeId}:lost`,
    'dispute_lost',
    currency,
    [
      [platformAccount('disputes'), -fee],
      [platformAccount('stripe_fees'), fee],
    ],
    { dispute: disputeId },
  );
}

// ---- helpers ----

function move(id: string, kind: string, input: TransferInput, from: AccountName, to: AccountName): EntryInput {
  checkAmount(input.amount);
  return entry(
    id,
    kind,
    input.currency,
    [
      [from, -input.amount],
      [to, input.amount],
    ],
    { ref: input.ref, creator: input.creatorId },
  );
}

function reversal(id: string, kind: string, absorber: 'refunds' | 'disputes', input: ReversalInput): EntryInput {
  const { tip, amount } = input;
  const gross = -sumOf(tip, (type) => type === 'fan_payments');
  const creatorShare = sumOf(tip, (type) => type === 'creator_pending');
  const platformShare = sumOf(tip, (type) => type === 'platform_fees');
  const creatorId = tip.postings.map((p) => parseAccount(p.account)).find((a) => a?.type === 'creator_pending')?.owner;
  const currency = tip.postings[0]?.currency;
  if (gross <= 0 || !creatorId || !currency) throw new FlockError('REQUEST_INVALID', `${tip._id} is not a tip or purchase entry`);
  checkAmount(amount, 'refund', 1);
  if (amount > gross) throw new FlockError('PAYMENT_AMOUNT_INVALID', 'more than the payment', { details: { min: 1, max: gross, amount } });
  const creator = mulDivFloor(creatorShare, amount, gross);
  const platform = mulDivFloor(platformShare, amount, gross);
  const fromPending = Math.min(creator, Math.max(0, input.creatorPending));
  const fromAvailable = Math.min(creator - fromPending, Math.max(0, input.creatorAvailable));
  const absorbed = amount - platform - fromPending - fromAvailable;
  return entry(
    id,
    kind,
    currency,
    [
      [platformAccount('fan_payments'), amount],
      [userAccount('creator_pending', creatorId), -fromPending],
      [userAccount('creator_available', creatorId), -fromAvailable],
      [platformAccount('platform_fees'), -platform],
      [platformAccount(absorber), -absorbed],
    ],
    { [kind === 'refund' ? 'refund' : 'dispute']: input.ref, payment: tip._id, creator: creatorId },
  );
}

function sumOf(tip: EntryDoc, which: (type: string) => boolean): number {
  return tip.postings.reduce((sum, p) => (which(parseAccount(p.account)?.type ?? '') ? sum + p.amount : sum), 0);
}

/** Postings with zero amounts dropped (an entry carries none). */
function entry(id: string, kind: string, currency: string, legs: readonly [AccountName, number][], refs: Record<string, string>): EntryInput {
  const postings: PostingInput[] = legs.filter(([, amount]) => amount !== 0).map(([account, amount]) => ({ account, amount, currency }));
  return { id, kind, postings, refs };
}
