// users: profiles (owned by UserActor) and account roles.
import { z } from 'zod';
import { profileUpdate, publicProfile, UserActor } from '../actors/contracts/user.ts';
import { FlockError } from '../kernel/errors.ts';
import { defineChannel, defineEvent, ROLES, SIGNED_IN } from './define.ts';
import { userIdInput } from '../kernel/ids.ts';

const roles = z.array(z.enum(ROLES)).min(1).max(ROLES.length);

export const usersChannel = defineChannel({
  name: 'users',
  description: 'Profiles and roles.',
  events: {
    me: defineEvent({
      summary: 'The signed-in user: profile, email and roles.',
      access: SIGNED_IN,
      rateLimit: { capacity: 20, perSecond: 5 },
      maxBytes: 64,
      request: z.object({}).strict(),
      ack: z.object({ profile: publicProfile, email: z.string().nullable(), roles }),
      handler: async (ctx) => {
        const account = await ctx.services.accounts.findById(ctx.session.userId);
        if (!account) throw new FlockError('USER_NOT_FOUND');
        // create is idempotent: it also repairs an account whose profile was never made
        // (e.g. one created by a browser OAuth flow, which has no socket to do it).
        const profile = await ctx.services.actors
          .ref(UserActor, account.id)
          .ask('create', { username: account.displayUsername, displayName: account.displayUsername });
        return { profile, email: account.email, roles: account.roles };
      },
    }),
    get: defineEvent({
      summary: "Another user's public profile (GRAPH_BLOCKED when either of you blocked the other).",
      access: SIGNED_IN,
      rateLimit: { capacity: 60, perSecond: 20 },
      maxBytes: 256,
      request: z.object({ userId: userIdInput }).strict(),
      ack: publicProfile,
      handler: async (ctx, { userId }) => {
        if (userId !== ctx.session.userId && (await ctx.services.social.blockedEitherWay(ctx.session.userId, userId))) throw new FlockError('GRAPH_BLOCKED');
        return ctx.services.actors.ref(UserActor, userId).ask('getProfile', {});
      },
    }),
    updateProfile: defineEvent({
      summary: 'Updates the signed-in user’s display name, bio, avatar or privacy (private: follows need approval and posts reach followers only).',
      access: SIGNED_IN,
      rateLimit: { capacity: 10, perSecond: 1 },
      maxBytes: 2048,
      request: profileUpdate,
      ack: publicProfile,
      handler: async (ctx, update) => ctx.services.actors.ref(UserActor, ctx.session.userId).ask('updateProfile', update),
    }),
    setRoles: defineEvent({
      summary: "Replaces a user's roles (admins only). Removing a role revokes the user's sessions at once; added roles apply at their next refresh.",
      access: { roles: ['admin'] },
      rateLimit: { capacity: 10, perSecond: 1 },
      maxBytes: 512,
      request: z.object({ userId: userIdInput, roles }).strict(),
      ack: z.object({ userId: z.string(), roles }),
      handler: async (ctx, { userId, roles: next }) => {
        const before = await ctx.services.accounts.findById(userId);
        if (!before) throw new FlockError('USER_NOT_FOUND');
        const account = await ctx.services.accounts.setRoles(userId, next);
        const removed = before.roles.some((r) => !account.roles.includes(r));
        if (removed) await ctx.services.tokens.revokeAllSessions(userId);
        await ctx.services.deliver(userId, 'users:rolesChanged', { roles: account.roles, by: ctx.session.userId });
        return { userId, roles: account.roles };
      },
    }),
  },
});
