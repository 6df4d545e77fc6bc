// notifications: the signed-in user's notification inbox. Notifications are
// made from domain events (consumers/notifications.ts) by the user's
// NotificationsActor, which groups them ("A, B and 12 others liked your
// post") and keeps the unread count exact. New and updated notifications also
// arrive live as `stream:event`s of type `notification` ({notification, unread}).
import { z } from 'zod';
import { MARK_MAX, NotificationsActor } from '../actors/contracts/notifications.ts';
import { notificationKind } from '../notifications/kinds.ts';
import { notificationView, shownActors, toNotificationView } from '../notifications/views.ts';
import { cursorInput, decodeCursor, encodeCursor, pageLimit, pageOf } from '../kernel/cursor.ts';
import { defineChannel, defineEvent, type AuthedEventContext, writes, reads } from './define.ts';

const read = reads(512);
const write = writes(8 * 1024);
const unread = z.object({ unread: z.number().int().describe('Unread notifications (a group counts once)') });
const preferences = z.object({ mutedKinds: z.array(notificationKind).describe('Kinds you get no notifications of') });

const inbox = (ctx: AuthedEventContext) => ctx.services.actors.ref(NotificationsActor, ctx.session.userId);

export const notificationsChannel = defineChannel({
  name: 'notifications',
  description: 'Your notifications: grouped likes, replies, reposts and follows, quotes and mentions, with an exact unread count and per-kind preferences.',
  events: {
    list: defineEvent({
      ...read,
      summary: 'Your notifications, latest activity first (a group moves up when it gets a new event).',
      request: z.object({ cursor: cursorInput.optional(), limit: pageLimit }).strict(),
      ack: pageOf(notificationView),
      handler: async (ctx, { cursor, limit }) => {
        const { notifications: store, social } = ctx.services;
        const docs = await store.page(ctx.session.userId, limit, decodeCursor(cursor));
        const profiles = new Map((await social.byIds(social.profiles, docs.flatMap(shownActors))).map((p) => [p._id, p]));
        const tail = docs.at(-1);
        return {
          items: docs.map((d) => toNotificationView(d, profiles)),
          nextCursor: tail && docs.length === limit ? encodeCursor({ t: new Date(tail.updatedAt).getTime(), id: tail._id }) : null,
        };
      },
    }),
    unread: defineEvent({
      ...read,
      summary: 'How many notifications you have not read.',
      request: z.object({}).strict(),
      ack: unread,
      handler: async (ctx) => inbox(ctx).ask('unread', {}),
    }),
    markRead: defineEvent({
      ...write,
      summary: `Marks notifications read (at most ${MARK_MAX} ids); a read group closes, so the next event starts a new notification.`,
      request: z.object({ ids: z.array(z.string().min(1).max(100)).min(1).max(MARK_MAX) }).strict(),
      ack: unread,
      handler: async (ctx, { ids }) => inbox(ctx).ask('markRead', { ids }),
    }),
    markAllRead: defineEvent({
      ...write,
      summary: 'Marks every notification read.',
      request: z.object({}).strict(),
      ack: unread,
      handler: async (ctx) => inbox(ctx).ask('markAllRead', {}),
    }),
    preferences: defineEvent({
      ...read,
      summary: 'The kinds of notifications you muted.',
      request: z.object({}).strict(),
      ack: preferences,
      handler: async (ctx) => inbox(ctx).ask('preferences', {}),
    }),
    setPreferences: defineEvent({
      ...write,
      summary: 'Mutes kinds of notifications (the list replaces the previous one; an empty list unmutes all).',
      request: preferences.strict(),
      ack: preferences,
      handler: async (ctx, { mutedKinds }) => inbox(ctx).ask('setPreferences', { mutedKinds }),
    }),
  },
});
