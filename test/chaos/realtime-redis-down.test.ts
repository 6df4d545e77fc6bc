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
