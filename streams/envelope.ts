// What a personal-stream event looks like on the wire, as zod schemas the
// AsyncAPI document can take its types from, and the limits append enforces.
import { z } from 'zod';

/** Event types: lowercase, namespaced with '.', ':', '_' or '-' ("message:created", "account.email_changed"). */
export const EVENT_TYPE = /^[a-z][a-z0-9_.:-]{0,63}$/;

/** A Redis stream id: two unsigned integers, milliseconds and a sequence. */
export const EVENT_ID = /^\d{1,20}-\d{1,20}$/;

/** Largest `data`, as bytes of its UTF-8 JSON. */
export const DEFAULT_MAX_DATA_BYTES = 16 * 1024;

const eventId = z.string().regex(EVENT_ID);

export const personalEventSchema = z
  .object({
    id: eventId.describe('Sequence id (a Redis stream id): store the id of the last event applied and send it when resuming.'),
    prev: eventId
      .nullable()
      .describe('Id of the event before this one in the same stream, null when unknown. A client whose last applied id differs has missed something in flight and should resume from its last id.'),
    type: z.string().regex(EVENT_TYPE).describe('What happened, e.g. "notification:created" or "message:created".'),
    data: z.unknown().describe('The payload, at most 16 KiB of JSON; its schema depends on type.'),
    at: z.number().int().describe('When the event was appended, in milliseconds since the epoch (Redis server clock).'),
  })
  .describe('One event of the personal stream of the signed-in user.');

export type PersonalEvent<D = unknown> = Omit<z.output<typeof personalEventSchema>, 'data'> & { data: D };

export const resyncReasonSchema = z
  .enum(['trimmed', 'unknown-id'])
  .describe('trimmed: events after the given id are no longer kept. unknown-id: the id was never issued by this stream (or the stream was forgotten).');

export type ResyncReason = z.output<typeof resyncReasonSchema>;

/** The answer to a resume request: the missed events, or an instruction to reload state. */
export const resumeResultSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('events'),
    events: z.array(personalEventSchema).describe('Every retained event after the given id, oldest first.'),
    more: z.boolean().describe('True when the limit cut the list short: resume again from the last id of this page.'),
  }),
  z.object({
    kind: z.literal('resync'),
    reason: resyncReasonSchema,
  }),
]);

export type ResumeResult =
  | { kind: 'events'; events: PersonalEvent[]; more: boolean }
  | { kind: 'resync'; reason: ResyncReason };
