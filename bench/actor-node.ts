// Runtime B of the actor benchmark (bench/actors.ts forks it): a separate
// process hosting an ActorRuntime with the fixture actor types, sharing the
// parent's Redis namespace and MongoDB database. It activates the cross-node
// benchmark actor itself (so the parent must route to it over Redis), runs a
// raw Redis pub/sub echo for the PUBLISH round-trip baseline, and talks to the
// parent over IPC.
// Env: MONGO_URL, REDIS_URL, BENCH_DB, BENCH_NAMESPACE, BENCH_REMOTE_KEY, BENCH_POOL_SIZE.
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { pino } from 'pino';
import { z } from 'zod';
import { ActorRuntime } from '../actors/runtime.ts';
import { CachedCounter, fixtureActorTypes } from '../testkit/actors.ts';

const env = z
  .object({
    MONGO_URL: z.string().min(1),
    REDIS_URL: z.string().min(1),
    BENCH_DB: z.string().min(1),
    BENCH_NAMESPACE: z.string().min(1),
    BENCH_REMOTE_KEY: z.string().min(1),
    BENCH_POOL_SIZE: z.coerce.number().int().min(1).default(20),
  })
  .parse(process.env);

const command = z.discriminatedUnion('op', [z.object({ op: z.literal('active'), id: z.number() }), z.object({ op: z.literal('stop') })]);

const connection = await mongoose.createConnection(env.MONGO_URL, { dbName: env.BENCH_DB, maxPoolSize: env.BENCH_POOL_SIZE }).asPromise();
const runtime = await ActorRuntime.start({
  redisUrl: env.REDIS_URL,
  connection,
  nodeId: 'bench-b',
  namespace: env.BENCH_NAMESPACE,
  types: fixtureActorTypes,
  // Warnings go to stderr; stdout stays the parent's (it is ignored anyway).
  log: pino({ level: 'warn', base: { node: 'bench-b' } }, pino.destination(2)),
  idleAfterMs: 10 * 60_000,
});

// Activate the cross-node actor here, before the parent ever asks for it.
await runtime.ref(CachedCounter, env.BENCH_REMOTE_KEY).ask('get', {});

// Pub/sub echo for the PUBLISH -> subscriber -> PUBLISH-back baseline.
const pingChannel = `${env.BENCH_NAMESPACE}:bench:ping`;
const pongChannel = `${env.BENCH_NAMESPACE}:bench:pong`;
const echoSub = new Redis(env.REDIS_URL, { connectionName: 'bench-b-echo-sub' });
const echoPub = new Redis(env.REDIS_URL, { connectionName: 'bench-b-echo-pub' });
echoSub.on('message', (_channel: string, message: string) => {
  echoPub.publish(pongChannel, message).catch((err: unknown) => process.stderr.write(`[bench-b] echo publish failed: ${String(err)}\n`));
});
await echoSub.subscribe(pingChannel);

let stopping: Promise<void> | undefined;
const stop = () =>
  (stopping ??= (async () => {
    await Promise.allSettled([echoSub.quit(), echoPub.quit()]);
    await runtime.stop();
    await connection.close();
    process.exit(0);
  })());

process.on('message', (raw: unknown) => {
  const cmd = command.parse(raw);
  if (cmd.op === 'active') process.send!({ id: cmd.id, active: runtime.activeAddresses() });
  else void stop();
});
// The parent went away (crashed or was killed): do not linger.
process.once('disconnect', () => void stop());
process.once('SIGTERM', () => void stop());

process.send!({ ready: true, runtimeId: runtime.id, active: runtime.activeAddresses() });
