// Redis is never embedded: it is REDIS_URL, by default the local server.
// This checks that it answers before the node starts, with a clear error.
import { Redis } from 'ioredis';
import { FlockError, messageOf } from '../kernel/errors.ts';
import type { RunningService } from './service.ts';

export async function checkRedis(url: string): Promise<RunningService & { url: string }> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const info = await client.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    return { url, description: `Redis ${version} at ${redactUrl(url)}`, stop: async () => {} };
  } catch (err) {
    throw new FlockError('SERVICE_UNREACHABLE', `Redis does not answer at ${redactUrl(url)} (${messageOf(err)}). Start Redis or set REDIS_URL.`, {
      cause: err,
    });
  } finally {
    client.disconnect();
  }
}

/** Hides credentials in URLs written to logs. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return raw;
  }
}
