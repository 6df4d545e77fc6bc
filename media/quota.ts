// What one user may upload: bytes per day (declared at the upload's start,
// charged then, returned if the upload is abandoned) and uploads in progress
// at once. Check and charge are one Lua script, so concurrent starts on
// several nodes cannot overdraw either. Beyond either: MEDIA_QUOTA_EXCEEDED
// with details.scope ('bytes' or 'concurrent'), details.limit and
// details.retryAfterMs, and nothing is charged.
//
// Keys:
//   {prefix}:media-bytes:{owner}   string: bytes charged this window (24 h from its first charge)
//   {prefix}:media-active:{owner}  sorted set: media id -> when its upload expires (ms)
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import type { Redis } from '../kernel/redis.ts';
import { RedisScript } from '../kernel/redis-script.ts';

export interface UploadQuotaSettings {
  bytesPerDay: number;
  concurrent: number;
  /** How long an upload counts as in progress if it is never finished or abandoned. */
  uploadTtlMs: number;
}

const WINDOW_MS = 24 * 60 * 60_000;

const charge = new RedisScript(
  'media-quota-charge',
  `
local now = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[2], ARGV[4]) then return {1, 0} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {-1, tonumber(first[2]) - now}
end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then return {-2, redis.call('PTTL', KEYS[1])} end
redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[7]) end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {1, 0}
`,
  z.tuple([z.number(), z.number()]),
);

const release = new RedisScript(
  'media-quota-release',
  `
local removed = redis.call('ZREM', KEYS[2], ARGV[1])
if removed == 1 and tonumber(ARGV[2]) > 0 then
  local left = redis.call('DECRBY', KEYS[1], ARGV[2])
  if left < 0 then redis.call('SET', KEYS[1], 0, 'KEEPTTL') end
end
return removed
`,
  z.number(),
);

export interface UploadQuota {
  readonly settings: UploadQuotaSettings;
  /** Charges a new upload of `bytes`, or throws MEDIA_QUOTA_EXCEEDED and charges nothing. A repeat for the same media is free. */
  charge(owner: string, mediaId: string, bytes: number): Promise<void>;
  /** The upload is over: finished (refund 0) or abandoned (refund what it was charged). */
  release(owner: string, mediaId: string, refundBytes: number): Promise<void>;
}

export function createUploadQuota(options: { redis: Redis; prefix: string; settings: UploadQuotaSettings }): UploadQuota {
  const { redis, prefix, settings } = options;
  const keys = (owner: string) => [`${prefix}:media-bytes:${owner}`, `${prefix}:media-active:${owner}`];
  return {
    settings,
    async charge(owner, mediaId, bytes) {
      const [ok, wait] = await charge.run(redis, keys(owner), [
        bytes,
        settings.bytesPerDay,
        settings.concurrent,
        mediaId,
        Date.now(),
        settings.uploadTtlMs,
        WINDOW_MS,
      ]);
      if (ok === 1) return;
      const concurrent = ok === -1;
      throw new FlockError(
        'MEDIA_QUOTA_EXCEEDED',
        concurrent ? `at most ${settings.concurrent} uploads at once` : `at most ${settings.bytesPerDay} bytes a day`,
        {
          details: {
            scope: concurrent ? 'concurrent' : 'bytes',
            limit: concurrent ? settings.concurrent : settings.bytesPerDay,
            retryAfterMs: Math.max(1_000, wait),
          },
        },
      );
    },
    async release(owner, mediaId, refundBytes) {
      await release.run(redis, keys(owner), [mediaId, refundBytes]);
    },
  };
}
