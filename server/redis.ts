// Redis clients for the node. Commands fail fast while Redis is away instead
// of queueing without bound; connections keep retrying in the background.
import { Redis } from 'ioredis';
import type { Logger } from './logger.ts';

export type { Redis };

export function createRedis(url: string, name: string, log: Logger): Redis {
  const client = new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
  });
  let down = false;
  client.on('error', (err) => {
    if (!down) log.warn({ err: err.message, client: name }, 'redis connection error');
    down = true;
  });
  client.on('ready', () => {
    if (down) log.info({ client: name }, 'redis connection restored');
    down = false;
  });
  return client;
}
