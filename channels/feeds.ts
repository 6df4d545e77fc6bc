// feeds: the home timeline (posts and reposts of the accounts you follow, and
// yours, newest first; feeds/home.ts), its catch-up after a reconnect, the
// "for you" slot, and live updates: after feeds:watch, new posts arrive as
// `feeds:post` and deletions as `feeds:deleted`. Profile and hashtag
// timelines are posts:byUser and posts:hashtag.
import { z } from 'zod';
import { cursorInput, decodeCursor, pageLimit, pageOf } from '../kernel/cursor.ts';
import { postView } from '../social/views.ts';
import { FlockError } from '../kernel/errors.ts';
import { defineChannel, defineEvent, reads, SIGNED_IN } from './define.ts';

const read = reads(512);

export const feedsChannel = defineChannel({
  name: 'feeds',
  description: 'The home timeline with live updates, its catch-up after a reconnect, and the "for you" feed.',
  events: {
    home: defineEvent({
      ...read,
      summary:
        'Your home timeline, newest first: posts and reposts of the accounts you follow, and yours, with blocks, mutes, visibility and deletions applied.',
      request: z.object({ cursor: cursorInput.optional(), limit: pageLimit }).strict(),
      ack: pageOf(postView),
      handler: async (ctx, { cursor, limit }) => ctx.services.feeds.page(ctx.session.userId, { ...(cursor && { cursor }), limit }),
    }),
    since: defineEvent({
      ...read,
      summary:
        'What is newer than the newest timeline item you have (pass the `cursor` that came with it in feeds:post, or the nextCursor since returned last), oldest first. ' +
        'Call it after a reconnect, then keep calling with its nextCursor while `more`: no gaps, no duplicates.',
      request: z.object({ cursor: cursorInput, limit: pageLimit }).strict(),
      ack: z.object({ items: z.array(postView), nextCursor: z.string(), more: z.boolean() }),
      handler: async (ctx, { cursor, limit }) => {
        decodeCursor(cursor);
        return ctx.services.feeds.since(ctx.session.userId, { cursor, limit });
      },
    }),
    forYou: defineEvent({
      ...read,
      summary: 'Recent posts of your home timeline ranked by engagement and recency (the ranking is pluggable).',
      request: z.object({ limit: pageLimit }).strict(),
      ack: z.object({ items: z.array(postView) }),
      handler: async (ctx, { limit }) => ({ items: await ctx.services.feeds.forYou(ctx.session.userId, limit) }),
    }),
    watch: defineEvent({
      access: SIGNED_IN,
      rateLimit: { capacity: 5, perSecond: 0.2 },
      maxBytes: 64,
      summary: 'Live home timeline on this socket: new posts as feeds:post, deletions as feeds:deleted, until unwatch or disconnect.',
      request: z.object({}).strict(),
      ack: z.object({ authors: z.number().int().describe('Accounts watched, you included') }),
      handler: async (ctx) => {
        const me = ctx.session.userId;
        const following = await ctx.services.feeds.following(me);
        const rel = await ctx.services.social.relations(me, following);
        const authors = [me, ...following.filter((id) => !rel.muted.has(id) && !rel.blocked.has(id))];
        ctx.rooms.watchFeeds(authors);
        return { authors: authors.length };
      },
    }),
    unwatch: defineEvent({
      access: SIGNED_IN,
      rateLimit: { capacity: 5, perSecond: 0.2 },
      maxBytes: 64,
      summary: 'Stops the live home timeline on this socket.',
      request: z.object({}).strict(),
      ack: z.object({}),
      handler: async (ctx) => {
        if (!ctx.rooms.watchingFeeds()) throw new FlockError('REQUEST_INVALID', 'this socket is not watching');
        ctx.rooms.unwatchFeeds();
        return {};
      },
    }),
  },
});
