// Presence across nodes against real Redis: several presence instances in one
// process, each with its own connections, like separate nodes.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { FlockError } from '../kernel/errors.ts';
import { createPresence, type Presence, type PresenceChange, type PresenceOptions } from '../presence/presence.ts';
import { redisKeySpace } from './helpers/redis.ts';
import { eventually } from './helpers/node-process.ts';

const { prefix, connect, cleanup } = redisKeySpace();
const raw = connect();
const leaseMs = 600;
const nodes: Presence[] = [];

const startNode = async (nodeId: string, options: Partial<PresenceOptions> = {}) => {
  const presence = createPresence({ redis: connect(), prefix, nodeId, leaseMs, ...options });
  nodes.push(presence);
  await presence.start();
  return presence;
};
const user = () => `u-${randomBytes(4).toString('hex')}`;
/** Waits until a node has recorded `count` more heartbeats in the registry (each one is a tick of its timers). */
const heartbeats = async (node: Presence, count: number) => {
  for (let i = 0; i < count; i++) {
    const before = await raw.zscore(`${prefix}:presence:nodes`, node.instanceId);
    if (!(await eventually(async () => (await raw.zscore(`${prefix}:presence:nodes`, node.instanceId)) !== before, 3_000)))
      throw new Error(`node ${node.instanceId} stopped heartbeating`);
  }
};
const statusOf = async (node: Presence, userId: string) => (await node.status([userId])).get(userId)!;

/** Every change for one user that reaches a node, in arrival order. */
const changesOf = (node: Presence, userId: string) => {
  const seen: PresenceChange[] = [];
  node.onChange((change) => {
    if (change.userId === userId) seen.push(change);
  });
  return seen;
};

test.after.always(async () => {
  await Promise.allSettled(nodes.map((n) => n.stop()));
  await cleanup();
});

test('a user with sockets on two nodes stays online until both disconnect; lastSeen is set at the last disconnect', async (t) => {
  const [a, b] = await Promise.all([startNode('a'), startNode('b')]);
  const u = user();
  t.deepEqual(await statusOf(b, u), { online: false, lastSeen: null }, 'never seen');
  t.deepEqual(await a.connected(u, 's1'), { becameOnline: true });
  t.deepEqual(await a.connected(u, 's2'), { becameOnline: false }, 'second socket on the same node');
  t.deepEqual(await b.connected(u, 's3'), { becameOnline: false }, 'already online through a');
  t.deepEqual(await statusOf(b, u), { online: true, lastSeen: null });

  t.deepEqual(await a.disconnected(u, 's1'), { becameOffline: false, lastSeen: null });
  t.deepEqual(await a.disconnected(u, 's2'), { becameOffline: false, lastSeen: null }, 'b still has a socket');
  t.deepEqual(await statusOf(a, u), { online: true, lastSeen: null });

  const before = Date.now();
  const last = await b.disconnected(u, 's3');
  t.true(last.becameOffline);
  t.true(last.lastSeen !== null && Math.abs(last.lastSeen - before) < 1_000, `lastSeen ${last.lastSeen} is the last disconnect`);
  t.deepEqual(await statusOf(a, u), { online: false, lastSeen: last.lastSeen }, 'seen the same from the other node');

  t.deepEqual(await b.connected(u, 's4'), { becameOnline: true }, 'back online');
  t.deepEqual(await statusOf(a, u), { online: true, lastSeen: last.lastSeen }, 'lastSeen keeps the end of the previous session');
  await b.disconnected(u, 's4');
});

test('transitions are published once, to every node, even when both nodes race', async (t) => {
  const [a, b, c] = await Promise.all([startNode('a'), startNode('b'), startNode('c')]);
  const u = user();
  const onA = changesOf(a, u);
  const onB = changesOf(b, u);
  const onC = changesOf(c, u);
  const connects = await Promise.all([a.connected(u, 'x1'), b.connected(u, 'x2'), a.connected(u, 'x3')]);
  t.is(connects.filter((r) => r.becameOnline).length, 1, 'one connect made the user online');
  const disconnects = await Promise.all([a.disconnected(u, 'x1'), b.disconnected(u, 'x2'), a.disconnected(u, 'x3')]);
  t.is(disconnects.filter((r) => r.becameOffline).length, 1, 'one disconnect made the user offline');
  t.true(await eventually(async () => onA.length >= 2 && onB.length >= 2 && onC.length >= 2, 3_000));
  // One more transition, published after the race on the same channel: a duplicate would have come before it.
  await c.connected(u, 'x4');
  t.true(await eventually(async () => onA.length >= 3 && onB.length >= 3 && onC.length >= 3, 3_000));
  const lastSeen = disconnects.find((r) => r.becameOffline)!.lastSeen;
  const expected = [
    { userId: u, online: true, lastSeen: null },
    { userId: u, online: false, lastSeen },
    { userId: u, online: true, lastSeen },
  ];
  t.deepEqual(onA, expected);
  t.deepEqual(onB, expected);
  t.deepEqual(onC, expected);
});

test('a node whose heartbeat stops has its users go offline after the lease, seen from the other nodes', async (t) => {
  const [a, b, c] = await Promise.all([startNode('a'), startNode('b'), startNode('c')]);
  const only = user();
  const both = user();
  const onB = changesOf(b, only);
  const onC = changesOf(c, only);
  const bothOnB = changesOf(b, both);
  await a.connected(only, 's1');
  await a.connected(only, 's2');
  await a.connected(both, 's3');
  await b.connected(both, 's4');
  t.true(await eventually(async () => onB.length === 1 && onC.length === 1 && bothOnB.length === 1, 2_000), 'online announced');
  for (const list of [onB, onC, bothOnB]) list.length = 0;

  const stoppedAt = Date.now();
  await a.stop(); // no disconnects: like a crash, the sockets lapse with the lease
  t.true((await statusOf(b, only)).online, 'still online inside the lease');

  t.true(await eventually(async () => !(await statusOf(b, only)).online, 5_000), 'offline once the lease lapsed');
  t.true(Date.now() - stoppedAt >= leaseMs / 3, 'not before the lease could lapse');
  const seen = await statusOf(c, only);
  t.false(seen.online);
  t.true(seen.lastSeen !== null && seen.lastSeen <= Date.now() && seen.lastSeen >= stoppedAt - leaseMs, "lastSeen is the dead node's last heartbeat");

  t.true(await eventually(async () => onB.length >= 1 && onC.length >= 1, 5_000), 'a sweep published the transition');
  t.deepEqual(await statusOf(c, only), { online: false, lastSeen: onB[0]!.lastSeen }, 'the published lastSeen is the stored one');
  // The dead node leaves the registry when the last of its users is swept; then one more transition closes the check.
  t.true(await eventually(async () => (await raw.zscore(`${prefix}:presence:nodes`, a.instanceId)) === null, 5_000), 'swept');
  await c.connected(only, 's5');
  t.true(await eventually(async () => onB.length >= 2 && onC.length >= 2, 3_000));
  t.deepEqual(
    onB.map((ch) => ch.online),
    [false, true],
    'published once although two nodes sweep',
  );
  t.deepEqual(onC, onB);
  await c.disconnected(only, 's5');

  t.true((await statusOf(c, both)).online, 'a user with a socket on a live node stays online');
  t.deepEqual(bothOnB, []);
  t.true(
    await eventually(
      async () =>
        (await raw.exists(`${prefix}:presence:node:${a.instanceId}:users`)) === 0 && (await raw.zscore(`${prefix}:presence:nodes`, a.instanceId)) === null,
      3_000,
    ),
    'the dead node left no bookkeeping behind',
  );
  await b.disconnected(both, 's4');
  t.deepEqual((await b.status([both])).get(both)?.online, false);
});

test('a node presumed dead comes back: it registers again and its users are online again', async (t) => {
  const [a, b] = await Promise.all([startNode('a'), startNode('b')]);
  const u = user();
  const onB = changesOf(b, u);
  await a.connected(u, 's1');
  t.true(await eventually(async () => onB.length === 1, 2_000), 'online announced');
  onB.length = 0;
  // What a long pause looks like from Redis: the lease is gone and the heartbeat is old.
  await raw.multi().del(`${prefix}:presence:node:${a.instanceId}`).zadd(`${prefix}:presence:nodes`, 0, a.instanceId).exec();
  t.true(await eventually(async () => (await raw.exists(`${prefix}:presence:node:${a.instanceId}`)) === 1, 3_000), 'lease taken again');
  t.true(await eventually(async () => (await statusOf(b, u)).online, 3_000), 'online again');
  // Barrier: both nodes run their timers (heartbeat, then sweep) twice more; a wrong sweep would have happened by then.
  await heartbeats(b, 2);
  await heartbeats(a, 2);
  t.true((await statusOf(b, u)).online, 'and it stays online');
  if (onB.length > 0) t.true(onB.at(-1)!.online, 'if a sweep announced it offline meanwhile, it was announced online after');
  t.true(onB.length % 2 === 0, 'offline and online come in pairs');
  await a.disconnected(u, 's1');
});

test('reconciliation rebuilds what Redis lost and removes what it should not have', async (t) => {
  const a = await startNode('a', { reconcileEveryMs: 300 });
  const b = await startNode('b');
  const u = user();
  const stray = user();
  const onB = changesOf(b, u);
  await a.connected(u, 's1');
  t.true(await eventually(async () => onB.length === 1, 2_000));
  await raw.del(`${prefix}:presence:user:${u}`, `${prefix}:presence:node:${a.instanceId}:users`); // data loss
  t.false((await statusOf(b, u)).online, 'lost');
  t.true(await eventually(async () => (await statusOf(b, u)).online, 3_000), "rebuilt from the node's sockets");
  t.true(await eventually(async () => onB.length === 2 && onB[1]!.online, 2_000), 'announced online again');

  // A user on a's books with no socket on a (a write that failed after the fact).
  await raw.hset(`${prefix}:presence:user:${stray}`, `n:${a.instanceId}`, '1', 'online', '1');
  await raw.sadd(`${prefix}:presence:node:${a.instanceId}:users`, stray);
  t.true((await statusOf(b, stray)).online);
  t.true(await eventually(async () => !(await statusOf(b, stray)).online, 3_000), 'stray removed');
  await a.disconnected(u, 's1');
});

test('a socket counts once, an unknown socket is a no-op, and sockets per user are bounded', async (t) => {
  const a = await startNode('a', { maxSocketsPerUser: 2 });
  const u = user();
  t.deepEqual(await a.disconnected(u, 'never'), { becameOffline: false, lastSeen: null });
  t.deepEqual(await a.connected(u, 's1'), { becameOnline: true });
  t.deepEqual(await a.connected(u, 's1'), { becameOnline: false }, 'same socket again');
  t.deepEqual(await a.connected(u, 's2'), { becameOnline: false });
  const err = await t.throwsAsync(a.connected(u, 's3'), { instanceOf: FlockError });
  t.is(err?.code, 'REQUEST_TOO_MANY_CONNECTIONS');
  t.deepEqual(await a.disconnected(u, 's3'), { becameOffline: false, lastSeen: null }, 'the refused socket was never counted');
  t.deepEqual(await a.disconnected(u, 's1'), { becameOffline: false, lastSeen: null });
  t.false((await a.disconnected(u, 's1')).becameOffline, 'twice is a no-op');
  t.true((await statusOf(a, u)).online);
  t.true((await a.disconnected(u, 's2')).becameOffline);
  const invalid = await t.throwsAsync(a.connected('bad id', 's'), { instanceOf: FlockError });
  t.is(invalid?.code, 'REQUEST_INVALID');
});

test('status answers many users in one call and validates its input', async (t) => {
  const a = await startNode('a', { maxStatusBatch: 300 });
  const users = Array.from({ length: 250 }, user);
  await Promise.all(users.filter((_, i) => i % 3 === 0).map((u) => a.connected(u, 's')));
  const status = await a.status([...users, users[0]!]);
  t.is(status.size, 250);
  users.forEach((u, i) => t.is(status.get(u)?.online, i % 3 === 0, u));
  t.deepEqual(await a.status([]), new Map());
  const tooMany = await t.throwsAsync(a.status(Array.from({ length: 301 }, user)), { instanceOf: FlockError });
  t.is(tooMany?.code, 'REQUEST_TOO_LARGE');
  const invalid = await t.throwsAsync(a.status(['ok', 'not ok']), { instanceOf: FlockError });
  t.is(invalid?.code, 'REQUEST_INVALID');
  await Promise.all(users.filter((_, i) => i % 3 === 0).map((u) => a.disconnected(u, 's')));
});

test('every key has a TTL, and a clean stop leaves the cluster at once', async (t) => {
  const a = await startNode('a');
  const u = user();
  await a.connected(u, 's1');
  for (const key of [
    `${prefix}:presence:node:${a.instanceId}`,
    `${prefix}:presence:node:${a.instanceId}:users`,
    `${prefix}:presence:nodes`,
    `${prefix}:presence:user:${u}`,
  ]) {
    t.true((await raw.pttl(key)) > 0, key);
  }
  t.true((await raw.pttl(`${prefix}:presence:node:${a.instanceId}`)) <= leaseMs);
  await a.disconnected(u, 's1');
  await a.stop();
  t.is(await raw.exists(`${prefix}:presence:node:${a.instanceId}`), 0, 'lease released');
  t.is(await raw.zscore(`${prefix}:presence:nodes`, a.instanceId), null, 'left the registry');
  t.is((await statusOf(await startNode('b'), u)).online, false);
});

test('garbage on the presence channel is dropped and the node keeps working', async (t) => {
  const a = await startNode('a');
  const received: PresenceChange[] = [];
  a.onChange((c) => received.push(c));
  for (const junk of ['not json', '{}', JSON.stringify({ userId: 1, online: 'yes', lastSeen: null })]) {
    await raw.publish(`${prefix}:presence:changes`, junk);
  }
  const u = user();
  await a.connected(u, 's');
  t.true(await eventually(async () => received.some((c) => c.userId === u), 2_000));
  t.true(received.every((c) => typeof c.userId === 'string' && typeof c.online === 'boolean'));
  await a.disconnected(u, 's');
});

test('settings are validated', (t) => {
  t.throws(() => createPresence({ redis: raw, prefix, nodeId: 'a', leaseMs: 10 }), { message: /leaseMs/ });
  t.throws(() => createPresence({ redis: raw, prefix, nodeId: 'bad node' }), { message: /node id/ });
  t.throws(() => createPresence({ redis: raw, prefix, nodeId: 'a', retentionMs: 60_000, reconcileEveryMs: 50_000 }), { message: /reconcileEveryMs/ });
});
