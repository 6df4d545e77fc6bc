// A private Redis key space for one test file: a random prefix, connections
// that are all closed at the end, and every key under the prefix deleted.
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { requireEnv } from './env.ts';

export interface RedisKeySpace {
  prefix: string;
  /** A new connection to the suite's Redis, closed by cleanup(). */
  connect(): Redis;
  /** Deletes every key under the prefix and closes the connections. */
  cleanup(): Promise<void>;
}

export function redisKeySpace(): RedisKeySpace {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  const clients: Redis[] = [];
  const connect = () => {
    const client = new Redis(requireEnv('REDIS_URL'));
    clients.push(client);
    return client;
  };
  return {
    prefix,
    connect,
    async cleanup() {
      const raw = clients[0] ?? connect();
      const keys = await raw.keys(`${prefix}:*`);
      if (keys.length > 0) await raw.del(...keys);
      await Promise.allSettled(clients.map((c) => c.quit()));
    },
  };
}
