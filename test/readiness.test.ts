// /healthz and /readyz of a real node process: readiness lists every backing
// service, turns 503 when Redis goes away and 200 again when it returns.
import test from 'ava';
import { eventually, startNodeProcess } from './helpers/node-process.ts';
import { privateRedis } from './helpers/private-redis.ts';

interface Report {
  ready: boolean;
  lifecycle: string;
  services: Record<string, { ok: boolean; using: string }>;
}

const readyz = async (url: string) => {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as Report };
};

test('a started node is healthy and ready with every service listed', async (t) => {
  const node = await startNodeProcess();
  t.teardown(() => node.stop());
  const health = await fetch(`${node.url}/healthz`);
  t.is(health.status, 200);
  const { status, body } = await readyz(node.url);
  t.is(status, 200);
  t.true(body.ready);
  t.deepEqual(Object.keys(body.services).sort(), ['mongo', 'redis', 's3', 'stripe']);
  for (const [name, s] of Object.entries(body.services)) {
    t.true(s.ok, name);
    t.true(s.using.length > 0, name);
  }
  const startupServices = node.logs.filter((l) => l.msg === 'service').map((l) => l.service);
  t.deepEqual([...startupServices].sort(), ['media', 'mongo', 'redis', 's3', 'stripe']);
});

test('/metrics serves Prometheus metrics of the process and the actor runtime', async (t) => {
  const node = await startNodeProcess();
  t.teardown(() => node.stop());
  const res = await fetch(`${node.url}/metrics`);
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  t.regex(text, /^# HELP flock_actor_asks_total /m);
  t.regex(text, /^process_cpu_user_seconds_total\{node="/m);
});

test('an unknown route gets a typed 404', async (t) => {
  const node = await startNodeProcess();
  t.teardown(() => node.stop());
  const res = await fetch(`${node.url}/nope`);
  t.is(res.status, 404);
  t.deepEqual(await res.json(), { error: { code: 'HTTP_NOT_FOUND', message: 'No such route' } });
});

test('/readyz turns 503 when Redis stops and back to 200 when it returns', async (t) => {
  const redis = await privateRedis();
  t.teardown(() => redis.stop());
  const node = await startNodeProcess({ env: { REDIS_URL: redis.url } });
  t.teardown(() => node.stop());
  t.is((await readyz(node.url)).status, 200);

  await redis.stop();
  t.true(
    await eventually(async () => {
      const r = await readyz(node.url);
      return r.status === 503 && r.body.services.redis?.ok === false && r.body.services.mongo?.ok === true;
    }),
    'readiness reports Redis down',
  );
  const health = await fetch(`${node.url}/healthz`);
  t.is(health.status, 200, 'the process itself stays healthy');

  await redis.start();
  t.true(await eventually(async () => (await readyz(node.url)).status === 200, 20_000), 'readiness recovers');
});
