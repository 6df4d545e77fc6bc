// NotificationsActor's interface: one per user (key = user id). It owns the
// user's notification inbox: which groups are open, the exact unread count,
// the kinds the user muted, and the ids of the domain events it has turned
// into notifications already (an event delivered twice changes nothing).
import { z } from 'zod';
import { userIdInput } from '../../kernel/ids.ts';
import { NOTIFICATION_KINDS } from '../../models/notification.ts';
import { notificationKind } from '../../notifications/kinds.ts';
import { defineActorInterface } from '../define.ts';

/** Notifications marked read in one request. */
export const MARK_MAX = 100;

const notifyInput = z.object({
  eventId: z.string().min(1).max(300),
  kind: notificationKind,
  actorId: userIdInput,
  subjectId: z.string().min(1).max(100),
  postId: z.string().max(100).nullable(),
});

export const NotificationsActor = defineActorInterface({
  type: 'notifications',
  messages: {
    /** Turns one domain event into a notification, or folds it into an open one. Idempotent per eventId. */
    notify: { input: notifyInput, output: z.object({ outcome: z.enum(['created', 'grouped', 'skipped']), reason: z.string().nullable() }) },
    /** Takes back every notification about a subject that is gone (a deleted post). Idempotent per eventId. */
    retract: {
      input: z.object({ eventId: z.string().min(1).max(300), subjectId: z.string().min(1).max(100) }),
      output: z.object({ retracted: z.number().int(), unread: z.number().int() }),
    },
    markRead: { input: z.object({ ids: z.array(z.string().max(100)).min(1).max(MARK_MAX) }), output: z.object({ unread: z.number().int() }) },
    markAllRead: { input: z.object({}), output: z.object({ unread: z.number().int() }) },
    unread: { input: z.object({}), output: z.object({ unread: z.number().int() }) },
    preferences: { input: z.object({}), output: z.object({ mutedKinds: z.array(notificationKind) }) },
    setPreferences: {
      input: z.object({ mutedKinds: z.array(notificationKind).max(NOTIFICATION_KINDS.length) }),
      output: z.object({ mutedKinds: z.array(notificationKind) }),
    },
  },
});
