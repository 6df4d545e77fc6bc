// FeedShardActor's implementation (interface: actors/contracts/feed-shard.ts).
// Its state is the stored feeds of its users, in Redis (feeds/store.ts), not
// in `actor_states`: a cache of the posts in MongoDB that the merge path
// rebuilds when Redis loses it. Every write is idempotent (a sorted-set add
// or remove), so a message redone after a failover, or written for a moment
// by a stale activation, leaves the same feeds.
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { feedShardOf } from '../feeds/shards.ts';
import { FeedShardActor } from './contracts/feed-shard.ts';
import { implementActor, type ActorContext } from './define.ts';

/** Refuses users this shard does not own: a node with another FEED_SHARDS would otherwise write them twice over. */
function owned(ctx: ActorContext<unknown>, userIds: readonly string[]): void {
  const shards = ctx.services.feedShards;
  const stray = userIds.find((id) => String(feedShardOf(id, shards)) !== ctx.key);
  if (stray !== undefined)
    throw new FlockError('FEED_WRONG_SHARD', `feed shard ${ctx.key} of ${shards} does not own the feed of ${stray}`, { details: { shard: ctx.key, shards } });
}

export const feedShardActor = implementActor(FeedShardActor, {
  state: z.object({}),
  initialState: () => ({}),
  persistence: { kind: 'durable' },
  handlers: {
    add: async (ctx, { userIds, entries, onlyExisting }) => {
      owned(ctx, userIds);
      const feeds = ctx.services.feeds;
      const targets = onlyExisting ? (await Promise.all(userIds.map(async (id) => ((await feeds.exists(id)) ? [id] : [])))).flat() : userIds;
      await feeds.add(targets, entries);
      return { feeds: targets.length };
    },
    remove: async (ctx, { userId, postIds }) => {
      owned(ctx, [userId]);
      return { removed: await ctx.services.feeds.remove(userId, postIds) };
    },
  },
});
