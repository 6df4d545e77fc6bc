// FeedShardActor's interface: FEED_SHARDS of them (key = the shard number,
// "0" to FEED_SHARDS - 1; feeds/shards.ts). Each is the only writer of the
// stored home feeds of the users that hash to it: the feeds consumer sends it
// a post's fan-out in batches, a follow's backfill and an unfollow's or a
// block's clean-up. Readers read the feeds straight from Redis (feeds/home.ts).
import { z } from 'zod';
import { postIdInput, userIdInput } from '../../kernel/ids.ts';
import { FEED_SHARD_BATCH } from '../../feeds/shards.ts';
import { defineActorInterface } from '../define.ts';

/** Entries one message adds to each feed (a follow's backfill is the largest). */
export const FEED_ENTRIES_MAX = 100;
/** Posts one message removes from a feed (an unfollowed author's recent posts, up to FEED_MAX_LENGTH). */
export const FEED_REMOVE_MAX = 10_000;

const feedEntry = z.object({ postId: postIdInput, at: z.number().int().min(0) });

export const FeedShardActor = defineActorInterface({
  type: 'feed-shard',
  messages: {
    /** Adds the entries to the stored feed of each user (all of this shard), keeping each within FEED_MAX_LENGTH. */
    add: {
      input: z.object({
        userIds: z.array(userIdInput).min(1).max(FEED_SHARD_BATCH),
        entries: z.array(feedEntry).min(1).max(FEED_ENTRIES_MAX),
        /** Only into feeds that exist already (a follow's backfill: a missing feed is rebuilt at read time anyway). */
        onlyExisting: z.boolean().default(false),
      }),
      output: z.object({ feeds: z.number().int() }),
    },
    /** Removes posts from one user's stored feed. */
    remove: {
      input: z.object({ userId: userIdInput, postIds: z.array(postIdInput).max(FEED_REMOVE_MAX) }),
      output: z.object({ removed: z.number().int() }),
    },
  },
});
