// Turns the social core's domain events (the Redis stream of social/events.ts)
// into notifications. Every node runs one consumer in the consumer group
// `notifications`; Redis hands each event to one of them. An event is
// acknowledged once the recipients' NotificationsActors have taken it; one
// that failed stays pending and is claimed again (by any node) after
// CLAIM_IDLE_MS, so a node that dies mid-batch loses nothing. Redelivery is
// harmless: each actor drops an event id it has seen.
import type { ActorRuntime } from '../actors/runtime.ts';
import { NotificationsActor } from '../actors/notifications.ts';
import type { Logger } from '../server/logger.ts';
import { createRedis, untilReady, type Redis } from '../server/redis.ts';
import type { SocialEvent } from '../social/events.ts';
import type { SocialReads } from '../social/reads.ts';
import type { NotificationKind } from './kinds.ts';

export const CONSUMER_GROUP = 'notifications';
const BATCH = 100;
const BLOCK_MS = 1_000;
/** An event pending this long with another consumer is taken over. */
const CLAIM_IDLE_MS = 30_000;
const CLAIM_EVERY_MS = 10_000;
/** Events handled at once. */
const PARALLEL = 16;

/** One notification an event asks for. */
export interface NotifyOrder {
  userId: string;
  eventId: string;
  kind: NotificationKind;
  actorId: string;
  subjectId: string;
  postId: string | null;
}

/** The notifications a domain event makes (before the recipient's own rules: blocks, mutes, own actions, muted kinds). */
export async function ordersFor(event: SocialEvent, reads: SocialReads): Promise<NotifyOrder[]> {
  const base = { eventId: event.id };
  switch (event.type) {
    case 'post.liked': {
      const d = event.data as SocialEvent<'post.liked'>['data'];
      return [{ ...base, userId: d.authorId, kind: 'like', actorId: d.userId, subjectId: d.postId, postId: null }];
    }
    case 'follow.created':
    case 'follow.requested': {
      const d = event.data as SocialEvent<'follow.created'>['data'];
      return [{ ...base, userId: d.followeeId, kind: event.type === 'follow.created' ? 'follow' : 'follow_request', actorId: d.followerId, subjectId: d.followeeId, postId: null }];
    }
    case 'post.created': {
      const d = event.data as SocialEvent<'post.created'>['data'];
      const orders: NotifyOrder[] = [];
      const target = d.kind === 'reply' ? d.parentId : d.kind === 'quote' ? d.quoteOf : d.kind === 'repost' ? d.repostOf : null;
      if (target) {
        const original = await reads.store.posts.findById(target, { authorId: 1 }).lean<{ authorId: string }>();
        const kind: NotificationKind = d.kind === 'reply' ? 'reply' : d.kind === 'quote' ? 'quote' : 'repost';
        if (original) orders.push({ ...base, userId: original.authorId, kind, actorId: d.authorId, subjectId: target, postId: d.kind === 'repost' ? null : d.postId });
      }
      for (const userId of d.mentions) orders.push({ ...base, userId, kind: 'mention', actorId: d.authorId, subjectId: d.postId, postId: d.postId });
      // Only people who may see the post hear of it.
      const visible = await Promise.all(orders.map((o) => reads.visibleDoc(o.userId, d.postId).then(() => true, () => false)));
      return orders.filter((_, i) => visible[i]);
    }
    default:
      return [];
  }
}

export interface NotificationConsumerOptions {
  redisUrl: string;
  streamKey: string;
  nodeId: string;
  actors: ActorRuntime;
  reads: SocialReads;
  log: Logger;
}

export class NotificationConsumer {
  private readonly redis: Redis;
  private running = false;
  private loop: Promise<void> | undefined;
  private lastClaim = 0;

  constructor(private readonly options: NotificationConsumerOptions) {
    this.redis = createRedis(options.redisUrl, `flock:${options.nodeId}:notifications`, options.log);
  }

  async start(): Promise<void> {
    await untilReady(this.redis);
    await this.redis.xgroup('CREATE', this.options.streamKey, CONSUMER_GROUP, '$', 'MKSTREAM').catch((err: Error) => {
      if (!/BUSYGROUP/.test(err.message)) throw err;
    });
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    // The blocking read returns within BLOCK_MS.
    await this.loop;
    this.redis.disconnect();
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        if (Date.now() - this.lastClaim > CLAIM_EVERY_MS) await this.claimStale();
        const res = (await this.redis.xreadgroup(
          'GROUP', CONSUMER_GROUP, this.options.nodeId,
          'COUNT', BATCH, 'BLOCK', BLOCK_MS,
          'STREAMS', this.options.streamKey, '>',
        )) as Array<[string, Array<[string, string[]]>]> | null;
        if (res) await this.handle(res[0]![1]);
      } catch (err) {
        if (!this.running) return;
        this.options.log.warn({ err }, 'notification consumer: read failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  }

  /** Takes over events another consumer (perhaps a dead node) left unacknowledged. */
  private async claimStale(): Promise<void> {
    this.lastClaim = Date.now();
    const [, entries] = (await this.redis.xautoclaim(this.options.streamKey, CONSUMER_GROUP, this.options.nodeId, CLAIM_IDLE_MS, '0-0', 'COUNT', BATCH)) as [
      string,
      Array<[string, string[]] | null>,
    ];
    const live = entries.filter((e): e is [string, string[]] => Array.isArray(e) && Array.isArray(e[1]));
    if (live.length > 0) await this.handle(live);
  }

  private async handle(entries: Array<[string, string[]]>): Promise<void> {
    const done: string[] = [];
    for (let i = 0; i < entries.length; i += PARALLEL) {
      await Promise.all(
        entries.slice(i, i + PARALLEL).map(async ([streamId, fields]) => {
          let event: SocialEvent | null = null;
          try {
            event = JSON.parse(fields[fields.indexOf('event') + 1] ?? 'null') as SocialEvent | null;
          } catch {
            // Nothing will ever make it readable: acknowledge it rather than retry it forever.
          }
          if (!event?.id || !event.type) {
            this.options.log.warn({ streamId }, 'notification consumer: malformed event dropped');
            done.push(streamId);
            return;
          }
          try {
            {
              const orders = await ordersFor(event, this.options.reads);
              await Promise.all(
                orders.map(({ userId, ...order }) => this.options.actors.ref(NotificationsActor, userId).ask('notify', order)),
              );
            }
            done.push(streamId);
          } catch (err) {
            // Left pending: claimed again after CLAIM_IDLE_MS.
            this.options.log.warn({ err, streamId }, 'notification consumer: event not handled; will retry');
          }
        }),
      );
    }
    if (done.length > 0) await this.redis.xack(this.options.streamKey, CONSUMER_GROUP, ...done);
  }
}
