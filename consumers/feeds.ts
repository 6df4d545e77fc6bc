// Feed upkeep from the domain events (the `feeds` consumer group,
// events/consumer-group.ts): fan-out on write of new posts and reposts into
// the stored feeds of the author's followers (below the fan-out threshold; at
// or above it the author joins the celebrity set and is merged at read time),
// backfill on follow, clean-up on unfollow and block, and the live events to
// the followers watching their home timeline. The stored feeds are written by
// their FeedShard actors (actors/feed-shard.ts), never here: a post's fan-out
// is one message per shard per FEED_SHARD_BATCH followers (feeds/shards.ts).
// Every step is idempotent: a redelivered event changes nothing twice.
import mongoose from 'mongoose';
import type { PostDoc } from '../models/post.ts';
import type { Redis } from '../kernel/redis.ts';
import { encodeCursor } from '../kernel/cursor.ts';
import type { DomainEvent } from '../events/domain.ts';
import type { SocialReads } from '../social/reads.ts';
import type { HomeFeeds } from '../feeds/home.ts';
import type { FeedLive } from '../feeds/live.ts';
import { liveView } from '../feeds/live-view.ts';
import type { FeedEntry } from '../feeds/store.ts';
import { FEED_SHARD_BATCH, feedShardOf, ShardBatcher } from '../feeds/shards.ts';
import type { ActorSystem } from '../actors/ref.ts';
import { FeedShardActor } from '../actors/contracts/feed-shard.ts';

export interface FeedHandlerDeps {
  feeds: HomeFeeds;
  reads: SocialReads;
  redis: Redis;
  live: FeedLive;
  actors: ActorSystem;
  /** FEED_SHARDS: the same on every node. */
  shards: number;
}

/** How long a post's live emit is remembered (a redelivered event does not emit it again). */
const LIVE_ONCE_SECONDS = 24 * 3600;

export function feedHandler({ feeds, reads, redis, live, actors, shards }: FeedHandlerDeps): (event: DomainEvent) => Promise<void> {
  const social = reads.store;
  const store = feeds.store;
  const shardOf = (userId: string) => actors.ref(FeedShardActor, String(feedShardOf(userId, shards)));

  /** Adds entries to the feeds of users, through the shards that own them. */
  function fanOut(entries: FeedEntry[]): ShardBatcher {
    return new ShardBatcher(shards, async (shard, userIds) => {
      await actors.ref(FeedShardActor, String(shard)).ask('add', { userIds, entries });
    });
  }

  /** Removes an author's recent posts from a user's stored feed. */
  async function forget(userId: string, authorId: string): Promise<void> {
    const posts = await social.posts
      .find({ authorId, kind: mongoose.trusted({ $ne: 'reply' }) }, { _id: 1 })
      .sort({ createdAt: -1 })
      .limit(store.settings.maxLength)
      .lean<{ _id: string }[]>();
    if (posts.length > 0) await shardOf(userId).ask('remove', { userId, postIds: posts.map((p) => p._id) });
  }

  return async (event) => {
    switch (event.type) {
      case 'posts:created': {
        const d = event.data;
        if (d.kind === 'reply') return;
        const doc = await social.posts.findById(d.postId).lean<PostDoc>();
        if (!doc || doc.deleted) return;
        // Live first (the payload is the post itself): to the followers watching; the room holds followers
        // only, never those who muted the author; what it embeds is for all of them (feeds/live-view.ts).
        // Once per post, even when the event is handled again.
        const shown = await liveView(reads, doc);
        if (shown && (await redis.set(feeds.liveKey(doc._id), '1', 'EX', LIVE_ONCE_SECONDS, 'NX'))) {
          const { view, except } = shown;
          live.post(d.authorId, { post: view, cursor: encodeCursor({ t: view.createdAt, id: view.postId }) }, except);
        }
        const entry = { postId: doc._id, at: doc.createdAt.getTime() };
        const profile = await social.profiles.findById(d.authorId, { followers: 1 }).lean<{ followers: number }>();
        const batcher = fanOut([entry]);
        if ((profile?.followers ?? 0) >= store.settings.fanoutThreshold) {
          await redis.sadd(feeds.celebritiesKey(), d.authorId);
        } else {
          await social.edges.forEach({ kind: 'follow', by: 'owner', id: d.authorId, status: 'active', batch: FEED_SHARD_BATCH }, (ids) => batcher.add(ids));
        }
        await batcher.add([d.authorId]);
        await batcher.end();
        return;
      }
      case 'posts:deleted': {
        const d = event.data;
        // Stored feeds keep the id until it ages out; every read drops deleted posts.
        live.deleted(d.authorId, { postId: d.postId, authorId: d.authorId });
        return;
      }
      case 'graph:followCreated': {
        const d = event.data;
        const recent = await social.posts
          .find({ authorId: d.followeeId, deleted: false, kind: mongoose.trusted({ $ne: 'reply' }) }, { _id: 1, createdAt: 1 })
          .sort({ createdAt: -1 })
          .limit(store.settings.backfill)
          .lean<{ _id: string; createdAt: Date }[]>();
        // Only into a feed that exists: a missing one is rebuilt from the follows at read time anyway.
        if (recent.length > 0)
          await shardOf(d.followerId).ask('add', {
            userIds: [d.followerId],
            entries: recent.map((p) => ({ postId: p._id, at: p.createdAt.getTime() })),
            onlyExisting: true,
          });
        if ((await social.edges.status('mute', d.followerId, d.followeeId)) !== 'active') live.watchAuthor(d.followerId, d.followeeId, true);
        return;
      }
      case 'graph:followRemoved': {
        const d = event.data;
        live.watchAuthor(d.followerId, d.followeeId, false);
        await forget(d.followerId, d.followeeId);
        return;
      }
      case 'graph:blockCreated': {
        const d = event.data;
        live.watchAuthor(d.blockerId, d.blockedId, false);
        live.watchAuthor(d.blockedId, d.blockerId, false);
        await Promise.all([forget(d.blockerId, d.blockedId), forget(d.blockedId, d.blockerId)]);
        return;
      }
      default:
    }
  };
}
