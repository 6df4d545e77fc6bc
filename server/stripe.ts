// The Stripe client, pointed at STRIPE_API_BASE (stripe-mock in development
// and tests) or at api.stripe.com.
import Stripe from 'stripe';
import type { ResolvedServices } from '../devservices/index.ts';

export function createStripe(settings: ResolvedServices['stripe']): Stripe {
  const options: Stripe.StripeConfig = { maxNetworkRetries: 2, timeout: 10_000, telemetry: false };
  if (settings.apiBase) {
    const base = new URL(settings.apiBase);
    options.host = base.hostname;
    options.port = Number(base.port || (base.protocol === 'https:' ? 443 : 80));
    options.protocol = base.protocol === 'https:' ? 'https' : 'http';
  }
  return new Stripe(settings.secretKey, options);
}
