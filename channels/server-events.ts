// Every event the server emits to clients, with its payload schema. The
// AsyncAPI document and the typed client take their types from here.
import { z } from 'zod';

const errorBody = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const serverEvents = {
  'flock:error': {
    summary: 'An error that has no ack to travel in (a request sent without an ack callback, or a disconnect for flooding).',
    payload: errorBody.extend({ event: z.string() }),
  },
  'auth:expired': {
    summary: 'The access token of this socket has expired: call auth:refresh, then auth:reauthenticate, without reconnecting.',
    payload: z.object({ expiredAt: z.number().int() }),
  },
} as const;

export type ServerEventName = keyof typeof serverEvents;
export type ServerEventPayload<E extends ServerEventName> = z.output<(typeof serverEvents)[E]['payload']>;
