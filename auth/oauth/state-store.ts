// Where a started redirect flow waits for its callback: a passport-oauth2
// state store backed by Redis, so the node that finishes a flow need not be the
// one that started it. Each flow is one key, written when the authorization
// URL is made and taken with GETDEL when the callback arrives, so a state works
// once (a replayed callback finds nothing) and lapses after stateTtlSeconds.
//
//   {prefix}:oauth:state:{state}  JSON FlowRecord, EX stateTtlSeconds
//
// The record keeps the PKCE code_verifier (it never leaves the server), the
// returnTo, the user a link flow is for, and the hash of the browser binding a
// sign-in flow must present (see oauth-service.ts).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { StateStore } from 'passport-oauth2';
import { z } from 'zod';
import { providerInput } from '../accounts.ts';
import type { OAuthProvider } from '../../models/account.ts';
import { FlockError } from '../../kernel/errors.ts';
import { flowContext } from './passport-glue.ts';
import { userIdInput } from '../../kernel/ids.ts';

/** What a flow carries from start to callback besides the verifier. */
export const flowIntentSchema = z
  .object({
    returnTo: z.string().nullable(),
    linkUserId: userIdInput.nullable(),
    bindingHash: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .nullable(),
  })
  .strict();
export type FlowIntent = z.output<typeof flowIntentSchema>;

/** What the callback gets back (info.state of passport's success). */
export const flowResultSchema = flowIntentSchema.omit({ bindingHash: true });
export type FlowResult = z.output<typeof flowResultSchema>;

const flowRecordSchema = flowIntentSchema
  .extend({
    provider: providerInput,
    verifier: z.string().regex(/^[A-Za-z0-9._~-]{43,128}$/),
  })
  .strict();

/** States this store issues: 32 random bytes, base64url. Anything else is not looked up. */
const STATE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function stateKey(prefix: string, state: string): string {
  return `${prefix}:oauth:state:${state}`;
}

/** Ends a flow without finishing it (the provider reported an error). */
export async function discardState(redis: Redis, prefix: string, state: string): Promise<void> {
  if (STATE_PATTERN.test(state)) await redis.del(stateKey(prefix, state));
}

export function hashBinding(binding: string): string {
  return createHash('sha256').update(binding).digest('hex');
}

type StoreCallback = (err: Error | null, state?: string) => void;
type VerifyCallback = (err: Error | null, ok: string | false, stateOrInfo?: unknown) => void;

/**
 * A store for one provider's strategy. passport-oauth2 picks the PKCE variant
 * of the interface by arity (store with 5 parameters, verify with 3), so the
 * parameter lists below must stay as they are.
 */
export function createStateStore(deps: { redis: Redis; prefix: string; ttlSeconds: number; provider: OAuthProvider }): StateStore {
  const store = {
    store(_req: unknown, verifier: unknown, intent: unknown, _meta: unknown, done: StoreCallback): void {
      const parsed = flowIntentSchema.safeParse(intent);
      if (!parsed.success || typeof verifier !== 'string') {
        done(new Error('OAuth flow started without a valid intent or PKCE verifier'));
        return;
      }
      const state = randomBytes(32).toString('base64url');
      const record: z.input<typeof flowRecordSchema> = { ...parsed.data, provider: deps.provider, verifier };
      deps.redis.set(stateKey(deps.prefix, state), JSON.stringify(flowRecordSchema.parse(record)), 'EX', deps.ttlSeconds, 'NX').then(
        (ok) => (ok === 'OK' ? done(null, state) : done(new Error('OAuth state collision'))),
        (err: unknown) => done(redisFailed(err)),
      );
    },

    verify(req: unknown, providedState: unknown, done: VerifyCallback): void {
      if (typeof providedState !== 'string' || !STATE_PATTERN.test(providedState)) {
        done(null, false, { message: 'missing or malformed state' });
        return;
      }
      deps.redis.getdel(stateKey(deps.prefix, providedState)).then(
        (raw) => {
          const record = raw === null ? undefined : flowRecordSchema.safeParse(safeJson(raw)).data;
          if (!record) return done(null, false, { message: 'unknown, expired or already used state' });
          if (record.provider !== deps.provider) return done(null, false, { message: 'the state belongs to another provider' });
          if (record.bindingHash !== null && !sameHash(record.bindingHash, flowContext(req).binding)) {
            return done(null, false, { message: 'the flow was started in another browser' });
          }
          const result: FlowResult = { returnTo: record.returnTo, linkUserId: record.linkUserId };
          return done(null, record.verifier, result);
        },
        (err: unknown) => done(redisFailed(err), false),
      );
    },
  };
  // @types/passport-oauth2 predates PKCE stores and only declares the 2- to 4-argument forms.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- the store implements the PKCE forms the types do not declare.
  return store as unknown as StateStore;
}

/** Tagged so the service does not report an outage as a refused sign-in. */
function redisFailed(cause: unknown): FlockError {
  return new FlockError('SERVICE_UNREACHABLE', 'Redis did not answer for the OAuth state', { cause });
}

function sameHash(expectedHex: string, binding: string | undefined): boolean {
  if (binding === undefined || binding.length === 0 || binding.length > 256) return false;
  return timingSafeEqual(Buffer.from(expectedHex, 'hex'), Buffer.from(hashBinding(binding), 'hex'));
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
