// Registration as a client reaches it: the account rules, then a per-IP
// budget of registrations (sliding window in Redis, shared by every node),
// then the account itself (auth/accounts.ts). The budget is reserved before
// the password is hashed, so a flood costs neither argon2 time nor accounts.
//
// A taken username or email is answered AUTH_IDENTITY_TAKEN with
// details.field. Usernames are public anyway (profiles, mentions); for emails
// the answer is an oracle, accepted because the app needs it to tell a person
// to sign in instead, and bounded by the budget: one IP learns about at most
// ipLimit addresses per window, and every probe of a free address creates an
// account the prober must keep paying the budget for.
//
//   {prefix}:auth:register:ip:{ip bucket}   sorted set of attempt times (ms)
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { RedisScript } from '../kernel/redis-script.ts';
import type { Redis } from '../kernel/redis.ts';
import { parseInput } from '../kernel/zod-issues.ts';
import { registrationSchema, type Account, type AccountService } from './accounts.ts';
import { checkPasswordRules } from './passwords.ts';
import { ipBucket, WINDOW_LUA } from './throttle.ts';

export interface RegistrationSettings {
  /** REDIS_KEY_PREFIX. */
  readonly prefix: string;
  /** Registrations (successful or not) from one IP (IPv6: per /64) within windowMs. */
  readonly ipLimit: number;
  readonly windowMs: number;
}

export const DEFAULT_REGISTRATION_SETTINGS: Omit<RegistrationSettings, 'prefix'> = { ipLimit: 20, windowMs: 3600_000 };

export const registrationRequestSchema = registrationSchema.extend({
  /** The client's address as the gateway resolved it (TRUST_PROXY). */
  ip: z.string().min(1).max(64),
});
export type RegistrationRequest = z.input<typeof registrationRequestSchema>;

export interface RegistrationService {
  /** REQUEST_INVALID, AUTH_WEAK_PASSWORD, AUTH_THROTTLED (details.retryAfterMs), or AUTH_IDENTITY_TAKEN with details.field. */
  register(input: RegistrationRequest): Promise<Account>;
}

export function createRegistrationService(deps: {
  accounts: AccountService;
  redis: Redis;
  settings: Partial<RegistrationSettings> & { prefix: string };
}): RegistrationService {
  const settings = settingsSchema.parse({ ...DEFAULT_REGISTRATION_SETTINGS, ...deps.settings });
  return {
    async register(input) {
      const { ip, ...registration } = parseInput(registrationRequestSchema, input, 'registration');
      // Malformed requests and weak passwords cost nothing: refused before the budget.
      checkPasswordRules(registration.password, registration);
      const key = `${settings.prefix}:auth:register:ip:${ipBucket(ip)}`;
      const retryAfterMs = await reserveScript.run(deps.redis, [key], [settings.ipLimit, settings.windowMs, randomBytes(8).toString('hex')]);
      if (retryAfterMs > 0) {
        throw new FlockError('AUTH_THROTTLED', `too many registrations from this address; retry in ${Math.ceil(retryAfterMs / 1000)} s`, {
          details: { retryAfterMs },
        });
      }
      return deps.accounts.register(registration);
    },
  };
}

const settingsSchema = z.object({
  prefix: z.string().min(1),
  ipLimit: z.number().int().min(1),
  windowMs: z.number().int().min(1),
});

/** KEYS: the IP's set. ARGV: limit, windowMs, member. Returns retryAfterMs, or 0 with the attempt recorded. */
const RESERVE = `${WINDOW_LUA}
local retry = wait(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
if retry > 0 then return retry end
add(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
return 0
`;

const reserveScript = new RedisScript('registration throttle reserve', RESERVE, z.number());
