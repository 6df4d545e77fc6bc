// Turns the social core's domain events (the Redis stream of events/domain.ts)
// into notifications: every node runs a consumer of the group
// `notifications` (events/consumer-group.ts) with this handler. An event is
// acknowledged once the recipients' NotificationsActors have taken it;
// redelivery is harmless: each actor drops an event id it has seen.
import type { ActorSystem } from '../actors/ref.ts';
import { NotificationsActor } from '../actors/contracts/notifications.ts';
import type { DomainEvent } from '../events/domain.ts';
import type { SocialReads } from '../social/reads.ts';
import type { NotificationKind } from '../notifications/kinds.ts';

/** One notification an event asks for. */
export interface NotifyOrder {
  userId: string;
  eventId: string;
  kind: NotificationKind;
  actorId: string;
  subjectId: string;
  postId: string | null;
}

/** Notifications a domain event takes back: every one of the user's about the subject. */
export interface RetractOrder {
  userId: string;
  eventId: string;
  subjectId: string;
}

/** A deleted post takes back what it was the subject of: likes, replies, quotes and reposts to its author, mentions to those it mentioned. */
export async function retractionsFor(event: DomainEvent, reads: SocialReads): Promise<RetractOrder[]> {
  if (event.type !== 'posts:deleted') return [];
  const d = event.data;
  const post = await reads.store.posts.findById(d.postId, { mentions: 1 }).lean<{ mentions?: string[] }>();
  const users = new Set([d.authorId, ...(post?.mentions ?? [])]);
  return [...users].map((userId) => ({ userId, eventId: event.id, subjectId: d.postId }));
}

/** The notifications a domain event makes (before the recipient's own rules: blocks, mutes, own actions, muted kinds). */
export async function ordersFor(event: DomainEvent, reads: SocialReads): Promise<NotifyOrder[]> {
  const base = { eventId: event.id };
  switch (event.type) {
    case 'posts:liked': {
      const d = event.data;
      return [{ ...base, userId: d.authorId, kind: 'like', actorId: d.userId, subjectId: d.postId, postId: null }];
    }
    case 'graph:followCreated':
    case 'graph:followRequested': {
      const d = event.data;
      return [
        {
          ...base,
          userId: d.followeeId,
          kind: event.type === 'graph:followCreated' ? 'follow' : 'follow_request',
          actorId: d.followerId,
          subjectId: d.followeeId,
          postId: null,
        },
      ];
    }
    case 'posts:created': {
      const d = event.data;
      const orders: NotifyOrder[] = [];
      const target = d.kind === 'reply' ? d.parentId : d.kind === 'quote' ? d.quoteOf : d.kind === 'repost' ? d.repostOf : null;
      if (target) {
        const original = await reads.store.posts.findById(target, { authorId: 1 }).lean<{ authorId: string }>();
        const kind: NotificationKind = d.kind === 'reply' ? 'reply' : d.kind === 'quote' ? 'quote' : 'repost';
        if (original)
          orders.push({ ...base, userId: original.authorId, kind, actorId: d.authorId, subjectId: target, postId: d.kind === 'repost' ? null : d.postId });
      }
      for (const userId of d.mentions) orders.push({ ...base, userId, kind: 'mention', actorId: d.authorId, subjectId: d.postId, postId: d.postId });
      // Only people who may see the post hear of it.
      const visible = await Promise.all(
        orders.map((o) =>
          reads.visibleDoc(o.userId, d.postId).then(
            () => true,
            () => false,
          ),
        ),
      );
      return orders.filter((_, i) => visible[i]);
    }
    default:
      return [];
  }
}

/** Notifications from the domain events: the handler of the `notifications` consumer group (events/consumer-group.ts). */
export function notificationHandler(actors: ActorSystem, reads: SocialReads): (event: DomainEvent) => Promise<void> {
  return async (event) => {
    const [orders, retractions] = await Promise.all([ordersFor(event, reads), retractionsFor(event, reads)]);
    await Promise.all([
      ...orders.map(({ userId, ...order }) => actors.ref(NotificationsActor, userId).ask('notify', order)),
      ...retractions.map(({ userId, ...order }) => actors.ref(NotificationsActor, userId).ask('retract', order)),
    ]);
  };
}
