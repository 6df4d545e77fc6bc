// Amounts and currencies: amounts are integers in minor units (cents), signed
// on postings; currencies are lower-case ISO codes from an allow-list the
// ledger is configured with (DEFAULT_CURRENCIES until PAYMENT_CURRENCIES is
// read from the configuration).
import { FlockError } from '../kernel/errors.ts';

export const DEFAULT_CURRENCIES: readonly string[] = ['usd', 'eur', 'gbp'];

/**
 * The largest amount one posting may carry (ten billion in major units): 20
 * postings of it still sum exactly in a double.
 */
export const MAX_POSTING_AMOUNT = 1_000_000_000_000;

/** A positive amount (a gross, a fee, a refund): PAYMENT_AMOUNT_INVALID otherwise. */
export function checkAmount(amount: number, what = 'amount', min = 1): number {
  if (!Number.isSafeInteger(amount) || amount < min || amount > MAX_POSTING_AMOUNT)
    throw new FlockError('PAYMENT_AMOUNT_INVALID', `${what} must be an integer number of minor units from ${min} to ${MAX_POSTING_AMOUNT}`, {
      details: { min, max: MAX_POSTING_AMOUNT, amount },
    });
  return amount;
}

export function checkCurrency(currency: string, allowed: readonly string[]): string {
  if (!allowed.includes(currency)) throw new FlockError('PAYMENT_CURRENCY_UNSUPPORTED', undefined, { details: { currency, allowed: [...allowed] } });
  return currency;
}

/** floor(amount * numerator / denominator), exact for any amounts the ledger carries. */
export function mulDivFloor(amount: number, numerator: number, denominator: number): number {
  return Number((BigInt(amount) * BigInt(numerator)) / BigInt(denominator));
}

/** ceil(amount * numerator / denominator) for non-negative operands. */
export function mulDivCeil(amount: number, numerator: number, denominator: number): number {
  const d = BigInt(denominator);
  return Number((BigInt(amount) * BigInt(numerator) + d - 1n) / d);
}
