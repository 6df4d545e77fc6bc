// A private Redis key space for one test file that needs no database: a
// random prefix, connections closed at the end, and every key under the
// prefix deleted (test/helpers/services.ts).
import type { Redis } from 'ioredis';
import { testServices } from './services.ts';

export interface RedisKeySpace {
  prefix: string;
  /** A new connection to the suite's Redis, closed by cleanup(). */
  connect: () => Redis;
  /** Deletes every key under the prefix and closes the connections. */
  cleanup: () => Promise<void>;
}

export function redisKeySpace(): RedisKeySpace {
  const services = testServices('redis');
  return { prefix: services.prefix, connect: () => services.redis(), cleanup: () => services.cleanup() };
}

/** Every key matching `pattern` (SCAN, never KEYS: the suite shares one Redis). */
export async function keysMatching(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}
