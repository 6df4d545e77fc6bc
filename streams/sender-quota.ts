// What one user may write into other users' personal streams. Every personal
// stream is bounded (streams/personal-stream.ts), so a sender who writes
// without limit into someone's stream pushes that user's real events out,
// and the user gets a resync instead of what they missed. Each sender has two
// budgets, charged before anything is written, both or neither:
//   - bytes per minute, all recipients together (bounds the write rate one
//     account can put on Redis);
//   - bytes per recipient per window (24 hours, the stream's own window by
//     default), so no single sender can take more than that share of anyone's
//     stream.
// Over either budget, nothing is charged and the caller gets
// STREAM_QUOTA_EXCEEDED with details.retryAfterMs (when the budget refills),
// details.scope ('minute' or 'recipient') and details.limit.
//
// Keys (fixed windows, each starting at its first charge):
//   {prefix}:stream-quota:{senderId}  string: bytes charged this minute
//   {prefix}:stream-in:{recipientId}  hash: senderId -> bytes charged into the
//                                     recipient's stream this window
// The check and the charge are one Lua script, so concurrent requests of one
// sender on several nodes cannot overdraw a budget.
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { ACTOR_KEY } from '../kernel/ids.ts';
import type { Redis } from '../kernel/redis.ts';
import { RedisScript } from '../kernel/redis-script.ts';

export interface SenderQuotaSettings {
  /** Bytes one sender may append to other users' streams per minute, all recipients together. */
  readonly bytesPerMinute: number;
  /** Bytes one sender may append to one other user's stream per recipient window. */
  readonly bytesPerRecipient: number;
  readonly recipientWindowMs: number;
}

export const defaultSenderQuotaSettings: SenderQuotaSettings = {
  bytesPerMinute: 16 * 1024 * 1024,
  bytesPerRecipient: 2 * 1024 * 1024,
  recipientWindowMs: 24 * 60 * 60_000,
};

/** Events of one size for some recipients. */
export interface Charge {
  to: readonly string[];
  /** What each event counts (streamEventBytes). */
  bytes: number;
}

export interface SenderQuota {
  readonly settings: SenderQuotaSettings;
  /**
   * Charges the events a sender's request is about to deliver to the sender
   * (its own stream is free), or throws STREAM_QUOTA_EXCEEDED and charges
   * nothing.
   */
  charge(senderId: string, charges: readonly Charge[]): Promise<void>;
}

export function createSenderQuota(options: { redis: Redis; prefix: string; settings?: Partial<SenderQuotaSettings> }): SenderQuota {
  const settings = Object.freeze({ ...defaultSenderQuotaSettings, ...options.settings });
  const { redis, prefix } = options;
  return {
    settings,
    async charge(senderId, charges) {
      const perRecipient = new Map<string, number>();
      for (const { to, bytes } of charges) {
        for (const id of new Set(to)) if (id !== senderId) perRecipient.set(id, (perRecipient.get(id) ?? 0) + Math.ceil(bytes));
      }
      if (perRecipient.size === 0) return;
      for (const id of [senderId, ...perRecipient.keys()]) {
        if (!ACTOR_KEY.test(id)) throw new FlockError('REQUEST_INVALID', `user id ${JSON.stringify(id)} must match ${ACTOR_KEY}`);
      }
      const [outcome, retryAfterMs] = await chargeScript.run(
        redis,
        [`${prefix}:stream-quota:${senderId}`, ...[...perRecipient.keys()].map((id) => `${prefix}:stream-in:${id}`)],
        [senderId, settings.bytesPerMinute, settings.bytesPerRecipient, settings.recipientWindowMs, ...perRecipient.values()],
      );
      if (outcome === 'ok') return;
      const limit = outcome === 'minute' ? settings.bytesPerMinute : settings.bytesPerRecipient;
      const per = outcome === 'minute' ? 'per minute' : `per recipient per ${Math.round(settings.recipientWindowMs / 3_600_000)} h`;
      throw new FlockError('STREAM_QUOTA_EXCEEDED', `you may write ${limit} bytes ${per} into other users' streams; this would exceed it`, {
        details: { scope: outcome, limit, retryAfterMs: Math.max(1, retryAfterMs) },
      });
    },
  };
}

// KEYS: the sender's minute counter, then each recipient's inbound hash.
// ARGV: senderId, perMinute, perRecipient, recipientWindowMs, then the bytes for each recipient (in KEYS order).
// Returns {'ok', 0} after charging, or {'minute' | 'recipient', retryAfterMs} having charged nothing.
const CHARGE = `
local total = 0
for i = 2, #KEYS do total = total + tonumber(ARGV[i + 3]) end
local minute = tonumber(redis.call('GET', KEYS[1]) or '0')
if minute + total > tonumber(ARGV[2]) then
  local ttl = redis.call('PTTL', KEYS[1])
  return {'minute', ttl > 0 and ttl or 60000}
end
for i = 2, #KEYS do
  local got = tonumber(redis.call('HGET', KEYS[i], ARGV[1]) or '0')
  if got + tonumber(ARGV[i + 3]) > tonumber(ARGV[3]) then
    local ttl = redis.call('PTTL', KEYS[i])
    return {'recipient', ttl > 0 and ttl or tonumber(ARGV[4])}
  end
end
if redis.call('INCRBY', KEYS[1], total) == total then redis.call('PEXPIRE', KEYS[1], 60000) end
for i = 2, #KEYS do
  redis.call('HINCRBY', KEYS[i], ARGV[1], ARGV[i + 3])
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
end
return {'ok', 0}
`;

const chargeScript = new RedisScript('stream sender quota', CHARGE, z.tuple([z.enum(['ok', 'minute', 'recipient']), z.number().int()]));
