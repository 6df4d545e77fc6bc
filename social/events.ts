// Domain events of the social core, appended to one Redis stream that
// notifications and feeds (issue 6) consume with consumer groups. Each event
// has a deterministic id (`type:subject[:version]`): an actor that redoes an
// effect after a crash may append it twice, and consumers drop the repeat.
import { z } from 'zod';
import type { Redis } from '../server/redis.ts';

export const socialEventSchemas = {
  'post.created': z.object({ postId: z.string(), authorId: z.string(), kind: z.string(), parentId: z.string().nullable(), quoteOf: z.string().nullable(), repostOf: z.string().nullable(), mentions: z.array(z.string()), hashtags: z.array(z.string()), visibility: z.string() }),
  'post.edited': z.object({ postId: z.string(), authorId: z.string(), mentions: z.array(z.string()), hashtags: z.array(z.string()) }),
  'post.deleted': z.object({ postId: z.string(), authorId: z.string(), removedBy: z.string().nullable() }),
  'post.liked': z.object({ postId: z.string(), authorId: z.string(), userId: z.string() }),
  'follow.created': z.object({ followerId: z.string(), followeeId: z.string() }),
  'follow.requested': z.object({ followerId: z.string(), followeeId: z.string() }),
  'follow.removed': z.object({ followerId: z.string(), followeeId: z.string() }),
  'block.created': z.object({ blockerId: z.string(), blockedId: z.string() }),
} as const;
export type SocialEventType = keyof typeof socialEventSchemas;
export type SocialEvent<T extends SocialEventType = SocialEventType> = { id: string; type: T; at: number; data: z.infer<(typeof socialEventSchemas)[T]> };

/** Events kept in the stream (approximate trim). */
export const SOCIAL_EVENTS_MAX_LEN = 100_000;

export class SocialEvents {
  constructor(
    private readonly redis: Redis,
    readonly streamKey: string,
  ) {}

  async emit<T extends SocialEventType>(type: T, id: string, data: z.infer<(typeof socialEventSchemas)[T]>): Promise<void> {
    const event: SocialEvent<T> = { id, type, at: Date.now(), data };
    await this.redis.xadd(this.streamKey, 'MAXLEN', '~', SOCIAL_EVENTS_MAX_LEN, '*', 'event', JSON.stringify(event));
  }

  /** The latest `count` events, oldest first (tests and operators). */
  async recent(count: number): Promise<SocialEvent[]> {
    const entries = await this.redis.xrevrange(this.streamKey, '+', '-', 'COUNT', count);
    return entries.reverse().map(([, fields]) => JSON.parse(fields[1]!) as SocialEvent);
  }
}
