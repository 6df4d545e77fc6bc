// Sign-in throttling shared by every node: failed attempts are counted in
// Redis per account identifier and per client IP over a sliding window, and a
// key that reached its limit refuses further attempts until enough of its
// failures have aged out. Each check and each record is one Lua script, run
// atomically on Redis's clock, so concurrent failures on several nodes count
// exactly and skewed node clocks do not matter.
//
// Keys (prefix "flock" by default), sorted sets of failure times (ms):
//   {prefix}:auth:fail:acct:{sha256(identifier)}   per account identifier
//   {prefix}:auth:fail:ip:{ip or IPv6 /64}         per client
// A set keeps at most `limit` entries (the newest), which is all the decision
// needs, and expires one window after its last failure, so nothing grows
// without bound however hard a key is hammered.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { RedisScript } from '../kernel/redis-script.ts';
import type { Redis } from '../kernel/redis.ts';
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';

export interface ThrottleSettings {
  /** Key prefix, so tests (or several deployments) can share one Redis. */
  readonly prefix: string;
  /** Failures per account identifier within accountWindowMs before it is locked. */
  readonly accountLimit: number;
  readonly accountWindowMs: number;
  /** Failures per IP (IPv6: per /64) within ipWindowMs before it is locked. */
  readonly ipLimit: number;
  readonly ipWindowMs: number;
}

export const DEFAULT_THROTTLE_SETTINGS: ThrottleSettings = {
  prefix: 'flock',
  accountLimit: 5,
  accountWindowMs: 15 * 60_000,
  ipLimit: 50,
  ipWindowMs: 15 * 60_000,
};

export interface LoginThrottle {
  /** Throws AUTH_THROTTLED (details.retryAfterMs) while the identifier or the IP is locked. */
  check(identifier: string, ip: string): Promise<void>;
  recordFailure(identifier: string, ip: string): Promise<void>;
  /** Clears the identifier's failures. The IP's stay: one good password must not reset a guessing client. */
  recordSuccess(identifier: string): Promise<void>;
}

export function createLoginThrottle(deps: { redis: Redis; settings?: Partial<ThrottleSettings> }): LoginThrottle {
  const settings = settingsSchema.parse({ ...DEFAULT_THROTTLE_SETTINGS, ...deps.settings });
  const { redis } = deps;
  const accountKey = (identifier: string) => `${settings.prefix}:auth:fail:acct:${createHash('sha256').update(identifier.trim().toLowerCase()).digest('hex')}`;
  const ipKey = (ip: string) => `${settings.prefix}:auth:fail:ip:${ipBucket(ip)}`;
  const limits = [settings.accountLimit, settings.accountWindowMs, settings.ipLimit, settings.ipWindowMs] as const;

  return {
    async check(identifier, ip) {
      const retryAfterMs = await checkScript.run(redis, [accountKey(identifier), ipKey(ip)], limits);
      if (retryAfterMs > 0) {
        throw new FlockError('AUTH_THROTTLED', `too many failed sign-in attempts; retry in ${Math.ceil(retryAfterMs / 1000)} s`, {
          details: { retryAfterMs },
        });
      }
    },

    async recordFailure(identifier, ip) {
      // The member only has to be unique: two failures in the same millisecond both count.
      await failScript.run(redis, [accountKey(identifier), ipKey(ip)], [...limits, randomBytes(8).toString('hex')]);
    },

    async recordSuccess(identifier) {
      await redis.del(accountKey(identifier));
    },
  };
}

const settingsSchema = z.object({
  prefix: z.string().min(1),
  accountLimit: z.number().int().min(1),
  accountWindowMs: z.number().int().min(1),
  ipLimit: z.number().int().min(1),
  ipWindowMs: z.number().int().min(1),
});

const PRELUDE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- ms until the key has fewer than limit failures in the window (0: open now)
local function wait(key, limit, window)
  local entries = redis.call('ZRANGEBYSCORE', key, '(' .. (now - window), '+inf', 'WITHSCORES')
  local count = #entries / 2
  if count < limit then return 0 end
  -- it opens when the (count - limit + 1)th oldest failure leaves the window
  local score = tonumber(entries[(count - limit) * 2 + 2])
  return math.max(1, score + window - now)
end
`;

/** KEYS: account, ip. ARGV: accountLimit, accountWindowMs, ipLimit, ipWindowMs. Returns retryAfterMs, 0 when open. */
const CHECK = `${PRELUDE}
return math.max(wait(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])), wait(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4])))
`;

/** KEYS: account, ip. ARGV: accountLimit, accountWindowMs, ipLimit, ipWindowMs, member. */
const FAIL = `${PRELUDE}
local function add(key, limit, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  redis.call('ZADD', key, now, now .. ':' .. ARGV[5])
  redis.call('ZREMRANGEBYRANK', key, 0, -(limit + 1))
  redis.call('PEXPIRE', key, window)
end
add(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
add(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
return 1
`;

const checkScript = new RedisScript('auth throttle check', CHECK, z.number());
const failScript = new RedisScript('auth throttle fail', FAIL, z.number());

// IPv6 clients usually hold a whole /64, so they are counted per /64; an
// IPv4-mapped address counts as the IPv4 address it is.
function ipBucket(ip: string): string {
  const address = ip.trim().toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (mapped) return mapped[1]!;
  if (net.isIPv6(address)) return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
  return address;
}

function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => group.replace(/^0+(?=.)/, ''));
}
