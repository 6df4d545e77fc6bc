// The quota of what one user's requests may write into other users' personal
// streams (streams/sender-quota.ts), against real Redis: per recipient per
// window and per minute across recipients, checked and charged atomically,
// nothing charged when refused.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { FlockError } from '../kernel/errors.ts';
import { createSenderQuota, type SenderQuotaSettings } from '../streams/sender-quota.ts';
import { codeOf } from './helpers/outcome.ts';
import { redisKeySpace } from './helpers/redis.ts';

const { prefix, connect, cleanup } = redisKeySpace();
test.after.always(cleanup);

const quotaOn = (settings: Partial<SenderQuotaSettings>) => createSenderQuota({ redis: connect(), prefix, settings });
const user = () => `u_${randomBytes(6).toString('hex')}`;

async function refusal(p: Promise<unknown>): Promise<FlockError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof FlockError)) throw new Error(`expected a FlockError, got ${String(err)}`);
  return err;
}

test('per recipient: a sender writes at most bytesPerRecipient into one stream per window; others, and other senders, are not affected', async (t) => {
  const quota = quotaOn({ bytesPerRecipient: 10_000, bytesPerMinute: 1_000_000, recipientWindowMs: 60_000 });
  const [sender, victim, other, second] = [user(), user(), user(), user()];
  for (let i = 0; i < 10; i++) await quota.charge(sender, [{ to: [victim], bytes: 1_000 }]);
  const err = await refusal(quota.charge(sender, [{ to: [victim], bytes: 1 }]));
  t.is(err.code, 'STREAM_QUOTA_EXCEEDED');
  t.like(err.details, { scope: 'recipient', limit: 10_000 });
  t.true(Number(err.details?.retryAfterMs) > 0 && Number(err.details?.retryAfterMs) <= 60_000);
  t.is(await codeOf(quota.charge(sender, [{ to: [other], bytes: 10_000 }])), 'ok', 'another recipient has a budget of its own');
  t.is(await codeOf(quota.charge(second, [{ to: [victim], bytes: 10_000 }])), 'ok', 'another sender too');
  t.is(await codeOf(quota.charge(sender, [{ to: [sender], bytes: 1_000_000 }])), 'ok', 'the own stream is free');
  // A charge for several recipients is refused whole when one of them is over: the others are not charged.
  const fresh = user();
  t.is(await codeOf(quota.charge(sender, [{ to: [fresh, victim], bytes: 1_000 }])), 'STREAM_QUOTA_EXCEEDED');
  t.is(await codeOf(quota.charge(sender, [{ to: [fresh], bytes: 10_000 }])), 'ok', 'nothing was charged for the refused one');
});

test('per minute: a sender writes at most bytesPerMinute into all other streams together', async (t) => {
  const quota = quotaOn({ bytesPerRecipient: 1_000_000, bytesPerMinute: 50_000 });
  const sender = user();
  const group = Array.from({ length: 10 }, user);
  for (let i = 0; i < 5; i++) await quota.charge(sender, [{ to: group, bytes: 1_000 }]);
  const err = await refusal(quota.charge(sender, [{ to: group, bytes: 1 }]));
  t.like(err.details, { scope: 'minute', limit: 50_000 });
  t.true(Number(err.details?.retryAfterMs) > 0 && Number(err.details?.retryAfterMs) <= 60_000);
  t.is(await codeOf(quota.charge(user(), [{ to: group, bytes: 5_000 }])), 'ok', 'another sender has a budget of its own');
});

test('concurrent charges of one sender from several connections never overdraw the budget', async (t) => {
  const settings = { bytesPerRecipient: 20_000, bytesPerMinute: 10_000_000 };
  const nodes = [quotaOn(settings), quotaOn(settings), quotaOn(settings)];
  const [sender, victim] = [user(), user()];
  const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => codeOf(nodes[i % 3]!.charge(sender, [{ to: [victim], bytes: 1_000 }]))));
  t.is(outcomes.filter((o) => o === 'ok').length, 20);
  t.true(outcomes.every((o) => o === 'ok' || o === 'STREAM_QUOTA_EXCEEDED'));
});
