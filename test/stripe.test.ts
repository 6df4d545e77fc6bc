// Stripe against stripe-mock (Stripe's own API mock, validating real requests).
import test from 'ava';
import Stripe from 'stripe';
import { createStripe } from '../server/stripe.ts';
import { requireEnv } from './helpers/env.ts';

const stripe = createStripe({ apiBase: requireEnv('STRIPE_API_BASE'), secretKey: requireEnv('STRIPE_SECRET_KEY'), embedded: true });

test('stripe-mock answers a PaymentIntent create', async (t) => {
  const intent = await stripe.paymentIntents.create({ amount: 1500, currency: 'usd' });
  t.is(intent.object, 'payment_intent');
  t.regex(intent.id, /^pi_/);
  t.is(intent.amount, 1500);
  t.is(intent.currency, 'usd');
});

test('stripe-mock validates requests like Stripe: a missing currency is refused', async (t) => {
  const err = await t.throwsAsync(stripe.paymentIntents.create({ amount: 1500 } as Stripe.PaymentIntentCreateParams));
  t.true(err instanceof Stripe.errors.StripeInvalidRequestError);
});
