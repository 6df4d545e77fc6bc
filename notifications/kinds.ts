// Notification kinds. Each declares what its subject is and how its
// notifications group: every kind with a group key folds further events into
// the open notification of that key ("A, B and 12 others liked your post")
// until the recipient reads it or the group window closes. A new kind is one
// entry here, plus the rule that derives it from a domain event (notifications/
// from-events.ts).
import { z } from 'zod';
import { NOTIFICATION_KINDS, type NotificationKind } from '../models/notification.ts';

export { NOTIFICATION_KINDS, type NotificationKind };

export const notificationKind = z.enum(NOTIFICATION_KINDS);

export interface KindDef {
  /** What `subjectId` names: a post of the recipient's, a post that mentions them, or the recipient. */
  subject: 'post' | 'user';
  /** Whether events on one subject fold into one open notification. */
  grouped: boolean;
  summary: string;
}

export const notificationKinds: { readonly [K in NotificationKind]: KindDef } = {
  like: { subject: 'post', grouped: true, summary: 'Users liked your post' },
  reply: { subject: 'post', grouped: true, summary: 'Users replied to your post (subject: your post; postId: the latest reply)' },
  quote: { subject: 'post', grouped: false, summary: 'A user quoted your post (subject: your post; postId: the quote)' },
  repost: { subject: 'post', grouped: true, summary: 'Users reposted your post' },
  mention: { subject: 'post', grouped: false, summary: 'A user mentioned you (subject: the post)' },
  follow: { subject: 'user', grouped: true, summary: 'Users followed you' },
  follow_request: { subject: 'user', grouped: true, summary: 'Users asked to follow you (approve with graph:approve)' },
};

/** The key under which events fold together; a kind that does not group gets one per event. */
export function groupKey(kind: NotificationKind, subjectId: string, eventId: string): string {
  return notificationKinds[kind].grouped ? `${kind}:${subjectId}` : `${kind}:${subjectId}:${eventId}`;
}
