// How a tip or purchase is split between the creator, Flock and Stripe.
//
// Flock's fee is `feeBps` basis points of the gross (default 1000 = 10%),
// rounded up; Stripe's processing fee (what Stripe reports for the charge) is
// borne by the creator's share. So the creator gets gross - platform - stripe,
// a whole number of minor units, and the rounding remainder (under one minor
// unit) goes to the platform.
import { FlockError } from '../kernel/errors.ts';
import { checkAmount, mulDivCeil } from './money.ts';

export const DEFAULT_PLATFORM_FEE_BPS = 1000;

export interface TipSplit {
  gross: number;
  creator: number;
  platform: number;
  stripe: number;
}

export function splitTip(gross: number, stripeFee: number, feeBps = DEFAULT_PLATFORM_FEE_BPS): TipSplit {
  checkAmount(gross, 'gross');
  checkAmount(stripeFee, 'stripe fee', 0);
  if (!Number.isInteger(feeBps) || feeBps < 0 || feeBps > 10_000) throw new TypeError(`platform fee must be 0 to 10000 basis points, not ${feeBps}`);
  const platform = mulDivCeil(gross, feeBps, 10_000);
  const creator = gross - platform - stripeFee;
  if (creator < 0)
    throw new FlockError('PAYMENT_AMOUNT_INVALID', 'the fees are larger than the amount', {
      details: { min: platform + stripeFee, max: undefined, gross, stripeFee },
    });
  return { gross, creator, platform, stripe: stripeFee };
}
