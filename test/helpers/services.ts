// The backing services of one test file, set up and torn down the same way
// everywhere: a MongoDB database and a Redis key prefix no other file uses,
// connections to both, and a cleanup that drops the database, deletes the
// prefix's keys (SCAN, never KEYS: the suite shares one Redis) and closes
// every connection it opened.
import { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import { randomBytes } from 'node:crypto';
import { requireEnv, uniqueDbName } from './env.ts';

export interface TestServices {
  /** The file's database name. */
  readonly dbName: string;
  /** The file's Redis key prefix (keys and channels under `${prefix}:`). */
  readonly prefix: string;
  /** A new mongoose connection to the file's database (another one for each "node"). */
  mongo(): Promise<Connection>;
  /** A new Redis connection. */
  redis(): Redis;
  /** Drops the database, deletes the prefix's keys, closes every connection. */
  cleanup(): Promise<void>;
}

export function testServices(name: string): TestServices {
  const dbName = uniqueDbName(name);
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const connections: Connection[] = [];
  const clients: Redis[] = [];
  const redis = () => {
    const client = new Redis(requireEnv('REDIS_URL'));
    clients.push(client);
    return client;
  };
  return {
    dbName,
    prefix,
    async mongo() {
      const connection = await mongoose.createConnection(requireEnv('MONGO_URL'), { dbName }).asPromise();
      connections.push(connection);
      return connection;
    },
    redis,
    async cleanup() {
      try {
        await deleteKeys(clients[0] ?? redis(), `${prefix}:*`);
      } finally {
        await Promise.allSettled(clients.map((c) => c.quit()));
        await connections[0]?.dropDatabase().catch(() => {});
        await Promise.allSettled(connections.map((c) => c.close()));
      }
    },
  };
}

/** Deletes every key matching `pattern`, a page of SCAN at a time (never KEYS: the suite shares one Redis). */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}
