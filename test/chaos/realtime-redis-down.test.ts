// A broadcast while Redis is away: the Socket.IO Redis adapter publishes
// every broadcast without handling a failure, and an unhandled rejection ends
// a Node process. A node whose feeds consumer emitted a live post just as
// Redis went down died that way. The broadcast reaches this node's sockets
// and is lost for the others (broadcasts are best effort); the process lives.
import test from 'ava';
import { createNodeHttpEngine } from '../../server/node-http.ts';
import { createRealtime } from '../../server/realtime.ts';
import { createLogger } from '../../kernel/logger.ts';
import { createRedis, untilReady } from '../../kernel/redis.ts';
import { privateRedis } from '../helpers/private-redis.ts';

test('a broadcast while Redis is away is no unhandled rejection', async (t) => {
  const log = createLogger({ level: 'silent', nodeId: 'test' });
  const redis = await privateRedis();
  const pub = createRedis(redis.url, 'test:pub', log);
  const sub = createRedis(redis.url, 'test:sub', log);
  await Promise.all([untilReady(pub), untilReady(sub)]);
  const engine = createNodeHttpEngine();
  const io = createRealtime({ engine, pub, sub, maxPayloadBytes: 65_536, adapterKey: 'test:sio', log });
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(async () => {
    process.off('unhandledRejection', onUnhandled);
    await new Promise<void>((resolve) => void io.close(() => resolve()));
    engine.close();
    pub.disconnect();
    sub.disconnect();
    await redis.stop();
  });

  await redis.stop();
  io.to('feed:someone').emit('feeds:deleted', { postId: 'p_0', authorId: 'someone' });
  // Commands fail in order: once a later one has failed, so has the publish, and Node looks for unhandled
  // rejections before it leaves that tick: the next macrotask comes after the verdict.
  t.is(
    await pub.ping().then(
      () => 'answered',
      () => 'failed',
    ),
    'failed',
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(unhandled, []);
});

test('a node whose Redis goes away while the adapter subscribes lives, and subscribes when Redis is back', async (t) => {
  const log = createLogger({ level: 'silent', nodeId: 'test' });
  const redis = await privateRedis();
  const pub = createRedis(redis.url, 'test:pub', log);
  const sub = createRedis(redis.url, 'test:sub', log);
  await Promise.all([untilReady(pub), untilReady(sub)]);
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const engine = createNodeHttpEngine();
  let io: ReturnType<typeof createRealtime> | undefined;
  t.teardown(async () => {
    process.off('unhandledRejection', onUnhandled);
    if (io) await new Promise<void>((resolve) => void io?.close(() => resolve()));
    engine.close();
    pub.disconnect();
    sub.disconnect();
    await redis.stop();
  });

  await redis.stop();
  // The adapter's subscriptions are made while Redis is away: each fails once ioredis gives up on it.
  io = createRealtime({ engine, pub, sub, maxPayloadBytes: 65_536, adapterKey: 'test:sio', log });
  t.is(
    await sub.ping().then(
      () => 'answered',
      () => 'failed',
    ),
    'failed',
  );
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(unhandled, []);

  await redis.start();
  const probe = createRedis(redis.url, 'test:probe', log);
  t.teardown(() => probe.disconnect());
  await untilReady(probe);
  const subscribed = async () => {
    const patterns = Number(await probe.call('PUBSUB', 'NUMPAT'));
    const channels = await probe.call('PUBSUB', 'CHANNELS', 'test:sio*');
    return patterns > 0 && Array.isArray(channels) && channels.length > 0;
  };
  const deadline = Date.now() + 30_000;
  while (!(await subscribed()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  t.true(await subscribed(), 'the adapter subscribed once Redis was back');
});
