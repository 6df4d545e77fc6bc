// The actor runtime inside one process: two runtimes (two "nodes") sharing
// real Redis and MongoDB, talking over Redis like separate processes would.
import test from 'ava';
import type { Connection } from 'mongoose';
import { pino } from 'pino';
import { z } from 'zod';
import { randomBytes } from 'node:crypto';
import { ActorRuntime } from '../actors/runtime.ts';
import { CachedCounter, Counter, fixtureActorTypes, Ledger, ledgerEffects, ledgerFailures, Relay, Slow, Alarm } from '../testkit/actors.ts';
import { codeOf } from './helpers/outcome.ts';
import { requireEnv } from './helpers/env.ts';
import { testServices } from './helpers/services.ts';
import { eventually } from './helpers/node-process.ts';
import { ActorStateStore } from '../actors/state-store.ts';

const services = testServices('actors');

const namespace = `t${randomBytes(4).toString('hex')}`;
let connection: Connection;
/** The stored state of one actor type, read and written as a runtime would. */
const states = (type: string) => new ActorStateStore(connection, type);
let a: ActorRuntime;
let b: ActorRuntime;

const start = (nodeId: string) =>
  ActorRuntime.start({
    redisUrl: requireEnv('REDIS_URL'),
    connection,
    nodeId,
    namespace,
    types: fixtureActorTypes,
    log: pino({ level: 'silent' }),
    leaseMs: 2_000,
    idleAfterMs: 60_000,
    defaultTimeoutMs: 3_000,
    reminderPollMs: 200,
  });

test.before(async () => {
  connection = await services.mongo();
  a = await start('a');
  b = await start('b');
});
test.after.always(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await services.cleanup();
});

test.serial('an actor is activated on first message and answers from either node', async (t) => {
  const key = 'c-basic';
  t.deepEqual(await a.ref(Counter, key).ask('increment', { by: 2 }), { count: 2 });
  t.deepEqual(await b.ref(Counter, key).ask('increment', { by: 3 }), { count: 5 });
  t.deepEqual(await b.ref(Counter, key).ask('get', {}), { count: 5 });
  const hosts = [a, b].filter((r) => r.activeAddresses().includes(`counter/${key}`));
  t.is(hosts.length, 1, 'exactly one node hosts it');
});

test.serial('concurrent increments from both nodes all land exactly once', async (t) => {
  const key = 'c-concurrent';
  // 400 durable saves queue behind each other: the deadline is generous because
  // this is about exactly-once, and the whole suite shares one MongoDB.
  const burst = { timeoutMs: 60_000 };
  await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 ? a : b).ref(Counter, key).ask('increment', { by: 1 }, burst)));
  t.deepEqual(await a.ref(Counter, key).ask('get', {}), { count: 400 });
  const stored = await states('counter').read(key);
  t.is((stored?.state as { count: number }).count, 400, 'durable: saved before each reply');
});

test.serial('an invalid message is refused at the sender and never reaches the actor', async (t) => {
  const key = 'c-invalid';
  t.is(await codeOf(a.ref(Counter, key).ask('increment', { by: -1 })), 'ACTOR_MESSAGE_INVALID');
  t.is(await codeOf(a.ref(Counter, key).ask('increment', { by: 'x' } as never)), 'ACTOR_MESSAGE_INVALID');
  t.is(await codeOf(a.ref(Counter, key).ask('nope' as never, {} as never)), 'ACTOR_UNKNOWN_MESSAGE');
  t.is(await codeOf(a.ref(Counter, 'bad key with spaces').ask('get', {})), 'ACTOR_MESSAGE_INVALID');
  t.false(a.activeAddresses().includes(`counter/${key}`) || b.activeAddresses().includes(`counter/${key}`), 'never activated');
  t.deepEqual(await a.ref(Counter, key).ask('increment', { by: 1 }), { count: 1 }, 'still works');
});

test.serial('an unregistered actor type is a typed error', async (t) => {
  const stranger = { ...Counter, type: 'stranger' } as typeof Counter;
  t.is(await codeOf(a.ref(stranger, 'x').ask('get', {})), 'ACTOR_UNKNOWN_TYPE');
});

test.serial('turns do not interleave: an awaiting handler keeps the next message out', async (t) => {
  const key = `slow-${randomBytes(3).toString('hex')}`;
  await Promise.all([
    a.ref(Slow, key).ask('work', { id: '1', ms: 100 }),
    b.ref(Slow, key).ask('work', { id: '2', ms: 10 }),
    a.ref(Slow, key).ask('work', { id: '3', ms: 10 }),
  ]);
  const { log } = await a.ref(Slow, key).ask('log', {});
  for (let i = 0; i < log.length; i += 2) {
    t.true(log[i]!.startsWith('start ') && log[i + 1] === `end ${log[i]!.slice(6)}`, log.join(','));
  }
});

test.serial('a full mailbox answers ACTOR_BUSY and the actor keeps working', async (t) => {
  const key = `busy-${randomBytes(3).toString('hex')}`;
  await a.ref(Slow, key).ask('log', {}); // activate on a
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => codeOf(a.ref(Slow, key).ask('work', { id: String(i), ms: 50 }))));
  t.true(results.includes('ACTOR_BUSY'), results.join(','));
  t.true(results.filter((r) => r === 'ok').length >= 5);
  t.is(await codeOf(a.ref(Slow, key).ask('log', {})), 'ok');
});

test.serial('a timeout is a typed error and the actor keeps working', async (t) => {
  const key = `timeout-${randomBytes(3).toString('hex')}`;
  t.is(await codeOf(b.ref(Slow, key).ask('work', { id: 'long', ms: 800 }, { timeoutMs: 200 })), 'ACTOR_TIMEOUT');
  t.is(await codeOf(b.ref(Slow, key).ask('log', {}, { timeoutMs: 2_000 })), 'ok');
});

test.serial('a handler that throws answers ACTOR_HANDLER_FAILED and the actor keeps working', async (t) => {
  const key = `fail-${randomBytes(3).toString('hex')}`;
  t.is(await codeOf(a.ref(Slow, key).ask('fail', {})), 'ACTOR_HANDLER_FAILED');
  t.is(await codeOf(a.ref(Slow, key).ask('log', {})), 'ok');
});

test.serial('a cycle of asks (A asks B asks A) fails fast with ACTOR_CYCLE', async (t) => {
  const started = Date.now();
  t.is(await codeOf(a.ref(Relay, 'ra').ask('forward', { path: ['rb', 'ra'] })), 'ACTOR_CYCLE');
  t.true(Date.now() - started < 1_000, 'well before the timeout');
  t.deepEqual(await a.ref(Relay, 'ra').ask('forward', { path: ['rb', 'rc'] }), { reached: 'rc' }, 'acyclic chains work');
  t.is(await codeOf(b.ref(Relay, 'self').ask('forward', { path: ['self'] })), 'ACTOR_CYCLE', 'self-ask');
});

test.serial('passivation saves cached state and reactivation restores it', async (t) => {
  const key = `cached-${randomBytes(3).toString('hex')}`;
  for (let i = 0; i < 5; i++) await a.ref(CachedCounter, key).ask('increment', { by: 1 });
  // Stop node a: its actors passivate with a final flush; b then activates it from MongoDB.
  await a.stop();
  t.deepEqual(await b.ref(CachedCounter, key).ask('get', {}), { count: 5 });
  a = await start('a');
});

test.serial('an activation that never saved a state leaves no stored record once it passivates', async (t) => {
  const tag = randomBytes(3).toString('hex');
  const looked = Array.from({ length: 20 }, (_, i) => `looked-${tag}-${i}`);
  const written = `written-${tag}`;
  for (const key of looked) t.deepEqual(await a.ref(Counter, key).ask('get', {}), { count: 0 });
  await a.ref(Counter, written).ask('increment', { by: 1 });
  const hostedByA = looked.filter((key) => a.activeAddresses().includes(`counter/${key}`));
  t.true(hostedByA.length > 0);
  t.not(await states('counter').read(hostedByA[0]!), null, 'claimed while active');
  await a.stop(); // passivates everything it hosts
  const left = await Promise.all(hostedByA.map((key) => states('counter').read(key)));
  t.deepEqual(
    left,
    hostedByA.map(() => null),
    'lookups of ids that hold nothing are not kept',
  );
  a = await start('a');
  t.deepEqual(await a.ref(Counter, written).ask('get', {}), { count: 1 }, 'a saved state stays');
});

test.serial('cached state is written behind within flushAfterMs', async (t) => {
  const key = `wb-${randomBytes(3).toString('hex')}`;
  await b.ref(CachedCounter, key).ask('increment', { by: 7 });
  t.true(await eventually(async () => ((await states('cached-counter').read(key))?.state as { count?: number } | null)?.count === 7, 2_000));
});

test.serial('timers fire while active and reminders are delivered durably', async (t) => {
  const key = `alarm-${randomBytes(3).toString('hex')}`;
  await a.ref(Alarm, key).ask('startTicking', { everyMs: 50 });
  t.true(await eventually(async () => (await a.ref(Alarm, key).ask('status', {})).ticks >= 3, 3_000), 'timer ticks');
  await b.ref(Alarm, key).ask('arm', { inMs: 300 });
  t.true(await eventually(async () => (await b.ref(Alarm, key).ask('status', {})).rings === 1, 5_000), 'reminder rang');
  // Barrier: a second reminder set after the first rang, due later; a repeat of the first would ring before it.
  await b.ref(Alarm, key).ask('arm', { inMs: 300, name: 'marker' });
  t.true(await eventually(async () => (await b.ref(Alarm, key).ask('status', {})).rang.includes('marker'), 5_000), 'second reminder rang');
  t.deepEqual((await b.ref(Alarm, key).ask('status', {})).rang, ['wake', 'marker'], 'a one-off reminder rings once');
});

test.serial('the state store refuses a write from a stale epoch, even if it read the latest version', async (t) => {
  const key = `fence-${randomBytes(3).toString('hex')}`;
  const old = await states('counter').claim(key, 10);
  t.true(old.ok);
  t.true(await states('counter').save(key, 10, 0, null, { count: 1, increments: 1 }, []));
  const newer = await states('counter').claim(key, 11);
  t.true(newer.ok && newer.version === 1);
  t.false(await states('counter').save(key, 10, 1, null, { count: 999, increments: 999 }, []), 'old owner fenced');
  t.false((await states('counter').claim(key, 10)).ok, 'old owner cannot re-claim');
  t.true(await states('counter').save(key, 11, 1, null, { count: 2, increments: 2 }, []));
  t.deepEqual((await states('counter').read(key))?.state, { count: 2, increments: 2 });
});

test.serial('garbage published to a node inbox is dropped and the node keeps working', async (t) => {
  const raw = services.redis();
  const inbox = `${namespace}:actors:inbox:${a.id}`;
  for (const junk of ['not json', '{}', JSON.stringify({ kind: 'ask', id: 'x' }), JSON.stringify({ kind: 'reply', id: 'nope', ok: true, output: 1 })]) {
    t.is(await raw.publish(inbox, junk), 1);
  }
  // A well-formed envelope whose input fails the schema gets a typed error reply, not a crash.
  const replyTo = `probe-${randomBytes(3).toString('hex')}`;
  const sub = services.redis();
  const replyChannel = `${namespace}:actors:inbox:${replyTo}`;
  await sub.subscribe(replyChannel);
  const reply = new Promise<string>((resolve) => sub.on('message', (_c: string, m: string) => resolve(m)));
  await raw.publish(
    inbox,
    JSON.stringify({
      kind: 'ask',
      id: 'p1',
      replyTo,
      to: { type: 'counter', key: 'junk' },
      message: 'increment',
      input: { by: 'lots' },
      deadline: Date.now() + 5_000,
      chain: [],
      hops: 0,
    }),
  );
  const parsed = JSON.parse(await reply) as { ok: boolean; error?: { code: string } };
  t.false(parsed.ok);
  t.is(parsed.error?.code, 'ACTOR_MESSAGE_INVALID');
  t.deepEqual(await a.ref(Counter, 'after-junk').ask('increment', { by: 1 }), { count: 1 });
});

test.serial('metrics count activations, turns and asks by outcome', async (t) => {
  await a.ref(Counter, 'metrics').ask('increment', { by: 1 });
  await a
    .ref(Counter, 'metrics')
    .ask('increment', { by: 0 })
    .catch(() => {});
  const metrics = await a.registry.getMetricsAsJSON();
  const byName = new Map(metrics.map((m) => [m.name, m]));
  for (const name of [
    'flock_actor_activations_total',
    'flock_actor_active',
    'flock_actor_mailbox_depth',
    'flock_actor_turn_seconds',
    'flock_actor_asks_total',
  ]) {
    t.true(byName.has(name), name);
  }
  const asks = byName.get('flock_actor_asks_total')!.values as { labels: { outcome?: string; type?: string }; value: number }[];
  t.true(asks.some((v) => v.labels.outcome === 'ok' && v.labels.type === 'counter' && v.value > 0));
  t.true(asks.some((v) => v.labels.outcome === 'invalid' && v.value > 0));
});

// ---- effects ----

const runsOf = (key: string) => ledgerEffects.filter((e) => e.startsWith(`${key}:`)).map((e) => e.slice(key.length + 1));
const listed = async (key: string) => ((await states('ledger').read(key))?.pending ?? []).map((p) => z.object({ note: z.string() }).parse(JSON.parse(p)).note);

test.serial('effects run after the state is saved and before the reply, and stay listed until the next save', async (t) => {
  const key = `ledger-${randomBytes(3).toString('hex')}`;
  t.deepEqual(await a.ref(Ledger, key).ask('record', { note: 'n1' }), { entries: 1 });
  t.deepEqual(runsOf(key), ['n1'], 'done before the reply');
  t.like((await states('ledger').read(key))?.state, { entries: 1 });
  t.deepEqual(await listed(key), ['n1'], 'saved with the state that made it');
  t.deepEqual(await b.ref(Ledger, key).ask('record', { note: 'n2' }), { entries: 2 });
  t.deepEqual(await listed(key), ['n2'], 'the next save replaces the list');
  t.deepEqual(runsOf(key), ['n1', 'n2'], 'each done once');
});

test.serial('a failed effect answers ACTOR_UNAVAILABLE, the state stays saved, and the effect is redone before the next turn', async (t) => {
  const key = `ledger-${randomBytes(3).toString('hex')}`;
  ledgerFailures.set(`${key}-f`, 1);
  t.is(await codeOf(a.ref(Ledger, key).ask('record', { note: `${key}-f` })), 'ACTOR_UNAVAILABLE');
  t.like((await states('ledger').read(key))?.state, { entries: 1 }, 'the state was saved first');
  t.deepEqual(await a.ref(Ledger, key).ask('get', {}), { entries: 1, voided: 0 });
  t.deepEqual(runsOf(key), [`${key}-f`, `${key}-f`], 'failed once, redone before the next turn');
  t.deepEqual(await a.ref(Ledger, key).ask('get', {}), { entries: 1, voided: 0 });
  t.is(runsOf(key).length, 2, 'not redone again once it succeeded');
});

test.serial('a failed effect is redone by itself while no message comes, backing off while it keeps failing', async (t) => {
  const key = `ledger-${randomBytes(3).toString('hex')}`;
  ledgerFailures.set(`${key}-r`, 2);
  t.is(await codeOf(a.ref(Ledger, key).ask('record', { note: `${key}-r` })), 'ACTOR_UNAVAILABLE');
  t.true(await eventually(async () => runsOf(key).length === 3, 15_000), 'failed again after 1 s, succeeded after 2 s more');
  t.deepEqual(await a.ref(Ledger, key).ask('get', {}), { entries: 1, voided: 0 });
  t.is(runsOf(key).length, 3, 'the next turn finds it done');
});

test.serial('an effect that can never succeed compensates: its state is saved with nothing left to do, and the sender gets its error', async (t) => {
  const key = `ledger-${randomBytes(3).toString('hex')}`;
  t.is(await codeOf(b.ref(Ledger, key).ask('record', { note: 'c1', compensate: true })), 'POST_NOT_FOUND');
  t.deepEqual(await b.ref(Ledger, key).ask('get', {}), { entries: 0, voided: 1 });
  t.deepEqual(await listed(key), [], 'nothing left to do');
  t.deepEqual(runsOf(key), ['c1'], 'not redone');
});

test.serial('a graceful stop records the effects as done, so the next activation does not redo them', async (t) => {
  const key = `ledger-${randomBytes(3).toString('hex')}`;
  await a.ref(Ledger, key).ask('record', { note: 'g1' });
  const host = a.activeAddresses().includes(`ledger/${key}`) ? 'a' : 'b';
  if (host === 'a') await a.stop();
  else await b.stop();
  t.deepEqual(await listed(key), [], 'the final write cleared the list');
  const other = host === 'a' ? b : a;
  t.deepEqual(await other.ref(Ledger, key).ask('get', {}), { entries: 1, voided: 0 });
  t.deepEqual(runsOf(key), ['g1']);
  if (host === 'a') a = await start('a');
  else b = await start('b');
});

test.serial(
  'a node that lost its lease takes its actors back on their next message without redoing the effects it ran, and writes nothing at the loss',
  async (t) => {
    const key = `ledger-${randomBytes(3).toString('hex')}`;
    await a.ref(Ledger, key).ask('record', { note: 'l1' });
    const host = a.activeAddresses().includes(`ledger/${key}`) ? a : b;
    // What Redis losing the node's lease (a restart, a flush, a pause past the lease) looks like to the node.
    const redis = services.redis();
    await redis.del(`${namespace}:actors:node:${host.id}`);
    t.true(await eventually(async () => !host.activeAddresses().includes(`ledger/${key}`), 10_000), 'every activation dropped');
    t.deepEqual(await listed(key), ['l1'], 'no write at the loss: the effect stays listed');
    t.deepEqual(await host.ref(Ledger, key).ask('get', {}), { entries: 1, voided: 0 });
    t.true(host.activeAddresses().includes(`ledger/${key}`), 'back on the same node');
    t.deepEqual(runsOf(key), ['l1'], 'the node knew it had run it: not redone');
  },
);

test.serial('a crash leaves the effects listed with the state, and the next activation redoes them before its first turn', async (t) => {
  const key = `ledger-${randomBytes(3).toString('hex')}`;
  // What a node leaves when it dies after saving a turn and before (or while) running its effects.
  await connection.collection('actor_states').insertOne({
    _id: `ledger/${key}`,
    type: 'ledger',
    key,
    epoch: 0,
    version: 1,
    state: { entries: 1, voided: 0 },
    pending: [JSON.stringify({ kind: 'append', note: 'crashed', compensate: false })],
    updatedAt: new Date(),
  } as never);
  t.deepEqual(await a.ref(Ledger, key).ask('get', {}), { entries: 1, voided: 0 });
  t.deepEqual(runsOf(key), ['crashed']);
});
