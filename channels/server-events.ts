// Every event the server emits to clients on their socket, with its payload
// schema. The Socket.IO server's event map, the delivery module's signatures,
// the AsyncAPI document and the typed client all take their types from here;
// nothing emits an event that is not in this table (server/delivery.ts checks
// the payload outside production, and a test checks that nothing else emits).
import { z } from 'zod';
import { ERROR_CODES } from '../kernel/errors.ts';
import { presenceChangeSchema } from '../presence/presence.ts';
import { streamEventSchema } from '../streams/catalogue.ts';
import { postView } from '../social/views.ts';

export const errorBodySchema = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const serverEvents = {
  'flock:error': {
    summary: 'An error that has no ack to travel in (a request sent without an ack callback, or a disconnect for flooding).',
    payload: errorBodySchema.extend({ event: z.string() }),
  },
  'auth:expired': {
    summary: 'The access token of this socket has expired: call auth:refresh, then auth:reauthenticate, without reconnecting.',
    payload: z.object({ expiredAt: z.number().int() }),
  },
  'auth:revoked': {
    summary: 'This session was revoked (logout elsewhere, log out everywhere, or refresh token reuse); the socket is disconnected next.',
    payload: z.object({ reason: z.string() }),
  },
  'stream:event': {
    summary:
      'An event of the personal stream, pushed live. Apply it if its prev is the id you applied last; drop it if you have seen its id; otherwise call stream:resume with your last id.',
    payload: streamEventSchema,
  },
  'presence:update': {
    summary: 'A watched user went online or offline.',
    payload: presenceChangeSchema,
  },
  'feeds:post': {
    summary: 'A new post or repost of an account you follow (or yours), on a socket that called feeds:watch. `cursor` resumes feeds:since after it.',
    payload: z.object({ post: postView, cursor: z.string() }),
  },
  'feeds:deleted': {
    summary: 'A post of an account you watch was deleted: remove it from the timeline.',
    payload: z.object({ postId: z.string(), authorId: z.string() }),
  },
  'conversations:typist': {
    summary: 'A member of one of your conversations is typing (ephemeral: never stored, not replayed; show it for a few seconds).',
    payload: z.object({ conversationId: z.string(), userId: z.string(), at: z.number().int() }),
  },
} as const satisfies Record<string, { summary: string; payload: z.ZodType }>;

export type ServerEventName = keyof typeof serverEvents;
export type ServerEventPayload<E extends ServerEventName> = z.output<(typeof serverEvents)[E]['payload']>;

/** The server-to-client half of the Socket.IO event map. */
export type ServerToClientEvents = { [E in ServerEventName]: (payload: ServerEventPayload<E>) => void };
