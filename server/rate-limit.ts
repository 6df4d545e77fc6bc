// Token buckets in Redis, shared by every node: one bucket per (subject,
// bucket name), refilled continuously. The script reads Redis's clock, so
// nodes with skewed clocks still share one limit.
import type { Redis } from 'ioredis';
import type { RateLimit } from '../channels/define.ts';

const TAKE = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2]) / 1000
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - at) * per_ms)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = math.ceil((cost - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return {allowed, retry}
`;

type Scripted = Redis & { flockTake(key: string, capacity: number, perSecond: number, cost: number): Promise<[number, number]> };

export interface TakeResult {
  allowed: boolean;
  retryAfterMs: number;
}

export class RateLimiter {
  private readonly redis: Scripted;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    if (!('flockTake' in redis)) redis.defineCommand('flockTake', { numberOfKeys: 1, lua: TAKE });
    this.redis = redis as Scripted;
  }

  async take(subject: string, bucket: string, limit: RateLimit, cost = 1): Promise<TakeResult> {
    const [allowed, retry] = await this.redis.flockTake(`${this.prefix}:rl:${bucket}:${subject}`, limit.capacity, limit.perSecond, cost);
    return { allowed: allowed === 1, retryAfterMs: retry };
  }
}
