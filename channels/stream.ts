// stream: the signed-in user's resumable personal stream. Events addressed to
// one user (account and security events now; notifications and messages as
// they are built) arrive live as `stream:event`; after a reconnect the client
// sends the id of the last event it applied and gets exactly what it missed,
// or a resync instruction when the window was trimmed.
import { z } from 'zod';
import { readStreamEvent, streamResumeSchema } from '../streams/catalogue.ts';
import { EVENT_ID } from '../streams/envelope.ts';
import { defineChannel, defineEvent, SIGNED_IN } from './define.ts';

export const streamChannel = defineChannel({
  name: 'stream',
  description: 'The personal event stream of the signed-in user.',
  events: {
    resume: defineEvent({
      summary:
        'Returns the events after lastId (all retained events when omitted), oldest first, at most `limit`; page on while `more`. ' +
        'A resync answer means events were trimmed: reload state, then resume from `head`.',
      access: SIGNED_IN,
      rateLimit: { capacity: 20, perSecond: 5 },
      maxBytes: 256,
      request: z.object({ lastId: z.string().regex(EVENT_ID).optional(), limit: z.number().int().min(1).max(500).default(200) }).strict(),
      ack: z.intersection(streamResumeSchema, z.object({ head: z.string().nullable() })),
      handler: async (ctx, { lastId, limit }) => {
        const [result, head] = await Promise.all([
          ctx.services.streams.since(ctx.session.userId, lastId, limit),
          ctx.services.streams.head(ctx.session.userId),
        ]);
        if (result.kind !== 'events') return { ...result, head };
        // Events stored under a 0.1 name get their current one. One that is not in the catalogue (a node
        // without payload checks stored it) is left out and logged: it must not block the rest for a day.
        const events = [];
        for (const stored of result.events) {
          const event = readStreamEvent(stored);
          if (event) events.push(event);
          else ctx.log.error({ eventId: stored.id, type: stored.type }, 'a stored stream event is not in the catalogue; left out of stream:resume');
        }
        return { ...result, events, head };
      },
    }),
  },
});
