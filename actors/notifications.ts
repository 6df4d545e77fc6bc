// NotificationsActor: one per user (key = user id). It owns the user's
// notification inbox (models/notification.ts): which groups are open, the
// exact unread count, the kinds the user muted, and the ids of the domain
// events it has turned into notifications already (an event delivered twice
// changes nothing).
//
// A notify turn writes the notification document first (fenced; a new one
// under the next sequence number, so a turn redone after a crash rewrites the
// same document), then the state is saved, and after that (ctx.afterCommit)
// the notification goes to the user's personal stream, and to the push
// outbox when the user is offline.
import mongoose from 'mongoose';
import { z } from 'zod';
import { edgeId } from '../models/edge.ts';
import { MAX_ACTORS_KEPT, notificationId, type NotificationDoc } from '../models/notification.ts';
import { groupKey, notificationKind, NOTIFICATION_KINDS } from '../notifications/kinds.ts';
import { notificationView, shownActors, toNotificationView } from '../notifications/views.ts';
import { fencedUpdate, fencedUpsert } from '../kernel/fenced.ts';
import { defineActor, type ActorContext, type ActorType } from './define.ts';
import { userIdInput } from '../kernel/ids.ts';
import { isDuplicateKey } from '../kernel/duplicate-key.ts';

/** Open groups remembered; the oldest closes first when there are more. */
const MAX_OPEN = 500;
/** Notifications marked read in one request. */
export const MARK_MAX = 100;
/** Notifications about one subject a retract takes back (one per kind and open period: a handful in practice). */
const MAX_RETRACTED = 1_000;

const notificationsState = z.object({
  /** The last notification sequence number handed out. */
  seq: z.number().int().min(0),
  /** Unread notifications: exact. */
  unread: z.number().int().min(0),
  /** Open groups: key, the notification's sequence number, when it opened (ms). */
  open: z.array(z.object({ key: z.string(), seq: z.number().int(), at: z.number().int() })),
  /** Ids of the latest events handled. */
  seen: z.array(z.string()),
  mutedKinds: z.array(notificationKind),
  /** The notification the last notify turn changed: published again on activation, in case that failed. */
  lastTouched: z.string().nullable().default(null),
});
type State = z.output<typeof notificationsState>;

const notifyInput = z.object({
  eventId: z.string().min(1).max(200),
  kind: notificationKind,
  actorId: userIdInput,
  subjectId: z.string().min(1).max(100),
  postId: z.string().max(100).nullable(),
});

const notificationsMessages = {
  /** Turns one domain event into a notification, or folds it into an open one. Idempotent per eventId. */
  notify: { input: notifyInput, output: z.object({ outcome: z.enum(['created', 'grouped', 'skipped']), reason: z.string().nullable() }) },
  /** Takes back every notification about a subject that is gone (a deleted post). Idempotent per eventId. */
  retract: {
    input: z.object({ eventId: z.string().min(1).max(200), subjectId: z.string().min(1).max(100) }),
    output: z.object({ retracted: z.number().int(), unread: z.number().int() }),
  },
  markRead: { input: z.object({ ids: z.array(z.string().max(100)).min(1).max(MARK_MAX) }), output: z.object({ unread: z.number().int() }) },
  markAllRead: { input: z.object({}), output: z.object({ unread: z.number().int() }) },
  unread: { input: z.object({}), output: z.object({ unread: z.number().int() }) },
  preferences: { input: z.object({}), output: z.object({ mutedKinds: z.array(notificationKind) }) },
  setPreferences: { input: z.object({ mutedKinds: z.array(notificationKind).max(NOTIFICATION_KINDS.length) }), output: z.object({ mutedKinds: z.array(notificationKind) }) },
};

type NotificationsActorType = ActorType<typeof notificationsState, typeof notificationsMessages>;
type Ctx = ActorContext<State>;

export const NotificationsActor: NotificationsActorType = defineActor({
  type: 'notifications',
  state: notificationsState,
  initialState: () => ({ seq: 0, unread: 0, open: [], seen: [], mutedKinds: [], lastTouched: null }),
  persistence: { kind: 'durable' },
  onActivate: async (ctx) => {
    // Publishing is idempotent (a client replaces a notification by id; the
    // outbox id names the version), so redoing the last one is harmless.
    if (!ctx.state.lastTouched) return;
    const doc = await ctx.services.notifications.notifications.findById(ctx.state.lastTouched).lean<NotificationDoc>();
    if (doc) await publish(ctx, doc, ctx.state.unread);
  },
  messages: notificationsMessages,
  handlers: {
    notify: async (ctx, input) => {
      const state = ctx.state;
      const skip = (reason: string) => {
        ctx.setState({ ...state, seen: remember(ctx, state.seen, input.eventId) });
        return { outcome: 'skipped' as const, reason };
      };
      if (state.seen.includes(input.eventId)) return { outcome: 'skipped', reason: 'duplicate' };
      if (input.actorId === ctx.key) return skip('own action');
      if (state.mutedKinds.includes(input.kind)) return skip('kind muted');
      if (await hidden(ctx, input.actorId)) return skip('blocked or muted');

      const { groupWindowMs } = ctx.services.notifications.settings;
      const now = new Date();
      const key = groupKey(input.kind, input.subjectId, input.eventId);
      const open = state.open.find((o) => o.key === key && o.at > now.getTime() - groupWindowMs);
      const existing = open ? await ctx.services.notifications.notifications.findById(notificationId(ctx.key, open.seq)).lean<NotificationDoc>() : null;
      let doc: NotificationDoc;
      let outcome: 'created' | 'grouped';
      let { seq, unread } = state;
      let openGroups = state.open.filter((o) => o.key !== key);
      if (existing && !existing.read) {
        const known = existing.actorIds.includes(input.actorId);
        doc = {
          ...existing,
          postId: input.postId ?? existing.postId,
          actorIds: [input.actorId, ...existing.actorIds.filter((id) => id !== input.actorId)].slice(0, MAX_ACTORS_KEPT),
          actorCount: existing.actorCount + (known ? 0 : 1),
          updatedAt: now,
        };
        const { _id, epoch: _e, ...fields } = doc;
        await fencedUpdate(ctx.services.notifications.notifications, _id, ctx.epoch, { $set: fields });
        openGroups.push(open!);
        outcome = 'grouped';
      } else {
        seq += 1;
        unread += 1;
        doc = {
          _id: notificationId(ctx.key, seq),
          userId: ctx.key,
          kind: input.kind,
          groupKey: key,
          subjectId: input.subjectId,
          postId: input.postId,
          actorIds: [input.actorId],
          actorCount: 1,
          read: false,
          createdAt: now,
          updatedAt: now,
          epoch: ctx.epoch,
        };
        const { _id, epoch: _e, ...fields } = doc;
        await fencedUpsert(ctx.services.notifications.notifications, _id, ctx.epoch, fields);
        openGroups.push({ key, seq, at: now.getTime() });
        outcome = 'created';
      }
      openGroups = openGroups.slice(-MAX_OPEN);
      ctx.setState({ ...state, seq, unread, open: openGroups, seen: remember(ctx, state.seen, input.eventId), lastTouched: doc._id });
      ctx.afterCommit(() => publish(ctx, doc, unread));
      return { outcome, reason: null };
    },
    retract: async (ctx, { eventId, subjectId }) => {
      const state = ctx.state;
      if (state.seen.includes(eventId)) return { retracted: 0, unread: state.unread };
      const model = ctx.services.notifications.notifications;
      const docs = await model
        .find({ userId: ctx.key, subjectId, retracted: mongoose.trusted({ $ne: true }) }, { read: 1, groupKey: 1 })
        .limit(MAX_RETRACTED)
        .lean<Pick<NotificationDoc, '_id' | 'read' | 'groupKey'>[]>();
      let { unread } = state;
      for (const doc of docs) {
        await fencedUpdate(model, doc._id, ctx.epoch, { $set: { retracted: true, read: true } });
        if (!doc.read) unread = Math.max(0, unread - 1);
      }
      const closed = new Set(docs.map((d) => d.groupKey));
      ctx.setState({ ...state, unread, open: state.open.filter((o) => !closed.has(o.key)), seen: remember(ctx, state.seen, eventId) });
      const ids = docs.map((d) => d._id);
      if (ids.length > 0) {
        ctx.afterCommit(async () => {
          await ctx.services.deliver(ctx.key, 'notifications:retracted', { notificationIds: ids, unread });
        });
      }
      return { retracted: ids.length, unread };
    },
    markRead: async (ctx, { ids }) => {
      const mine = [...new Set(ids)].filter((id) => id.startsWith(`${ctx.key}:`));
      let { unread } = ctx.state;
      const closed = new Set<string>();
      for (const id of mine) {
        const doc = await ctx.services.notifications.notifications.findById(id, { read: 1, groupKey: 1 }).lean<NotificationDoc>();
        if (!doc || doc.read) continue;
        await fencedUpdate(ctx.services.notifications.notifications, id, ctx.epoch, { $set: { read: true } });
        unread = Math.max(0, unread - 1);
        closed.add(doc.groupKey);
      }
      if (closed.size > 0) ctx.setState({ ...ctx.state, unread, open: ctx.state.open.filter((o) => !closed.has(o.key)) });
      return { unread };
    },
    markAllRead: async (ctx) => {
      if (ctx.state.unread === 0 && ctx.state.open.length === 0) return { unread: 0 };
      await ctx.services.notifications.notifications.collection.updateMany(
        { userId: ctx.key, read: false },
        { $set: { read: true, epoch: ctx.epoch } },
      );
      ctx.setState({ ...ctx.state, unread: 0, open: [] });
      return { unread: 0 };
    },
    unread: async (ctx) => ({ unread: ctx.state.unread }),
    preferences: async (ctx) => ({ mutedKinds: ctx.state.mutedKinds }),
    setPreferences: async (ctx, { mutedKinds }) => {
      const next = NOTIFICATION_KINDS.filter((k) => mutedKinds.includes(k));
      ctx.setState({ ...ctx.state, mutedKinds: next });
      return { mutedKinds: next };
    },
  },
});

function remember(ctx: Ctx, seen: string[], eventId: string): string[] {
  return [...seen, eventId].slice(-ctx.services.notifications.settings.seenWindow);
}

/** Whether the recipient blocked or muted the actor, or the actor blocked the recipient. */
async function hidden(ctx: Ctx, actorId: string): Promise<boolean> {
  const ids = [edgeId('block', ctx.key, actorId), edgeId('block', actorId, ctx.key), edgeId('mute', ctx.key, actorId)];
  return (await ctx.services.social.edges.activeIds(ids)).size > 0;
}

/** The notification to the user's personal stream, and to the push outbox if they are offline. */
async function publish(ctx: Ctx, doc: NotificationDoc, unread: number): Promise<void> {
  const profiles = new Map((await ctx.services.social.byIds(ctx.services.social.profiles, shownActors(doc))).map((p) => [p._id, p]));
  const view = notificationView.parse(toNotificationView(doc, profiles));
  await ctx.services.deliver(ctx.key, 'notifications:changed', { notification: view, unread });
  if (await ctx.services.isOnline(ctx.key)) return;
  const now = new Date();
  try {
    await ctx.services.notifications.outbox.collection.insertOne({
      _id: `${doc._id}:${doc.actorCount}:${new Date(doc.updatedAt).getTime()}`,
      userId: ctx.key,
      notificationId: doc._id,
      payload: JSON.stringify(view),
      status: 'pending',
      attempts: 0,
      nextAttemptAt: now,
      lockedUntil: null,
      lastError: null,
      createdAt: now,
      sentAt: null,
    } as never);
  } catch (err) {
    // Redone after a crash: the entry is there already.
    if (!isDuplicateKey(err)) throw err;
  }
}

export function notificationsActor(): NotificationsActorType {
  return NotificationsActor;
}

