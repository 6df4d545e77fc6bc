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

/**
 * Resolves once the client has passed ioredis's ready check. Subscribe only
 * after this: a SUBSCRIBE sent before the check makes the check's INFO fail in
 * subscriber mode, and the connection restarts without the subscription.
 */
export function untilReady(client: Redis): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => client.once('ready', () => resolve()));
}
