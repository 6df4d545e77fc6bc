// The backing services of a benchmark run: the environment's (MONGO_URL,
// REDIS_URL and the rest) when MONGO_URL is set, otherwise resolved through
// the dev-services module like `npm test` does. Each run also gets a temporary
// directory (the embedded services' data, the nodes' data dirs); `stop()`
// stops what was started and removes it.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { resolveServices, servicesEnv } from '../../devservices/index.ts';
import { loadConfig } from '../../server/config.ts';
import { dropKeys } from './run.ts';

export interface BenchServices {
  /** The run's temporary directory. */
  tmpDir: string;
  /** Whether the dev-services module started embedded services (FerretDB among them). */
  embedded: boolean;
  /** What a Flock node process needs in its environment to use them ({} when they come from the environment). */
  env: Record<string, string>;
  mongoUrl: string;
  redisUrl: string;
  /** The MongoDB pool size the nodes' configuration asks for. */
  poolSize: number;
  stop(): Promise<void>;
}

export async function benchServices(name: string, progress: (line: string) => void): Promise<BenchServices> {
  const tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), `flock-bench-${name}-`));
  const removeTmp = () => fs.rm(tmpDir, { recursive: true, force: true });
  const config = loadConfig({ ...process.env, FLOCK_DATA_DIR: path.join(tmpDir, 'services') });
  const common = { tmpDir, poolSize: config.mongo.poolSize };
  if (config.mongo.url) {
    progress('using MONGO_URL, REDIS_URL and the rest of the environment');
    return { ...common, embedded: false, env: {}, mongoUrl: config.mongo.url, redisUrl: config.redis.url, stop: removeTmp };
  }
  const started = performance.now();
  const services = await resolveServices(config, { log: (m) => progress(`[dev-services] ${m}`) }).catch(async (err: unknown) => {
    await removeTmp();
    throw err;
  });
  for (const [service, using] of Object.entries(services.descriptions)) progress(`[dev-services] ${service}: ${using}`);
  progress(`[dev-services] ready in ${Math.round(performance.now() - started)} ms`);
  return {
    ...common,
    embedded: true,
    env: servicesEnv(services),
    mongoUrl: services.mongoUrl,
    redisUrl: services.redisUrl,
    stop: async () => {
      await services.stop();
      await removeTmp();
    },
  };
}

/**
 * What every benchmark leaves behind, removed in order: the run's database
 * (through `mongo`, or a connection of its own when the nodes may have made it
 * before the bench connected), its Redis keys (`keyPattern`), then the
 * services and the temporary directory.
 */
export async function removeRun(
  run: { backing: BenchServices | undefined; dbName: string; mongo?: MongoClient | undefined; redis?: Redis | undefined; keyPattern: string },
  progress: (line: string) => void,
): Promise<void> {
  const mongo = run.mongo ?? (run.backing ? new MongoClient(run.backing.mongoUrl, { serverSelectionTimeoutMS: 5_000 }) : undefined);
  if (mongo) {
    await mongo
      .db(run.dbName)
      .dropDatabase()
      .catch((err: unknown) => progress(`dropping ${run.dbName} failed: ${String(err)}`));
    await mongo.close().catch(() => {});
  }
  if (run.redis) {
    await dropKeys(run.redis, run.keyPattern).then(
      (removed) => progress(`removed ${removed} Redis keys matching ${run.keyPattern}`),
      (err: unknown) => progress(`removing the Redis keys ${run.keyPattern} failed: ${String(err)}`),
    );
    run.redis.disconnect();
  }
  await run.backing?.stop();
}
