// What travels between nodes over Redis. Every envelope is parsed with these
// schemas on arrival: another node is a trust boundary like any client.
import { z } from 'zod';
import { ERROR_CODES } from '../kernel/errors.ts';

const address = z.object({ type: z.string().min(1).max(40), key: z.string().min(1).max(128) });

export const requestEnvelope = z.object({
  kind: z.enum(['ask', 'tell']),
  /** Unique per request; the reply carries it back. */
  id: z.string().min(1).max(64),
  /** Runtime that waits for the reply (asks only). */
  replyTo: z.string().min(1).max(128),
  to: address,
  message: z.string().min(1).max(64),
  input: z.unknown(),
  /** Epoch ms after which the sender no longer waits; expired requests are dropped. */
  deadline: z.number().int(),
  /** Actors on the current call path, for cycle detection ("type/key"). */
  chain: z.array(z.string().max(200)).max(32),
  /** Forwarding count, bounded to stop routing loops. */
  hops: z.number().int().min(0).max(8),
});
export type RequestEnvelope = z.infer<typeof requestEnvelope>;

export const replyEnvelope = z.discriminatedUnion('ok', [
  z.object({ kind: z.literal('reply'), id: z.string().min(1).max(64), ok: z.literal(true), output: z.unknown() }),
  z.object({
    kind: z.literal('reply'),
    id: z.string().min(1).max(64),
    ok: z.literal(false),
    error: z.object({
      code: z.enum(ERROR_CODES),
      message: z.string().max(2000),
      /** Client-safe details (retryAfterMs of SERVICE_UNAVAILABLE, ...); older nodes leave them out. */
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  }),
]);
export type ReplyEnvelope = z.infer<typeof replyEnvelope>;

/** Largest envelope a node accepts from Redis. */
export const MAX_ENVELOPE_BYTES = 1024 * 1024;
