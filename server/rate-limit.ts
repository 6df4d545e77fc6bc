// Token buckets in Redis, shared by every node. One script call checks
// several buckets at once (e.g. the event's bucket for this user and the
// all-events bucket for this IP) and takes a token from each only if every
// one has it, so a refused request costs nothing. The script reads Redis's
// clock, so nodes with skewed clocks still share one limit.
import { z } from 'zod';
import { RedisScript } from '../kernel/redis-script.ts';
import type { Redis } from '../kernel/redis.ts';
import type { RateLimit } from '../kernel/limits.ts';

// KEYS: bucket keys. ARGV: capacity_1, perSecond_1, capacity_2, perSecond_2, ...
// Returns {allowed, retryAfterMs}.
const TAKE = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local tokens = {}
local retry = 0
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[i * 2 - 1])
  local per_ms = tonumber(ARGV[i * 2]) / 1000
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local have = tonumber(state[1]) or capacity
  local at = tonumber(state[2]) or now
  have = math.min(capacity, have + (now - at) * per_ms)
  tokens[i] = have
  if have < 1 then retry = math.max(retry, math.ceil((1 - have) / per_ms)) end
end
local allowed = 0
if retry == 0 then allowed = 1 end
for i, key in ipairs(KEYS) do
  local capacity = tonumber(ARGV[i * 2 - 1])
  local per_ms = tonumber(ARGV[i * 2]) / 1000
  local left = tokens[i]
  if allowed == 1 then left = left - 1 end
  redis.call('HSET', key, 'tokens', tostring(left), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(capacity / per_ms) + 1000)
end
return {allowed, retry}
`;

const take = new RedisScript('rate-limit take', TAKE, z.tuple([z.number(), z.number()]));

export interface TakeResult {
  allowed: boolean;
  retryAfterMs: number;
}

export interface Bucket {
  subject: string;
  name: string;
  limit: RateLimit;
}

export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** One token from every bucket, or none if any is empty. */
  async take(buckets: readonly Bucket[]): Promise<TakeResult> {
    const keys = buckets.map((b) => `${this.prefix}:rl:${b.name}:${b.subject}`);
    const args = buckets.flatMap((b) => [b.limit.capacity, b.limit.perSecond]);
    const [allowed, retry] = await take.run(this.redis, keys, args);
    return { allowed: allowed === 1, retryAfterMs: retry };
  }
}
