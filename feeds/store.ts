// Stored home feeds: one Redis sorted set per user (`{prefix}:feed:{userId}`,
// member = post id, score = the post's creation time in ms), capped at
// `maxLength` newest entries. A feed is a cache of what fan-out on write put
// there, never the only copy of anything: the posts are in MongoDB, and what
// the cap cut off, or a feed Redis lost, comes back through the merge path
// (feeds/home.ts). Ties on the score are broken by post id, like every post
// list (cursor (t, id)).
//
// A feed is complete only from its floor up. Fan-out creates a missing feed
// (a new user's, or one Redis lost: expired, flushed, restarted empty) with
// the one post it brings, so a member FLOOR is added with the time of the
// oldest entry of that first write: older posts of the accounts followed are
// not in it, and pages that reach below the floor come from the merge path.
// The floor goes when the cap trims it (it is the lowest entry then, so
// everything kept is above it).
import { z } from 'zod';
import { RedisScript } from '../kernel/redis-script.ts';
import type { Redis } from '../kernel/redis.ts';

export interface FeedSettings {
  /** Entries kept per stored feed. */
  maxLength: number;
  /** Authors with at least this many followers are merged at read time instead of fanned out on write. */
  fanoutThreshold: number;
  /** Recent posts of an author added to a new follower's feed. */
  backfill: number;
  /** How long an untouched stored feed lives. */
  ttlSeconds: number;
}

export const defaultFeedSettings: FeedSettings = { maxLength: 800, fanoutThreshold: 5_000, backfill: 20, ttlSeconds: 14 * 24 * 3600 };

export interface FeedEntry {
  postId: string;
  at: number;
}

/** The member of a stored feed that marks its floor (its score); no post id has a '!'. */
export const FLOOR = '!floor';

/**
 * KEYS: feeds; ARGV: max length, TTL in seconds, then score/member pairs.
 * Each feed gets the entries, its cap and its TTL; a feed this creates gets
 * its floor.
 */
const ADD = `
local entries = {}
local oldest = nil
for i = 3, #ARGV, 2 do
  entries[#entries + 1] = ARGV[i]
  entries[#entries + 1] = ARGV[i + 1]
  if oldest == nil or tonumber(ARGV[i]) < oldest then oldest = tonumber(ARGV[i]) end
end
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 0 then redis.call('ZADD', key, oldest, '${FLOOR}') end
  redis.call('ZADD', key, unpack(entries))
  redis.call('ZREMRANGEBYRANK', key, 0, -(tonumber(ARGV[1]) + 1))
  redis.call('EXPIRE', key, ARGV[2])
end
return #KEYS`;

const addScript = new RedisScript('feed add', ADD, z.number());

/** Feeds one script call writes (it holds Redis for about a millisecond). */
const ADD_BATCH = 500;

export class FeedStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly settings: FeedSettings,
  ) {}

  key(userId: string): string {
    return `${this.prefix}:feed:${userId}`;
  }

  /** Adds entries to the feeds of many users (a script call per ADD_BATCH feeds), keeping each within maxLength. */
  async add(userIds: readonly string[], entries: readonly FeedEntry[]): Promise<void> {
    if (userIds.length === 0 || entries.length === 0) return;
    const args = [this.settings.maxLength, this.settings.ttlSeconds, ...entries.flatMap((e) => [e.at, e.postId])];
    for (let i = 0; i < userIds.length; i += ADD_BATCH) {
      const keys = userIds.slice(i, i + ADD_BATCH).map((id) => this.key(id));
      await addScript.run(this.redis, keys, args);
    }
  }

  /** Removes posts from a user's feed (an unfollow, a block); returns how many it held. */
  async remove(userId: string, postIds: readonly string[]): Promise<number> {
    return postIds.length > 0 ? this.redis.zrem(this.key(userId), ...postIds) : 0;
  }

  /** Whether the user has a stored feed at all (false after Redis lost it or the TTL ran out). */
  async exists(userId: string): Promise<boolean> {
    return (await this.redis.exists(this.key(userId))) === 1;
  }

  /** The time (ms) at and below which the stored feed may lack posts; null when it is complete down to its oldest entry (or missing). */
  async floor(userId: string): Promise<number | null> {
    const score = await this.redis.zscore(this.key(userId), FLOOR);
    return score === null ? null : Number(score);
  }

  /**
   * Entries older than `before` (newest first) or newer than `after` (oldest
   * first), at most `limit` (ties on the time broken by post id).
   */
  async range(userId: string, options: { before?: FeedEntry; after?: FeedEntry; limit: number }): Promise<FeedEntry[]> {
    const key = this.key(userId);
    // Ask for a little more than needed to step over entries sharing the boundary's time.
    const fetch = options.limit + 50;
    let raw: string[];
    if (options.after) {
      raw = await this.redis.zrangebyscore(key, options.after.at, '+inf', 'WITHSCORES', 'LIMIT', 0, fetch);
    } else {
      raw = await this.redis.zrevrangebyscore(key, options.before ? options.before.at : '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, fetch);
    }
    const entries: FeedEntry[] = [];
    for (let i = 0; i < raw.length; i += 2) if (raw[i] !== FLOOR) entries.push({ postId: raw[i]!, at: Number(raw[i + 1]) });
    const newer = (a: FeedEntry, b: FeedEntry) => a.at > b.at || (a.at === b.at && a.postId > b.postId);
    const kept = options.after ? entries.filter((e) => newer(e, options.after!)) : options.before ? entries.filter((e) => newer(options.before!, e)) : entries;
    kept.sort((a, b) => (options.after ? (newer(a, b) ? 1 : -1) : newer(a, b) ? -1 : 1));
    return kept.slice(0, options.limit);
  }
}
