// What a personal-stream event looks like in storage and on the wire, as zod
// schemas, and the limits append enforces. The envelope is the same for every
// event; streams/catalogue.ts declares each type and its data.
import { z } from 'zod';
import { STREAM_EVENT_MAX_BYTES } from '../kernel/limits.ts';

/** Event types as stored: lowercase first, namespaced with ':' (the catalogue's `subsystem:camelCase`) or '.', '_', '-'. */
export const EVENT_TYPE = /^[a-z][A-Za-z0-9_.:-]{0,63}$/;

/** A Redis stream id: two unsigned integers, milliseconds and a sequence. */
export const EVENT_ID = /^\d{1,20}-\d{1,20}$/;

/** Largest `data`, as bytes of its UTF-8 JSON. */
export const DEFAULT_MAX_DATA_BYTES = STREAM_EVENT_MAX_BYTES;

/** What an event costs in a stream besides its type and data (id, prev, field names), for the byte bounds. */
export const EVENT_OVERHEAD_BYTES = 64;

/** What an event counts against a stream's byte bound and a sender's quota: its type and data, plus EVENT_OVERHEAD_BYTES. */
export function streamEventBytes(typeBytes: number, dataBytes: number): number {
  return typeBytes + dataBytes + EVENT_OVERHEAD_BYTES;
}

const eventId = z.string().regex(EVENT_ID);

export const personalEventSchema = z
  .object({
    id: eventId.describe('Sequence id (a Redis stream id): store the id of the last event applied and send it when resuming.'),
    prev: eventId
      .nullable()
      .describe(
        'Id of the event before this one in the same stream, null when unknown. A client whose last applied id differs has missed something in flight and should resume from its last id.',
      ),
    type: z.string().regex(EVENT_TYPE).describe('What happened, e.g. "conversations:message" (streams/catalogue.ts).'),
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
export const resumeResultSchema = resumeResultOf(personalEventSchema);

/** The resume answer with events of the given schema (the catalogue's union on the wire). */
export function resumeResultOf<E extends z.ZodType>(event: E) {
  return z.discriminatedUnion('kind', [
    z.object({
      kind: z.literal('events'),
      events: z.array(event).describe('Every retained event after the given id, oldest first.'),
      more: z.boolean().describe('True when the limit cut the list short: resume again from the last id of this page.'),
    }),
    z.object({
      kind: z.literal('resync'),
      reason: resyncReasonSchema,
    }),
  ]);
}

export type ResumeResult = { kind: 'events'; events: PersonalEvent[]; more: boolean } | { kind: 'resync'; reason: ResyncReason };
