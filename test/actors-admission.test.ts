// The activation gate (actors/admission.ts): at most `limit` loads at once,
// the others in order; a waiter whose deadline passed is skipped without
// running; beyond `maxWaiting` a request is refused at once with a retryable
// code.
import test from 'ava';
import { Admission } from '../actors/admission.ts';
import { codeOf } from './helpers/outcome.ts';

/** A load that finishes when the test says so. */
function gated() {
  let open!: () => void;
  const done = new Promise<void>((r) => (open = r));
  return { open, load: async () => done };
}

test('at most `limit` loads run at once; the next starts when one ends, in order', async (t) => {
  const admission = new Admission(2, 10);
  const far = Date.now() + 60_000;
  const started: number[] = [];
  const gates = [gated(), gated(), gated(), gated()];
  const runs = gates.map((g, i) =>
    admission.run(far, async () => {
      started.push(i);
      await g.load();
      return i;
    }),
  );
  await Promise.resolve();
  t.deepEqual(started, [0, 1]);
  t.is(admission.queued, 2);
  gates[1]!.open();
  t.is(await runs[1], 1);
  t.deepEqual(started, [0, 1, 2]);
  gates[0]!.open();
  gates[2]!.open();
  gates[3]!.open();
  t.deepEqual(await Promise.all(runs), [0, 1, 2, 3]);
  t.deepEqual(started, [0, 1, 2, 3]);
  t.is(admission.queued, 0);
});

test('a waiter whose deadline passed is skipped without running; a full queue refuses at once with ACTOR_UNAVAILABLE', async (t) => {
  const admission = new Admission(1, 2);
  const first = gated();
  const running = admission.run(Date.now() + 60_000, first.load);
  let ranExpired = false;
  const expired = admission.run(Date.now() - 1, async () => {
    ranExpired = true;
  });
  const later = admission.run(Date.now() + 60_000, async () => 'later');
  t.is(await codeOf(admission.run(Date.now() + 60_000, async () => 'refused')), 'ACTOR_UNAVAILABLE', 'two wait already');
  first.open();
  await running;
  t.is(await expired, undefined, 'skipped: its caller gave up');
  t.false(ranExpired);
  t.is(await later, 'later');
  t.is(await admission.run(Date.now() + 60_000, async () => 'free'), 'free', 'the slot is free again');
});
