// Sign-in throttling shared by every node. Each password verification is
// reserved before it runs: one Lua script checks every budget and, when all
// are open, records the attempt as a failure in the same step, so however
// many sign-ins arrive at once on however many nodes, no more verifications
// run than the budgets allow. A correct password then takes its reservation
// back (reservation.succeeded()). Everything runs on Redis's clock, so skewed
// node clocks do not matter.
//
// Budgets, each a sliding window of windowMs:
//   - per (account, IP): pairLimit guesses. The one a guesser meets first;
//     it locks only that pair, so an attacker cannot lock the owner out.
//   - per IP (IPv6: per /64), across accounts: ipLimit.
//   - per account, across IPs: accountLimit, much higher, against guessing
//     from many addresses. It never locks for a whole window: a slot opens
//     each time an old failure ages out. And it does not apply to IPs that
//     signed in to the account successfully within knownIpTtlMs, so the
//     owner still signs in from home while a botnet hammers the account.
//
// Keys ({prefix} is REDIS_KEY_PREFIX), sorted sets by time (ms):
//   {prefix}:auth:fail:pair:{sha256(identifier|ip bucket)}   failures of the pair
//   {prefix}:auth:fail:acct:{sha256(identifier)}             failures of the account
//   {prefix}:auth:fail:ip:{ip bucket}                        failures of the client
//   {prefix}:auth:known:{sha256(identifier)}                 sha256 of IP buckets that signed in
// A failure set keeps at most its limit of entries (the newest), which is all
// the decision needs, and expires one window after its last failure; the
// known set keeps the newest KNOWN_IPS_KEPT and expires knownIpTtlMs after the
// last success: nothing grows without bound however hard a key is hammered.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { RedisScript } from '../kernel/redis-script.ts';
import type { Redis } from '../kernel/redis.ts';
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';

export interface ThrottleSettings {
  /** REDIS_KEY_PREFIX: clusters sharing one Redis (and test files) do not share budgets. */
  readonly prefix: string;
  /** Failed sign-ins to one account from one IP within windowMs. */
  readonly pairLimit: number;
  /** Failed sign-ins to one account from IPs that have not signed in to it, within windowMs. */
  readonly accountLimit: number;
  /** Failed sign-ins from one IP (IPv6: per /64) across accounts, within windowMs. */
  readonly ipLimit: number;
  readonly windowMs: number;
  /** How long after a successful sign-in its IP stays exempt from the account ceiling. */
  readonly knownIpTtlMs: number;
}

export const DEFAULT_THROTTLE_SETTINGS: Omit<ThrottleSettings, 'prefix'> = {
  pairLimit: 5,
  accountLimit: 100,
  ipLimit: 50,
  windowMs: 15 * 60_000,
  knownIpTtlMs: 30 * 24 * 3600_000,
};

/** A reserved verification: it counts as a failure unless the password was right. */
export interface Reservation {
  /** Takes the failure back, clears the pair's failures and remembers the IP as the account's. */
  succeeded(): Promise<void>;
}

export interface LoginThrottle {
  /**
   * Reserves one password verification of `identifier` from `ip`, recorded as
   * a failure until reservation.succeeded(). AUTH_THROTTLED
   * (details.retryAfterMs) when a budget is spent; nothing is recorded then,
   * so refused attempts do not prolong a lock.
   */
  reserve(identifier: string, ip: string): Promise<Reservation>;
}

/** Known IPs remembered per account: the newest ones, enough for a person's devices and networks. */
const KNOWN_IPS_KEPT = 20;

export function createLoginThrottle(deps: { redis: Redis; settings: Partial<ThrottleSettings> & { prefix: string } }): LoginThrottle {
  const settings = settingsSchema.parse({ ...DEFAULT_THROTTLE_SETTINGS, ...deps.settings });
  const { redis } = deps;
  const keysOf = (identifier: string, ip: string) => {
    const id = identifier.trim().toLowerCase();
    const bucket = ipBucket(ip);
    return {
      keys: [
        `${settings.prefix}:auth:fail:pair:${sha256(`${id}|${bucket}`)}`,
        `${settings.prefix}:auth:fail:acct:${sha256(id)}`,
        `${settings.prefix}:auth:fail:ip:${bucket}`,
        `${settings.prefix}:auth:known:${sha256(id)}`,
      ],
      ipTag: sha256(bucket),
    };
  };

  return {
    async reserve(identifier, ip) {
      const { keys, ipTag } = keysOf(identifier, ip);
      // Unique per attempt, so it can be taken back, and two attempts in one millisecond both count.
      const member = randomBytes(8).toString('hex');
      const retryAfterMs = await reserveScript.run(redis, keys, [
        settings.pairLimit,
        settings.accountLimit,
        settings.ipLimit,
        settings.windowMs,
        settings.knownIpTtlMs,
        ipTag,
        member,
      ]);
      if (retryAfterMs > 0) {
        throw new FlockError('AUTH_THROTTLED', `too many failed sign-in attempts; retry in ${Math.ceil(retryAfterMs / 1000)} s`, {
          details: { retryAfterMs },
        });
      }
      return {
        async succeeded() {
          await successScript.run(redis, keys, [member, ipTag, settings.knownIpTtlMs, KNOWN_IPS_KEPT]);
        },
      };
    },
  };
}

const settingsSchema = z.object({
  prefix: z.string().min(1),
  pairLimit: z.number().int().min(1),
  accountLimit: z.number().int().min(1),
  ipLimit: z.number().int().min(1),
  windowMs: z.number().int().min(1),
  knownIpTtlMs: z.number().int().min(1),
});

/** Lua shared by the throttles: `now` on Redis's clock, and the sliding window of one key. */
export const WINDOW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- ms until the key has fewer than limit entries in the window (0: open now)
local function wait(key, limit, window)
  local entries = redis.call('ZRANGEBYSCORE', key, '(' .. (now - window), '+inf', 'WITHSCORES')
  local count = #entries / 2
  if count < limit then return 0 end
  -- it opens when the (count - limit + 1)th oldest entry leaves the window
  local score = tonumber(entries[(count - limit) * 2 + 2])
  return math.max(1, score + window - now)
end
-- records an entry, keeping the newest limit of them, for one window
local function add(key, limit, window, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  redis.call('ZADD', key, now, member)
  redis.call('ZREMRANGEBYRANK', key, 0, -(limit + 1))
  redis.call('PEXPIRE', key, window)
end
`;

/**
 * KEYS: pair, account, ip, known. ARGV: pairLimit, accountLimit, ipLimit,
 * windowMs, knownIpTtlMs, ipTag, member. Returns retryAfterMs, or 0 with the
 * attempt recorded as a failure under every budget.
 */
const RESERVE = `${WINDOW_LUA}
local window = tonumber(ARGV[4])
local retry = math.max(wait(KEYS[1], tonumber(ARGV[1]), window), wait(KEYS[3], tonumber(ARGV[3]), window))
local since = redis.call('ZSCORE', KEYS[4], ARGV[6])
if not since or tonumber(since) <= now - tonumber(ARGV[5]) then
  retry = math.max(retry, wait(KEYS[2], tonumber(ARGV[2]), window))
end
if retry > 0 then return retry end
add(KEYS[1], tonumber(ARGV[1]), window, ARGV[7])
add(KEYS[2], tonumber(ARGV[2]), window, ARGV[7])
add(KEYS[3], tonumber(ARGV[3]), window, ARGV[7])
return 0
`;

/** KEYS: pair, account, ip, known. ARGV: member, ipTag, knownIpTtlMs, knownKept. */
const SUCCESS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], now, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[4]) + 1))
redis.call('PEXPIRE', KEYS[4], ARGV[3])
return 1
`;

const reserveScript = new RedisScript('auth throttle reserve', RESERVE, z.number());
const successScript = new RedisScript('auth throttle success', SUCCESS, z.number());

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The unit an IP is counted in: IPv6 clients usually hold a whole /64; an IPv4-mapped address is its IPv4 address. */
export function ipBucket(ip: string): string {
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
