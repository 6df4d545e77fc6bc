// presence: online/offline and last seen of other users, cluster-wide, with
// live `presence:update` events for the users a socket watches.
// Any signed-in user may watch any user except across a block (either way):
// such users read as offline and are not subscribed. A block made while a
// socket watches takes effect at its next watch.
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { defineChannel, defineEvent, SIGNED_IN } from './define.ts';
import { ACTOR_KEY } from '../kernel/ids.ts';

const MAX_WATCHED = 200;
const userIds = z.array(z.string().regex(ACTOR_KEY)).min(1).max(100);
const status = z.object({ userId: z.string(), online: z.boolean(), lastSeen: z.number().int().nullable() });

export const presenceChannel = defineChannel({
  name: 'presence',
  description: 'Online status and last seen of other users.',
  events: {
    watch: defineEvent({
      summary: `Subscribes this socket to presence:update for these users (at most ${MAX_WATCHED} per socket) and returns their current status. Users blocked either way read as offline.`,
      access: SIGNED_IN,
      rateLimit: { capacity: 10, perSecond: 2 },
      maxBytes: 8 * 1024,
      request: z.object({ userIds }).strict(),
      ack: z.object({ statuses: z.array(status) }),
      handler: async (ctx, { userIds }) => {
        const fresh = [...new Set(userIds)];
        if (ctx.rooms.presenceWatched() + fresh.length > MAX_WATCHED) {
          throw new FlockError('REQUEST_TOO_LARGE', `A socket may watch at most ${MAX_WATCHED} users`);
        }
        const { blocked } = await ctx.services.social.relations(ctx.session.userId, fresh);
        const visible = fresh.filter((id) => !blocked.has(id));
        ctx.rooms.watchPresence(visible);
        const statuses = await ctx.services.presence.status(visible);
        return { statuses: fresh.map((userId) => ({ userId, ...(statuses.get(userId) ?? { online: false, lastSeen: null }) })) };
      },
    }),
    unwatch: defineEvent({
      summary: 'Stops presence:update for these users on this socket.',
      access: SIGNED_IN,
      rateLimit: { capacity: 10, perSecond: 2 },
      maxBytes: 8 * 1024,
      request: z.object({ userIds }).strict(),
      ack: z.object({}),
      handler: async (ctx, { userIds }) => {
        ctx.rooms.unwatchPresence(userIds);
        return {};
      },
    }),
  },
});
