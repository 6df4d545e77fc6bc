// The actor runtime across real node processes on loopback, with real Redis
// and MongoDB: single activation under load, failover after kill -9, fencing
// of a paused owner, and reminders that survive restarting every node.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import mongoose, { type Connection } from 'mongoose';
import { ActorStateStore } from '../actors/state-store.ts';
import { activationIntervals, startActorNode, type ActorNode, type AskResult } from './helpers/actor-cluster.ts';
import { requireEnv, uniqueDbName } from './helpers/env.ts';
import { eventually } from './helpers/node-process.ts';

const LEASE_MS = 1_500;

interface Cluster {
  db: string;
  namespace: string;
  nodes: ActorNode[];
  connection: Connection;
  store: ActorStateStore;
}

async function cluster(t: { teardown(fn: () => Promise<void>): void }, size: number): Promise<Cluster> {
  const db = uniqueDbName('cluster');
  const namespace = `c${randomBytes(4).toString('hex')}`;
  const nodes = await Promise.all(Array.from({ length: size }, (_, i) => startActorNode(`n${i}`, { db, namespace, leaseMs: LEASE_MS })));
  const connection = await mongoose.createConnection(requireEnv('MONGO_URL'), { dbName: db }).asPromise();
  const c: Cluster = { db, namespace, nodes, connection, store: new ActorStateStore(connection, 'counter') };
  t.teardown(async () => {
    await Promise.all(c.nodes.map((n) => (n.child.signalCode === 'SIGSTOP' ? Promise.resolve() : n.stop())));
    await connection.dropDatabase().catch(() => {});
    await connection.close();
  });
  return c;
}

const count = (r: AskResult) => (r.ok ? (r.output as { count: number }).count : -1);

async function ownerOf(nodes: ActorNode[], address: string): Promise<ActorNode[]> {
  const active = await Promise.all(nodes.map((n) => n.active()));
  return nodes.filter((_, i) => active[i]!.includes(address));
}

/** Runs `total` tasks with at most `limit` in flight. */
async function pool(total: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < total) await task(next++);
    }),
  );
}

test.serial('3 nodes, 10,000 concurrent increments to one counter: exactly 10,000, never two activations at once', async (t) => {
  // 10,000 durable saves, one after another: minutes when other files load the shared database.
  t.timeout(600_000);
  const c = await cluster(t, 3);
  const key = 'hot';
  const failures: string[] = [];
  await pool(10_000, 600, async (i) => {
    const r = await c.nodes[i % 3]!.ask('counter', key, 'increment', { by: 1 }, 60_000);
    if (!r.ok) failures.push(r.error.code);
  });
  t.deepEqual(failures, []);
  t.is(count(await c.nodes[0]!.ask('counter', key, 'get', {})), 10_000);
  t.is(((await c.store.read(key))?.state as { count: number }).count, 10_000, 'stored state');

  const intervals = activationIntervals(c.nodes, `counter/${key}`);
  t.true(intervals.length >= 1);
  for (let i = 1; i < intervals.length; i++) {
    t.true(intervals[i]!.from >= intervals[i - 1]!.to, `activation ${i} overlaps the previous one`);
  }
  t.is((await ownerOf(c.nodes, `counter/${key}`)).length, 1);
});

test.serial('kill -9 of the hosting node: asks succeed again elsewhere within the lease, and every acknowledged increment is kept', async (t) => {
  t.timeout(60_000);
  const c = await cluster(t, 3);
  const key = 'failover';
  t.is(count(await c.nodes[0]!.ask('counter', key, 'increment', { by: 1 })), 1);
  const [owner] = await ownerOf(c.nodes, `counter/${key}`);
  const survivors = c.nodes.filter((n) => n !== owner);

  let acked = 1;
  let unknown = 0;
  let killedAt = 0;
  let firstSuccessAfterKill = 0;
  const stopAt = Date.now() + 6_000;
  const streams = survivors.map(async (node) => {
    while (Date.now() < stopAt) {
      const r = await node.ask('counter', key, 'increment', { by: 1 }, 1_000);
      if (r.ok) {
        acked++;
        if (killedAt && !firstSuccessAfterKill) firstSuccessAfterKill = Date.now();
      } else unknown++;
    }
  });
  t.true(await eventually(async () => acked >= 20, 10_000), 'increments flow before the kill');
  owner!.child.kill('SIGKILL');
  killedAt = Date.now();
  await Promise.all(streams);

  t.true(firstSuccessAfterKill > 0, 'asks succeed again');
  const recovery = firstSuccessAfterKill - killedAt;
  t.true(recovery < LEASE_MS + 1_500, `recovered in ${recovery} ms (lease ${LEASE_MS} ms)`);
  const final = count(await survivors[0]!.ask('counter', key, 'get', {}));
  t.true(final >= acked, `every acknowledged increment is kept (${final} >= ${acked})`);
  t.true(final <= acked + unknown, 'nothing was counted that was not sent');
  t.is((await ownerOf(survivors, `counter/${key}`)).length, 1);
});

test.serial('a paused owner is fenced: after SIGCONT none of its writes land and it drops its stale activation', async (t) => {
  t.timeout(60_000);
  const c = await cluster(t, 2);
  const [first, second] = c.nodes as [ActorNode, ActorNode];
  const key = 'paused';
  for (let i = 0; i < 5; i++) t.true((await first.ask('counter', key, 'increment', { by: 1 })).ok);
  const [owner] = await ownerOf(c.nodes, `counter/${key}`);
  t.is(owner, first);
  const before = await c.store.read(key);

  first.child.kill('SIGSTOP');
  // Queued on the paused node: it will see them only after SIGCONT.
  const lateOnPaused = Array.from({ length: 5 }, () => first.ask('counter', key, 'increment', { by: 100 }, 20_000));
  await new Promise((r) => setTimeout(r, LEASE_MS + 300));

  // The other node takes over once the lease has lapsed and accepts writes.
  let taken: AskResult | undefined;
  t.true(
    await eventually(async () => {
      taken = await second.ask('counter', key, 'increment', { by: 1 }, 1_000);
      return taken.ok;
    }, 10_000),
  );
  t.is(count(taken!), 6);
  const afterTakeover = await c.store.read(key);
  t.true(afterTakeover!.epoch > before!.epoch, 'the new owner holds a higher fencing epoch');

  first.child.kill('SIGCONT');
  const late = await Promise.all(lateOnPaused);
  // The paused node's stale activation must not have written: every late increment
  // either failed or was rerouted to the real owner and counted there, exactly once.
  const lateOk = late.filter((r) => r.ok).length;
  const final = await c.store.read(key);
  t.is((final!.state as { count: number }).count, 6 + 100 * lateOk);
  t.is(final!.epoch, afterTakeover!.epoch, 'no write with the old epoch');
  t.true(await eventually(async () => !(await first.active()).includes(`counter/${key}`), 5_000), 'the paused node dropped its stale activation');
  t.true(first.logs.some((l) => l.msg === 'node lease lost: dropping every activation' || (l.msg === 'actor deactivated' && l.reason === 'lease-lost')));
  t.deepEqual(await ownerOf(c.nodes, `counter/${key}`), [second]);
});

test.serial('reminders fire after every node has been restarted', async (t) => {
  t.timeout(60_000);
  const c = await cluster(t, 2);
  const key = `alarm-${randomBytes(3).toString('hex')}`;
  t.true((await c.nodes[0]!.ask('alarm', key, 'arm', { inMs: 2_500 })).ok);
  await Promise.all(c.nodes.map((n) => n.stop()));
  c.nodes = await Promise.all(['r0', 'r1'].map((id) => startActorNode(id, { db: c.db, namespace: c.namespace, leaseMs: LEASE_MS })));
  t.true(
    await eventually(async () => {
      const r = await c.nodes[1]!.ask('alarm', key, 'status', {});
      return r.ok && (r.output as { rings: number }).rings === 1;
    }, 15_000),
  );
});

test.serial('idle actors passivate and come back with their state', async (t) => {
  t.timeout(30_000);
  const db = uniqueDbName('idle');
  const namespace = `i${randomBytes(4).toString('hex')}`;
  const node = await startActorNode('idle', { db, namespace, leaseMs: LEASE_MS, idleMs: 300 });
  t.teardown(() => node.stop());
  for (let i = 0; i < 3; i++) await node.ask('cached-counter', 'k', 'increment', { by: 2 });
  t.true(await eventually(async () => (await node.active()).length === 0, 5_000), 'passivated');
  t.true(node.logs.some((l) => l.msg === 'actor deactivated' && l.reason === 'passivate'));
  t.is(count(await node.ask('cached-counter', 'k', 'get', {})), 6);
});
