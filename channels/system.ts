// system: connectivity checks any client may use before signing in.
import { z } from 'zod';
import { defineChannel, defineEvent } from './define.ts';

export const systemChannel = defineChannel({
  name: 'system',
  description: 'Connectivity and clock checks.',
  events: {
    ping: defineEvent({
      summary: 'Round trip to the node; returns the server time and the echo.',
      access: { public: true },
      rateLimit: { capacity: 20, perSecond: 5 },
      maxBytes: 1024,
      request: z.object({ echo: z.string().max(256).optional() }).strict(),
      ack: z.object({ now: z.number().int(), echo: z.string().optional() }),
      handler: async (_ctx, { echo }) => (echo === undefined ? { now: Date.now() } : { now: Date.now(), echo }),
    }),
  },
});
