// The domain-event consumer groups (events/consumer-group.ts) against real
// Redis: an event is handled once even when its handler outlasts the claim
// time, an event left by a dead consumer is taken over, a failed one is
// retried, a malformed one is dropped.
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { Redis } from 'ioredis';
import { createLogger } from '../kernel/logger.ts';
import { EventConsumer } from '../events/consumer-group.ts';
import type { DomainEvent, DomainEventOf } from '../events/domain.ts';
import { requireEnv } from './helpers/env.ts';
import { eventually } from './helpers/node-process.ts';

const redisUrl = requireEnv('REDIS_URL');
const log = createLogger({ level: 'silent', nodeId: 'test' });
const CLAIM_IDLE_MS = 600;

let redis: Redis;
const keys: string[] = [];
test.before(() => {
  redis = new Redis(redisUrl);
});
test.after.always(async () => {
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

function streamKey(): string {
  const key = `t:events:${randomBytes(4).toString('hex')}`;
  keys.push(key);
  return key;
}

const event = (id: string): DomainEventOf<'posts:deleted'> => ({
  id,
  type: 'posts:deleted',
  at: Date.now(),
  data: { postId: id, authorId: 'a', removedBy: null },
});
const publish = (key: string, e: DomainEvent | string) => redis.xadd(key, '*', 'event', typeof e === 'string' ? e : JSON.stringify(e));
const pendingCount = async (key: string) => ((await redis.xpending(key, 'g')) as [number])[0];

function consumer(key: string, nodeId: string, handle: (e: DomainEvent) => Promise<void>): EventConsumer {
  return new EventConsumer({ redisUrl, streamKey: key, group: 'g', nodeId, log, handle, claimIdleMs: CLAIM_IDLE_MS, claimEveryMs: 100 });
}

test('an event whose handler runs several times the claim time is handled once, not taken over', async (t) => {
  const key = streamKey();
  const calls: string[] = [];
  const slow = (node: string) => async (e: DomainEvent) => {
    calls.push(`${node}:${e.id}`);
    await new Promise((r) => setTimeout(r, 5 * CLAIM_IDLE_MS));
  };
  const a = consumer(key, 'a', slow('a'));
  await a.start();
  await publish(key, event('e1'));
  t.true(await eventually(async () => calls.length === 1));
  const b = consumer(key, 'b', slow('b'));
  await b.start();
  t.true(await eventually(async () => (await pendingCount(key)) === 0, 10_000));
  // Barrier: two more claim passes of b, each of which handles what it claimed before it ends; a claim of e1 would show.
  const passes = b.claimPasses;
  t.true(await eventually(async () => b.claimPasses >= passes + 2, 10_000), 'b keeps claiming');
  await Promise.all([a.stop(), b.stop()]);
  t.deepEqual(calls, ['a:e1']);
});

test('an event a dead consumer read and never acknowledged is taken over and handled', async (t) => {
  const key = streamKey();
  await redis.xgroup('CREATE', key, 'g', '$', 'MKSTREAM');
  await publish(key, event('orphan'));
  await redis.xreadgroup('GROUP', 'g', 'dead', 'COUNT', 10, 'STREAMS', key, '>'); // read, then "crashes"
  const handled: string[] = [];
  const b = consumer(key, 'b', async (e) => {
    handled.push(e.id);
  });
  await b.start();
  t.true(await eventually(async () => (await pendingCount(key)) === 0, 10_000));
  await b.stop();
  t.deepEqual(handled, ['orphan']);
});

test('a handler that fails is retried until it succeeds; a malformed entry is dropped', async (t) => {
  const key = streamKey();
  let attempts = 0;
  const handled: string[] = [];
  const a = consumer(key, 'a', async (e) => {
    attempts += 1;
    if (attempts < 3) throw new Error('transient');
    handled.push(e.id);
  });
  await a.start();
  await publish(key, 'not json');
  await publish(key, JSON.stringify({ no: 'id' }));
  await publish(key, event('flaky'));
  t.true(await eventually(async () => handled.length === 1 && (await pendingCount(key)) === 0, 10_000));
  await a.stop();
  t.deepEqual(handled, ['flaky']);
  t.is(attempts, 3);
});

test('a group Redis lost (the stream deleted, as by FLUSHALL) is created again, and events appended after the loss are handled', async (t) => {
  const key = streamKey();
  const handled: string[] = [];
  const a = consumer(key, 'a', async (e) => {
    handled.push(e.id);
  });
  await a.start();
  await publish(key, event('before'));
  t.true(await eventually(async () => handled.length === 1 && (await pendingCount(key)) === 0, 10_000));
  // What FLUSHALL does to this stream: the stream and its groups are gone, and the next append makes a stream without groups.
  await redis.del(key);
  await publish(key, event('after-1'));
  await publish(key, event('after-2'));
  t.true(await eventually(async () => handled.length === 3, 15_000), 'the events appended after the loss are handled');
  t.true(a.groupsRecreated >= 1);
  await publish(key, event('later'));
  t.true(await eventually(async () => handled.length === 4 && (await pendingCount(key)) === 0, 10_000));
  await a.stop();
  t.deepEqual(handled, ['before', 'after-1', 'after-2', 'later']);
});

test('a failed event is tried again by its own consumer within seconds, long before another could claim it', async (t) => {
  const key = streamKey();
  let attempts = 0;
  const handled: string[] = [];
  // Claims only after a minute: only the consumer's own retries can handle it in time.
  const a = new EventConsumer({
    redisUrl,
    streamKey: key,
    group: 'g',
    nodeId: 'a',
    log,
    claimIdleMs: 60_000,
    handle: async (e) => {
      attempts += 1;
      if (attempts < 3) throw new Error('a backing service is away');
      handled.push(e.id);
    },
  });
  await a.start();
  await publish(key, event('retried'));
  t.true(await eventually(async () => handled.length === 1 && (await pendingCount(key)) === 0, 15_000), 'handled after 1 s and 2 s of backoff');
  await a.stop();
  t.is(attempts, 3);
});
