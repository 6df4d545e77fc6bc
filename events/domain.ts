// The domain events: facts the social core records for other parts of
// Flock to act on (notifications, feeds, search), one Redis stream per
// cluster (`{REDIS_KEY_PREFIX}:social:events`) read by consumer groups
// (events/consumer-group.ts). Each event is declared once below: its type
// name (`subsystem:camelCase`) and its data schema, from which the union
// type, the parser consumers use and the emitter's signature all come.
//
// Ids are made by the emitting actor from its own state version
// (`posts:liked:{postId}:{userId}:{version}`) and stored with the effect that
// emits them, so an effect redone after a crash appends the same id again and
// consumers drop the repeat.
import { z } from 'zod';
import type { Redis } from '../kernel/redis.ts';

const event = <T extends string, D extends z.ZodType>(type: T, data: D) =>
  z.object({ id: z.string().min(1).max(300), type: z.literal(type), at: z.number().int(), data });

const follow = z.object({ followerId: z.string(), followeeId: z.string() });

/** Every domain event, discriminated by `type`. */
export const domainEventSchema = z.discriminatedUnion('type', [
  event(
    'posts:created',
    z.object({
      postId: z.string(),
      authorId: z.string(),
      kind: z.enum(['post', 'reply', 'quote', 'repost']),
      parentId: z.string().nullable(),
      quoteOf: z.string().nullable(),
      repostOf: z.string().nullable(),
      mentions: z.array(z.string()),
      hashtags: z.array(z.string()),
      visibility: z.enum(['public', 'followers']),
    }),
  ),
  event('posts:edited', z.object({ postId: z.string(), authorId: z.string(), mentions: z.array(z.string()), hashtags: z.array(z.string()) })),
  event('posts:deleted', z.object({ postId: z.string(), authorId: z.string(), removedBy: z.string().nullable() })),
  event('posts:liked', z.object({ postId: z.string(), authorId: z.string(), userId: z.string() })),
  event('graph:followCreated', follow),
  event('graph:followRequested', follow),
  event('graph:followRemoved', follow),
  event('graph:blockCreated', z.object({ blockerId: z.string(), blockedId: z.string() })),
]);

export type DomainEvent = z.output<typeof domainEventSchema>;
export type DomainEventType = DomainEvent['type'];
export type DomainEventOf<T extends DomainEventType> = Extract<DomainEvent, { type: T }>;
export type DomainEventData<T extends DomainEventType> = DomainEventOf<T>['data'];

/**
 * Names of the release before 0.2.0, read for one release so that events a
 * node of the previous version appended and left unhandled before the upgrade
 * are handled (README, "Renamed in 0.2.0": a 0.1 cluster upgrades at once).
 */
const LEGACY_TYPES: Readonly<Record<string, DomainEventType>> = {
  'post.created': 'posts:created',
  'post.edited': 'posts:edited',
  'post.deleted': 'posts:deleted',
  'post.liked': 'posts:liked',
  'follow.created': 'graph:followCreated',
  'follow.requested': 'graph:followRequested',
  'follow.removed': 'graph:followRemoved',
  'block.created': 'graph:blockCreated',
};

/** The event a stream entry's JSON holds, or null when it is not one (malformed, unknown type). */
export function parseDomainEvent(json: string): DomainEvent | null {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof raw === 'object' && raw !== null && 'type' in raw && typeof raw.type === 'string' && Object.hasOwn(LEGACY_TYPES, raw.type)) {
    raw = { ...raw, type: LEGACY_TYPES[raw.type] };
  }
  const parsed = domainEventSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

/** A new event, checked against its schema: what an actor records as an effect and appends once its state is saved. */
export function domainEvent<T extends DomainEventType>(type: T, id: string, data: DomainEventData<T>): DomainEvent {
  return domainEventSchema.parse({ id, type, at: Date.now(), data });
}

/** Events kept in the stream (approximate trim). */
export const DOMAIN_EVENTS_MAX_LEN = 100_000;

export class DomainEvents {
  constructor(
    private readonly redis: Redis,
    readonly streamKey: string,
  ) {}

  /** Appends an event (made with domainEvent, usually recorded as an actor's effect). Appending one twice is harmless: consumers drop a repeated id. */
  async append(event: DomainEvent): Promise<void> {
    await this.redis.xadd(this.streamKey, 'MAXLEN', '~', DOMAIN_EVENTS_MAX_LEN, '*', 'event', JSON.stringify(event));
  }

  /** The latest `count` events, oldest first (tests and operators). */
  async recent(count: number): Promise<DomainEvent[]> {
    const entries = await this.redis.xrevrange(this.streamKey, '+', '-', 'COUNT', count);
    return entries.reverse().flatMap(([, fields]) => {
      const parsed = parseDomainEvent(fields[fields.indexOf('event') + 1] ?? '');
      return parsed ? [parsed] : [];
    });
  }
}
