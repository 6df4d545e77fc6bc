// presence: online/offline and last seen of other users, cluster-wide, with
// live `presence:update` events for the users a socket watches.
// Who may see whose presence follows the social graph when it exists (blocked
// users will be refused); until then any signed-in user may watch any user.
import { z } from 'zod';
import { ACTOR_KEY } from '../actors/define.ts';
import { FlockError } from '../server/errors.ts';
import { defineChannel, defineEvent, ROLES } from './define.ts';

const MAX_WATCHED = 200;
const userIds = z.array(z.string().regex(ACTOR_KEY)).min(1).max(100);
const status = z.object({ userId: z.string(), online: z.boolean(), lastSeen: z.number().int().nullable() });

export const presenceChannel = defineChannel({
  name: 'presence',
  description: 'Online status and last seen of other users.',
  events: {
    watch: defineEvent({
      summary: `Subscribes this socket to presence:update for these users (at most ${MAX_WATCHED} per socket) and returns their current status.`,
      access: { roles: ROLES },
      rateLimit: { capacity: 10, perSecond: 2 },
      maxBytes: 8 * 1024,
      request: z.object({ userIds }).strict(),
      ack: z.object({ statuses: z.array(status) }),
      handler: async (ctx, { userIds }) => {
        const fresh = [...new Set(userIds)];
        if (ctx.rooms.count('presence:') + fresh.length > MAX_WATCHED) {
          throw new FlockError('REQUEST_TOO_LARGE', `A socket may watch at most ${MAX_WATCHED} users`);
        }
        ctx.rooms.join(fresh.map((id) => `presence:${id}`));
        const statuses = await ctx.services.presence.status(fresh);
        return { statuses: fresh.map((userId) => ({ userId, ...(statuses.get(userId) ?? { online: false, lastSeen: null }) })) };
      },
    }),
    unwatch: defineEvent({
      summary: 'Stops presence:update for these users on this socket.',
      access: { roles: ROLES },
      rateLimit: { capacity: 10, perSecond: 2 },
      maxBytes: 8 * 1024,
      request: z.object({ userIds }).strict(),
      ack: z.object({}),
      handler: async (ctx, { userIds }) => {
        ctx.rooms.leave(userIds.map((id) => `presence:${id}`));
        return {};
      },
    }),
  },
});
