// system: connectivity checks any client may use before signing in.
import { z } from 'zod';
import { defineChannel, defineEvent, ROLES, SIGNED_IN } from './define.ts';

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
    whoami: defineEvent({
      summary: 'The session of this socket (user, roles, token expiry), with an optional echo; a cheap signed-in round trip.',
      access: SIGNED_IN,
      rateLimit: { capacity: 20, perSecond: 5 },
      maxBytes: 1024,
      request: z.object({ echo: z.string().max(256).optional() }).strict(),
      ack: z.object({ userId: z.string(), roles: z.array(z.enum(ROLES)), expiresAt: z.number().int(), echo: z.string().optional() }),
      handler: async (ctx, { echo }) => {
        const { userId, roles, expiresAt } = ctx.session;
        return echo === undefined ? { userId, roles: [...roles], expiresAt } : { userId, roles: [...roles], expiresAt, echo };
      },
    }),
  },
});
