// Feed shards: the stored home feeds (feeds/store.ts) are owned by FEED_SHARDS
// FeedShard actors (actors/feed-shard.ts), each the only writer of the feeds of
// the users that hash to it. A post's fan-out is one batched message per shard
// holding some of the author's followers, not one turn per follower.
//
// The shard of a user is FNV-1a (32 bits) of the user id modulo the shard
// count: stable across nodes, processes and releases. Every node must use the
// same count. Changing it (a restart of every node) only moves which actor
// writes a feed: the feeds' keys do not depend on it, and every feed write is
// idempotent. While nodes disagree, a shard refuses the feeds it does not own
// (FEED_WRONG_SHARD): the event's fan-out fails and is handled again (the
// consumer group redelivers it after 30 s) until the nodes agree, so nothing is
// lost, only late.

/** Shards by default: enough to spread fan-out over every node of a large cluster, few enough to stay cheap. */
export const DEFAULT_FEED_SHARDS = 64;
/** Feeds named in one message to a shard: the consumer sends a shard's followers in batches of this size. */
export const FEED_SHARD_BATCH = 500;

/** The shard (0 to shards - 1) that owns a user's stored feed. */
export function feedShardOf(userId: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    hash ^= userId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

/**
 * Collects users by shard and hands each shard's users to `flush` in batches
 * of at most FEED_SHARD_BATCH: as soon as a shard has a full batch, and the
 * rest at the end. At most `shards` batches are held at once.
 */
export class ShardBatcher {
  private readonly pending = new Map<number, string[]>();

  constructor(
    private readonly shards: number,
    private readonly flush: (shard: number, userIds: string[]) => Promise<void>,
  ) {}

  async add(userIds: Iterable<string>): Promise<void> {
    const full: Promise<void>[] = [];
    for (const userId of userIds) {
      const shard = feedShardOf(userId, this.shards);
      const batch = this.pending.get(shard) ?? [];
      batch.push(userId);
      if (batch.length >= FEED_SHARD_BATCH) {
        this.pending.delete(shard);
        full.push(this.flush(shard, batch));
      } else this.pending.set(shard, batch);
    }
    await Promise.all(full);
  }

  /** Sends what is left, one message per shard, all at once. */
  async end(): Promise<void> {
    const rest = [...this.pending];
    this.pending.clear();
    await Promise.all(rest.map(([shard, userIds]) => this.flush(shard, userIds)));
  }
}
