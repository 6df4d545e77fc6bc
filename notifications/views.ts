// What clients see of a notification (list items and live `notification`
// events of the personal stream).
import { z } from 'zod';
import type { NotificationDoc } from '../models/notification.ts';
import type { ProfileDoc } from '../models/profile.ts';
import { summary } from '../social/reads.ts';
import { userSummary } from '../social/views.ts';
import { notificationKind } from './kinds.ts';

/** Actors shown by name per notification ("A, B and 12 others"). */
export const ACTORS_SHOWN = 3;

export const notificationView = z.object({
  notificationId: z.string(),
  kind: notificationKind,
  subjectId: z.string().describe('The post it is about (like, reply, quote, repost, mention), or you (follow, follow_request)'),
  postId: z.string().nullable().describe('The reply, quote or mentioning post of the latest event'),
  actors: z.array(userSummary).describe(`The latest actors, at most ${ACTORS_SHOWN}`),
  actorCount: z.number().int().describe('How many users the notification is about in all'),
  read: z.boolean(),
  createdAt: z.number().int(),
  updatedAt: z.number().int(),
});
export type NotificationView = z.infer<typeof notificationView>;

export function shownActors(doc: Pick<NotificationDoc, 'actorIds'>): string[] {
  return doc.actorIds.slice(0, ACTORS_SHOWN);
}

export function toNotificationView(doc: NotificationDoc, profiles: Map<string, ProfileDoc>): NotificationView {
  return {
    notificationId: doc._id,
    kind: doc.kind,
    subjectId: doc.subjectId,
    postId: doc.postId ?? null,
    actors: shownActors(doc).flatMap((id) => (profiles.has(id) ? [summary(profiles.get(id)!)] : [])),
    actorCount: doc.actorCount,
    read: doc.read,
    createdAt: new Date(doc.createdAt).getTime(),
    updatedAt: new Date(doc.updatedAt).getTime(),
  };
}
