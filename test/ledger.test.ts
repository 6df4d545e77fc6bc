// The ledger (payments/ledger.ts) on the suite's database: idempotent keys,
// balanced entries only, non-negative accounts under concurrent debits from
// two connections, crashes between the protocol's steps repaired, and a
// randomized run of the payment flows that leaves the books balanced.
import test from 'ava';
import mongoose, { type Connection } from 'mongoose';
import { FlockError } from '../kernel/errors.ts';
import { userAccount, platformAccount } from '../payments/accounts.ts';
import { prepareEntry } from '../payments/entry.ts';
import {
  disputeLost,
  disputeOpened,
  disputeWon,
  fundsAvailable,
  payoutFailed,
  payoutPaid,
  payoutRequested,
  refund,
  tipSucceeded,
} from '../payments/entries.ts';
import { splitTip } from '../payments/fees.ts';
import { Ledger, newAttempt } from '../payments/ledger.ts';
import { requireEnv, uniqueDbName } from './helpers/env.ts';

const dbName = uniqueDbName('ledger');
let connections: Connection[] = [];
let a: Ledger;
let b: Ledger;

test.before(async () => {
  connections = await Promise.all([1, 2].map(() => mongoose.createConnection(requireEnv('MONGO_URL'), { dbName, maxPoolSize: 20 }).asPromise()));
  a = new Ledger(connections[0]!);
  b = new Ledger(connections[1]!);
  await a.init();
});
test.after.always(async () => {
  await connections[0]?.dropDatabase().catch(() => {});
  await Promise.all(connections.map((c) => c.close()));
});

function codeOf(err: unknown): string | undefined {
  return err instanceof FlockError ? err.code : undefined;
}

/** Gives `creator` `amount` available through a tip and its release. */
async function fund(ledger: Ledger, creator: string, amount: number, key: string): Promise<void> {
  await ledger.post({
    id: `seed:${key}`,
    kind: 'seed',
    postings: [
      { account: platformAccount('fan_payments'), amount: -amount, currency: 'usd' },
      { account: userAccount('creator_pending', creator), amount, currency: 'usd' },
    ],
  });
  await ledger.post(fundsAvailable({ ref: key, creatorId: creator, amount, currency: 'usd' }));
}

test.serial('the platform fee: 10% by default, rounded up; the creator gets what is left after Stripe', (t) => {
  t.deepEqual(splitTip(1000, 59), { gross: 1000, creator: 841, platform: 100, stripe: 59 });
  t.deepEqual(splitTip(999, 59), { gross: 999, creator: 840, platform: 100, stripe: 59 });
  t.deepEqual(splitTip(1001, 0, 250), { gross: 1001, creator: 975, platform: 26, stripe: 0 });
  t.is(t.throws(() => splitTip(50, 49))?.message.includes('fees'), true);
});

test.serial('posting a key twice with the same content answers the first entry; other content is PAYMENT_DUPLICATE_KEY', async (t) => {
  const tip = tipSucceeded({ paymentIntentId: 'pi_idem', creatorId: 'c_idem', gross: 1000, currency: 'usd', stripeFee: 59 });
  const first = await a.post(tip);
  const again = await b.post(tip);
  t.true(first.created);
  t.false(again.created);
  t.is(again.entry._id, 'tip:pi_idem');
  t.is(again.entry.status, 'applied');
  t.is((await a.balance(userAccount('creator_pending', 'c_idem'), 'usd')).balance, 841);
  const other = tipSucceeded({ paymentIntentId: 'pi_idem', creatorId: 'c_idem', gross: 2000, currency: 'usd', stripeFee: 59 });
  t.is(codeOf(await t.throwsAsync(a.post(other))), 'PAYMENT_DUPLICATE_KEY');
  t.is((await a.balance(userAccount('creator_pending', 'c_idem'), 'usd')).balance, 841);
  t.is(await a.replay(userAccount('creator_pending', 'c_idem'), 'usd'), 841);
});

test.serial('an unbalanced entry, a zero posting, a fraction or an unknown currency is refused and nothing is written', async (t) => {
  const account = userAccount('creator_pending', 'c_unbal');
  const fan = platformAccount('fan_payments');
  const cases: [number, number, string, string][] = [
    [-100, 99, 'usd', 'PAYMENT_LEDGER_UNBALANCED'],
    [0, 0, 'usd', 'PAYMENT_AMOUNT_INVALID'],
    [-1.5, 1.5, 'usd', 'PAYMENT_AMOUNT_INVALID'],
    [-100, 100, 'xxx', 'PAYMENT_CURRENCY_UNSUPPORTED'],
  ];
  for (const [i, [out, into, currency, code]] of cases.entries()) {
    const err = await t.throwsAsync(
      a.post({
        id: `bad:${i}`,
        kind: 'test',
        postings: [
          { account: fan, amount: out, currency },
          { account, amount: into, currency },
        ],
      }),
    );
    t.is(codeOf(err), code);
    t.is(await a.entry(`bad:${i}`), null);
  }
  t.is((await a.balance(account, 'usd')).version, 0);
});

test.serial('50 concurrent debits of one available balance from two connections: exactly as many succeed as it covers', async (t) => {
  await fund(a, 'c_race', 2_000, 'race');
  const results = await Promise.allSettled(
    Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).post(payoutRequested({ ref: `po_race_${i}`, creatorId: 'c_race', amount: 100, currency: 'usd' }))),
  );
  const refused: unknown[] = results.flatMap((r): unknown[] => (r.status === 'rejected' ? [r.reason] : []));
  t.is(results.filter((r) => r.status === 'fulfilled').length, 20);
  t.true(refused.every((e) => codeOf(e) === 'PAYMENT_INSUFFICIENT_BALANCE'));
  const available = await a.balance(userAccount('creator_available', 'c_race'), 'usd');
  t.like(available, { balance: 0, available: 0, reserved: 0 });
  t.is((await a.balance(userAccount('payouts_in_transit', 'c_race'), 'usd')).balance, 2_000);
  const verify = await a.verify();
  t.deepEqual(verify.problems, []);
});

test.serial('a crash after the holds, before the entry: repair voids the attempt and releases them; the key can be posted again', async (t) => {
  await fund(a, 'c_crash1', 500, 'crash1');
  const entry = prepareEntry(payoutRequested({ ref: 'po_c1', creatorId: 'c_crash1', amount: 400, currency: 'usd' }), a.settings.currencies);
  const attempt = newAttempt();
  await a.hold(entry, attempt);
  t.is((await a.balance(userAccount('creator_available', 'c_crash1'), 'usd')).available, 100);
  // A debit the hold leaves no room for is refused while the crashed attempt holds the money.
  t.is(
    codeOf(await t.throwsAsync(b.post(payoutRequested({ ref: 'po_c1b', creatorId: 'c_crash1', amount: 200, currency: 'usd' })))),
    'PAYMENT_INSUFFICIENT_BALANCE',
  );
  t.like(await b.repair({ olderThanMs: 60_000 }), { voided: 0, released: 0 });
  t.like(await b.repair({ olderThanMs: 0 }), { voided: 1 });
  t.is((await a.balance(userAccount('creator_available', 'c_crash1'), 'usd')).available, 500);
  // The crashed writer wakes up: its attempt was ruled out, so its insert finds the void entry and does not apply.
  const late = await a.insertPending(entry, attempt);
  t.is(late.status, 'void');
  const posted = await a.post(payoutRequested({ ref: 'po_c1', creatorId: 'c_crash1', amount: 400, currency: 'usd' }));
  t.true(posted.created);
  t.like(await a.balance(userAccount('creator_available', 'c_crash1'), 'usd'), { balance: 100, available: 100, reserved: 0 });
  t.deepEqual((await a.verify()).problems, []);
});

test.serial('a crash after the entry or in the middle of applying it: repair finishes it once', async (t) => {
  await fund(a, 'c_crash2', 1_000, 'crash2');
  for (const [i, appliedLegs] of [0, 1].entries()) {
    const entry = prepareEntry(payoutRequested({ ref: `po_c2_${i}`, creatorId: 'c_crash2', amount: 300, currency: 'usd' }), a.settings.currencies);
    const attempt = newAttempt();
    await a.hold(entry, attempt);
    await a.insertPending(entry, attempt);
    await a.apply(entry.id, attempt, entry.legs.slice(0, appliedLegs));
    t.like(await b.repair({ olderThanMs: 0 }), { finished: 1 });
    t.is((await a.entry(entry.id))?.status, 'applied');
    // Applying again (a second repair, the original writer waking up) changes nothing.
    await a.apply(entry.id, attempt, entry.legs);
    t.like(await b.repair({ olderThanMs: 0 }), { finished: 0, released: 0 });
  }
  const available = userAccount('creator_available', 'c_crash2');
  t.like(await a.balance(available, 'usd'), { balance: 400, available: 400, reserved: 0 });
  t.is(await a.replay(available, 'usd'), 400);
  t.deepEqual((await a.verify()).problems, []);
});

test.serial('refunds and disputes take from the creator without going negative; the platform absorbs the rest', async (t) => {
  const tip = (await a.post(tipSucceeded({ paymentIntentId: 'pi_ref', creatorId: 'c_ref', gross: 1000, currency: 'usd', stripeFee: 59 }))).entry;
  // 841 pending; half of it is released, then paid out.
  await a.post(fundsAvailable({ ref: 'bt_ref', creatorId: 'c_ref', amount: 841, currency: 'usd' }));
  await a.post(payoutRequested({ ref: 'po_ref', creatorId: 'c_ref', amount: 800, currency: 'usd' }));
  const r = refund({ ref: 're_1', tip, amount: 500, creatorPending: 0, creatorAvailable: 41 });
  await a.post(r);
  t.like(await a.balance(userAccount('creator_available', 'c_ref'), 'usd'), { balance: 0 });
  // Creator's share of 500 is 420: 41 covered, 379 absorbed; fee back 50; Stripe's share and rounding absorbed too.
  t.is((await a.balance(platformAccount('refunds'), 'usd')).balance, -(500 - 50 - 41));
  const opened = (await a.post(disputeOpened({ ref: 'dp_1', tip, amount: 500, creatorPending: 0, creatorAvailable: 0 }))).entry;
  await a.post(disputeWon('dp_1', opened));
  await a.post(disputeLost('dp_2', 1500, 'usd'));
  await a.post(payoutFailed({ ref: 'po_ref', creatorId: 'c_ref', amount: 800, currency: 'usd' }));
  t.is((await a.balance(userAccount('creator_available', 'c_ref'), 'usd')).balance, 800);
  t.deepEqual((await a.verify()).problems, []);
});

test.serial('1,000 random operations from 8 workers on two connections leave the books balanced', async (t) => {
  const creators = ['r1', 'r2', 'r3', 'r4', 'r5'];
  const tips: { id: string; creator: string }[] = [];
  const payouts: { ref: string; creator: string; amount: number }[] = [];
  let seq = 0;
  const counts = new Map<string, number>();
  const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];
  const one = async (ledger: Ledger): Promise<void> => {
    const n = seq++;
    const creator = pick(creators) ?? 'r1';
    const roll = Math.random();
    let op = 'tip';
    try {
      if (roll < 0.35 || tips.length === 0) {
        const gross = 100 + Math.floor(Math.random() * 5000);
        await ledger.post(tipSucceeded({ paymentIntentId: `pi_${n}`, creatorId: creator, gross, currency: 'usd', stripeFee: 30 + Math.floor(gross * 0.029) }));
        tips.push({ id: `tip:pi_${n}`, creator });
      } else if (roll < 0.55) {
        op = 'available';
        const pending = await ledger.balance(userAccount('creator_pending', creator), 'usd');
        await ledger.post(
          fundsAvailable({ ref: `bt_${n}`, creatorId: creator, amount: Math.max(1, Math.ceil(pending.available * Math.random())), currency: 'usd' }),
        );
      } else if (roll < 0.7) {
        op = 'payout';
        const available = await ledger.balance(userAccount('creator_available', creator), 'usd');
        const amount = Math.max(1, Math.ceil(available.available * Math.random()));
        await ledger.post(payoutRequested({ ref: `po_${n}`, creatorId: creator, amount, currency: 'usd' }));
        payouts.push({ ref: `po_${n}`, creator, amount });
      } else if (roll < 0.8) {
        const payout = payouts.splice(Math.floor(Math.random() * payouts.length), 1)[0];
        if (!payout) return;
        op = Math.random() < 0.8 ? 'paid' : 'failed';
        await ledger.post((op === 'paid' ? payoutPaid : payoutFailed)({ ref: payout.ref, creatorId: payout.creator, amount: payout.amount, currency: 'usd' }));
      } else {
        const ref = pick(tips);
        const tip = ref && (await ledger.entry(ref.id));
        if (!ref || !tip) return;
        const [pending, available] = await Promise.all([
          ledger.balance(userAccount('creator_pending', ref.creator), 'usd'),
          ledger.balance(userAccount('creator_available', ref.creator), 'usd'),
        ]);
        const gross = -(tip.postings.find((p) => p.account === 'fan_payments')?.amount ?? 0);
        const input = {
          ref: `x_${n}`,
          tip,
          amount: Math.max(1, Math.floor(gross * Math.random())),
          creatorPending: pending.available,
          creatorAvailable: available.available,
        };
        op = roll < 0.9 ? 'refund' : 'dispute';
        if (op === 'refund') await ledger.post(refund(input));
        else {
          const opened = (await ledger.post(disputeOpened(input))).entry;
          await ledger.post(Math.random() < 0.5 ? disputeWon(`x_${n}`, opened) : disputeLost(`x_${n}`, 1500, 'usd'));
        }
      }
      counts.set(op, (counts.get(op) ?? 0) + 1);
    } catch (err) {
      // Balances read before posting may be stale by then: a refusal is the ledger doing its job.
      if (codeOf(err) !== 'PAYMENT_INSUFFICIENT_BALANCE') throw err;
      counts.set(`${op} refused`, (counts.get(`${op} refused`) ?? 0) + 1);
    }
  };
  const started = Date.now();
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      while (seq < 1_000) await one(w % 2 ? a : b);
    }),
  );
  t.log(`${seq} operations in ${Date.now() - started} ms:`, Object.fromEntries([...counts].sort()));
  t.like(await a.repair({ olderThanMs: 0 }), { finished: 0, released: 0, voided: 0 });
  const report = await a.verify();
  t.deepEqual(report.problems, []);
  t.is(report.pending, 0);
  for (const creator of creators)
    for (const type of ['creator_pending', 'creator_available', 'payouts_in_transit'] as const) {
      const account = userAccount(type, creator);
      const cached = await a.balance(account, 'usd');
      t.true(cached.balance >= 0);
      t.is(cached.balance, await a.replay(account, 'usd'));
    }
});
