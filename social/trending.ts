// Trending hashtags over a sliding window, in Redis. Time is cut into buckets
// (5 minutes); a post adds 1 to each of its hashtags in the current bucket,
// once per author and bucket (one account repeating a tag cannot push it up).
// The trend is the sum over the buckets of the window (1 hour), computed by
// ZUNIONSTORE into a short-lived cache key. Deleting a post does not take its
// uses back: the window forgets them within the hour.
import type { Redis } from '../kernel/redis.ts';

export interface TrendingSettings {
  bucketMs: number;
  buckets: number;
  /** How long a computed trend is reused. */
  cacheMs: number;
}

export const defaultTrendingSettings: TrendingSettings = { bucketMs: 5 * 60_000, buckets: 12, cacheMs: 5_000 };

const RECORD = `
local bucketKey, seenKey = KEYS[1], KEYS[2]
local ttl, author = tonumber(ARGV[1]), ARGV[2]
for i = 3, #ARGV do
  if redis.call('SADD', seenKey, ARGV[i] .. '|' .. author) == 1 then
    redis.call('ZINCRBY', bucketKey, 1, ARGV[i])
  end
end
redis.call('PEXPIRE', bucketKey, ttl)
redis.call('PEXPIRE', seenKey, ttl)
return 1
`;

export class Trending {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly settings: TrendingSettings = defaultTrendingSettings,
  ) {}

  private bucket(at: number): number {
    return Math.floor(at / this.settings.bucketMs);
  }

  /** Counts a post's hashtags (idempotent per author and bucket). */
  async record(authorId: string, hashtags: readonly string[], at = Date.now()): Promise<void> {
    if (hashtags.length === 0) return;
    const b = this.bucket(at);
    const ttl = this.settings.bucketMs * (this.settings.buckets + 1);
    await this.redis.eval(RECORD, 2, `${this.prefix}:b:${b}`, `${this.prefix}:seen:${b}`, ttl, authorId, ...hashtags);
  }

  /** The top `limit` hashtags of the window ending now, with their counts. */
  async top(limit: number, now = Date.now()): Promise<{ tag: string; count: number }[]> {
    const b = this.bucket(now);
    const cacheKey = `${this.prefix}:top:${b}:${Math.floor(now / this.settings.cacheMs)}`;
    if ((await this.redis.exists(cacheKey)) === 0) {
      const keys = Array.from({ length: this.settings.buckets }, (_, i) => `${this.prefix}:b:${b - i}`);
      await this.redis
        .multi()
        .zunionstore(cacheKey, keys.length, ...keys)
        .pexpire(cacheKey, this.settings.cacheMs * 2)
        .exec();
    }
    const flat = await this.redis.zrevrange(cacheKey, 0, limit - 1, 'WITHSCORES');
    const out: { tag: string; count: number }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ tag: flat[i]!, count: Number(flat[i + 1]) });
    return out;
  }
}
