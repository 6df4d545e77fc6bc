// Feed upkeep from the domain events (the `feeds` consumer group,
// events/consumer-group.ts): fan-out on write of new posts and reposts into
// the stored feeds of the author's followers (below the fan-out threshold; at
// or above it the author joins the celebrity set and is merged at read time),
// backfill on follow, clean-up on unfollow and block, and the live events to
// the followers watching their home timeline. Every step is idempotent: a
// redelivered event changes nothing twice.
import mongoose from 'mongoose';
import type { PostDoc } from '../models/post.ts';
import type { Redis } from '../kernel/redis.ts';
import { encodeCursor } from '../kernel/cursor.ts';
import type { DomainEvent } from '../events/domain.ts';
import type { SocialReads } from '../social/reads.ts';
import type { HomeFeeds } from '../feeds/home.ts';
import type { FeedLive } from '../feeds/live.ts';

/** Followers written per pipeline. */
const FANOUT_BATCH = 500;
/** How long a post's live emit is remembered (a redelivered event does not emit it again). */
const LIVE_ONCE_SECONDS = 24 * 3600;

export function feedHandler(feeds: HomeFeeds, reads: SocialReads, redis: Redis, live: FeedLive): (event: DomainEvent) => Promise<void> {
  const social = reads.store;
  const store = feeds.store;

  /** Removes an author's recent posts from a user's stored feed. */
  async function forget(userId: string, authorId: string): Promise<void> {
    const posts = await social.posts
      .find({ authorId, kind: mongoose.trusted({ $ne: 'reply' }) }, { _id: 1 })
      .sort({ createdAt: -1 })
      .limit(store.settings.maxLength)
      .lean<{ _id: string }[]>();
    await store.remove(
      userId,
      posts.map((p) => p._id),
    );
  }

  return async (event) => {
    switch (event.type) {
      case 'posts:created': {
        const d = event.data;
        if (d.kind === 'reply') return;
        const doc = await social.posts.findById(d.postId).lean<PostDoc>();
        if (!doc || doc.deleted) return;
        // Live first (the payload is the post itself): to the followers watching; the room holds followers
        // only, never those who muted the author. Once per post, even when the event is handled again.
        const [view] = await reads.views(d.authorId, [doc], undefined, { viewerState: false });
        if (view && (await redis.set(feeds.liveKey(doc._id), '1', 'EX', LIVE_ONCE_SECONDS, 'NX'))) {
          live.post(d.authorId, { post: view, cursor: encodeCursor({ t: view.createdAt, id: view.postId }) });
        }
        const entry = { postId: doc._id, at: doc.createdAt.getTime() };
        const profile = await social.profiles.findById(d.authorId, { followers: 1 }).lean<{ followers: number }>();
        await store.add([d.authorId], [entry]);
        if ((profile?.followers ?? 0) >= store.settings.fanoutThreshold) {
          await redis.sadd(feeds.celebritiesKey(), d.authorId);
        } else {
          await social.edges.forEach({ kind: 'follow', by: 'owner', id: d.authorId, status: 'active', batch: FANOUT_BATCH }, (ids) => store.add(ids, [entry]));
        }
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
        if (await store.exists(d.followerId))
          await store.add(
            [d.followerId],
            recent.map((p) => ({ postId: p._id, at: p.createdAt.getTime() })),
          );
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
