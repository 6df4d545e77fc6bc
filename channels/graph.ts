// graph: follows and follow requests, blocks, mutes, and the lists of each.
// Follow edges are owned by the followee's UserActor (which keeps the exact
// follower count), blocks and mutes by the blocker's or muter's.
import { z } from 'zod';
import { UserActor } from '../actors/contracts/user.ts';
import { isFlockError } from '../kernel/errors.ts';
import { cursorInput, pageLimit, pageOf } from '../kernel/cursor.ts';
import { summary } from '../social/reads.ts';
import { userSummary } from '../social/views.ts';
import { defineChannel, defineEvent, type AuthedEventContext, writes, reads } from './define.ts';
import { userIdInput } from '../kernel/ids.ts';

const target = z.object({ userId: userIdInput }).strict();
const followStatus = z.object({
  status: z.enum(['active', 'pending', 'none']).describe('active: following; pending: waiting for approval; none: not following'),
});
const changed = z.object({ changed: z.boolean() });
const listOf = z.object({ userId: userIdInput, cursor: cursorInput.optional(), limit: pageLimit }).strict();
const ownList = z.object({ cursor: cursorInput.optional(), limit: pageLimit }).strict();
const userPage = pageOf(userSummary);

const write = writes(256);
const read = reads(1024);

const user = (ctx: AuthedEventContext, userId: string) => ctx.services.actors.ref(UserActor, userId);

async function listPage(ctx: AuthedEventContext, options: Parameters<AuthedEventContext['services']['social']['edges']['page']>[0]) {
  const page = await ctx.services.social.edges.page(options);
  return {
    items: await ctx.services.reads.users(
      ctx.session.userId,
      page.items.map((i) => i.id),
    ),
    nextCursor: page.nextCursor,
  };
}

/** A user's followers (`owner`: the followee's edges) or follows (`member`), for viewers the profile lets in. */
function followList(by: 'owner' | 'member', summary: string) {
  return defineEvent({
    ...read,
    summary,
    request: listOf,
    ack: userPage,
    handler: async (ctx, { userId, cursor, limit }) => {
      await ctx.services.reads.requireProfileAccess(ctx.session.userId, userId);
      return listPage(ctx, { kind: 'follow', by, id: userId, status: 'active', ...(cursor && { cursor }), limit });
    },
  });
}

export const graphChannel = defineChannel({
  name: 'graph',
  description: 'Follows, follow requests, blocks and mutes.',
  events: {
    follow: defineEvent({
      ...write,
      summary: 'Follows a user: active at once for public accounts, a pending request for private ones. Idempotent.',
      request: target,
      ack: followStatus,
      handler: async (ctx, { userId }) => user(ctx, userId).ask('follow', { followerId: ctx.session.userId }),
    }),
    unfollow: defineEvent({
      ...write,
      summary: 'Stops following a user, or withdraws a pending request. Idempotent.',
      request: target,
      ack: followStatus,
      handler: async (ctx, { userId }) => user(ctx, userId).ask('unfollow', { followerId: ctx.session.userId }),
    }),
    approve: defineEvent({
      ...write,
      summary: "Approves a user's pending request to follow you.",
      request: target,
      ack: followStatus,
      handler: async (ctx, { userId }) => user(ctx, ctx.session.userId).ask('approveFollower', { followerId: userId }),
    }),
    reject: defineEvent({
      ...write,
      summary: "Rejects a user's pending request to follow you.",
      request: target,
      ack: followStatus,
      handler: async (ctx, { userId }) => user(ctx, ctx.session.userId).ask('rejectFollower', { followerId: userId }),
    }),
    removeFollower: defineEvent({
      ...write,
      summary: 'Makes a user stop following you (or drops their request).',
      request: target,
      ack: followStatus,
      handler: async (ctx, { userId }) => user(ctx, ctx.session.userId).ask('unfollow', { followerId: userId }),
    }),
    block: defineEvent({
      ...write,
      summary: 'Blocks a user: ends follows both ways and hides each side from the other (posts, lists, mentions, messages, notifications).',
      request: target,
      ack: changed,
      handler: async (ctx, { userId }) => {
        const me = ctx.session.userId;
        const result = await user(ctx, me).ask('block', { userId });
        // Their actor owns my follow of them; unfollow is idempotent, so a retry after a failure here is safe.
        // An account whose profile was never made has no followers to drop.
        await user(ctx, userId)
          .ask('unfollow', { followerId: me })
          .catch((err: unknown) => {
            if (!(isFlockError(err) && err.code === 'USER_NOT_FOUND')) throw err;
          });
        return result;
      },
    }),
    unblock: defineEvent({
      ...write,
      summary: 'Lifts a block. Follows ended by the block do not come back.',
      request: target,
      ack: changed,
      handler: async (ctx, { userId }) => user(ctx, ctx.session.userId).ask('unblock', { userId }),
    }),
    mute: defineEvent({
      ...write,
      summary: 'Mutes a user: their posts leave your feeds and hashtag pages and they cause you no notifications. They are not told.',
      request: target,
      ack: changed,
      handler: async (ctx, { userId }) => {
        const result = await user(ctx, ctx.session.userId).ask('mute', { userId });
        ctx.services.watchAuthor(ctx.session.userId, userId, false);
        return result;
      },
    }),
    unmute: defineEvent({
      ...write,
      summary: 'Lifts a mute.',
      request: target,
      ack: changed,
      handler: async (ctx, { userId }) => {
        const me = ctx.session.userId;
        const result = await user(ctx, me).ask('unmute', { userId });
        if ((await ctx.services.social.edges.status('follow', userId, me)) === 'active') ctx.services.watchAuthor(me, userId, true);
        return result;
      },
    }),
    followers: followList('owner', "A user's followers, newest first. Private accounts show them to approved followers only."),
    following: followList('member', 'The accounts a user follows, newest first. Private accounts show them to approved followers only.'),
    requests: defineEvent({
      ...read,
      summary: 'Pending requests to follow you, newest first.',
      request: ownList,
      ack: userPage,
      handler: async (ctx, { cursor, limit }) =>
        listPage(ctx, { kind: 'follow', by: 'owner', id: ctx.session.userId, status: 'pending', ...(cursor && { cursor }), limit }),
    }),
    blocks: defineEvent({
      ...read,
      summary: 'Users you blocked, newest first.',
      request: ownList,
      ack: userPage,
      handler: async (ctx, { cursor, limit }) => {
        const page = await ctx.services.social.edges.page({
          kind: 'block',
          by: 'owner',
          id: ctx.session.userId,
          status: 'active',
          ...(cursor && { cursor }),
          limit,
        });
        const rel = await ctx.services.social.relations(
          ctx.session.userId,
          page.items.map((i) => i.id),
        );
        return { items: page.items.flatMap((i) => (rel.profiles.has(i.id) ? [summary(rel.profiles.get(i.id)!)] : [])), nextCursor: page.nextCursor };
      },
    }),
    mutes: defineEvent({
      ...read,
      summary: 'Users you muted, newest first.',
      request: ownList,
      ack: userPage,
      handler: async (ctx, { cursor, limit }) =>
        listPage(ctx, { kind: 'mute', by: 'owner', id: ctx.session.userId, status: 'active', ...(cursor && { cursor }), limit }),
    }),
    relationship: defineEvent({
      ...read,
      summary: 'How you and another user stand: follows each way, a pending request, blocks each way, your mute.',
      request: target,
      ack: z.object({
        following: z.boolean(),
        requested: z.boolean(),
        followedBy: z.boolean(),
        blocking: z.boolean(),
        blockedBy: z.boolean(),
        muting: z.boolean(),
      }),
      handler: async (ctx, { userId }) => ctx.services.reads.relationship(ctx.session.userId, userId),
    }),
  },
});
