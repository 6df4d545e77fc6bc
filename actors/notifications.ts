// NotificationsActor's implementation (interface: actors/contracts/notifications.ts).
// Durable: the inbox bookkeeping (open groups, the exact unread count, muted
// kinds, the ids of events seen) is saved in `actor_states` before every
// reply; the notifications themselves are documents of `notifications` the
// actor writes fenced.
//
// A notify turn writes the notification document first (a new one under the
// next sequence number, so a turn redone after a crash rewrites the same
// document), then the state is saved with its effect: publishing the
// notification to the user's personal stream, and to the push outbox when
// the user is offline. Publishing is idempotent (a client replaces a
// notification by id; the outbox id names the version), so redoing it after
// a crash is harmless.
import mongoose from 'mongoose';
import { z } from 'zod';
import { fencedUpdate, fencedUpdateMany, fencedUpsert } from '../kernel/fenced.ts';
import { edgeId } from '../models/edge.ts';
import { MAX_ACTORS_KEPT, notificationId, type NotificationDoc } from '../models/notification.ts';
import { groupKey, NOTIFICATION_KINDS } from '../notifications/kinds.ts';
import { notificationView, shownActors, toNotificationView } from '../notifications/views.ts';
import { notificationKind } from '../notifications/kinds.ts';
import { NotificationsActor } from './contracts/notifications.ts';
import { implementActor, type ActorContext } from './define.ts';

/** Open groups remembered; the oldest closes first when there are more. */
const MAX_OPEN = 500;
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
  /** Before 0.2.0: the last notification written, published again at every activation (effects carry it now). Read for one release. */
  lastTouched: z.string().nullable().optional(),
});
type State = z.output<typeof notificationsState>;

const notificationsEffect = z.discriminatedUnion('kind', [
  /** The notification (as stored now) to the stream and, for an offline user, the push outbox. */
  z.object({ kind: z.literal('publish'), notificationId: z.string(), unread: z.number().int() }),
  z.object({ kind: z.literal('retracted'), notificationIds: z.array(z.string()), unread: z.number().int() }),
]);
type Effect = z.output<typeof notificationsEffect>;
type Ctx = ActorContext<State, Effect>;

export const notificationsActor = implementActor(NotificationsActor, {
  state: notificationsState,
  initialState: (): State => ({ seq: 0, unread: 0, open: [], seen: [], mutedKinds: [] }),
  persistence: { kind: 'durable' },
  effects: { schema: notificationsEffect, run: runEffect },
  onActivate: async (ctx) => {
    const { lastTouched, ...state } = ctx.state;
    if (lastTouched === undefined) return;
    // State of 0.1: its last notification may not have been published before a crash; publishing again is harmless.
    ctx.setState(state);
    if (lastTouched !== null) ctx.effect({ kind: 'publish', notificationId: lastTouched, unread: state.unread });
  },
  handlers: {
    notify: async (ctx, input) => {
      const state = ctx.state;
      const skip = (reason: string) => {
        ctx.setState({ ...state, seen: remember(ctx, state.seen, input.eventId) });
        return { outcome: 'skipped' as const, reason };
      };
      if (state.seen.includes(input.eventId)) return { outcome: 'skipped' as const, reason: 'duplicate' };
      if (input.actorId === ctx.key) return skip('own action');
      if (state.mutedKinds.includes(input.kind)) return skip('kind muted');
      if (await hidden(ctx, input.actorId)) return skip('blocked or muted');

      const { groupWindowMs } = ctx.services.notifications.settings;
      const model = ctx.services.notifications.notifications;
      const now = new Date();
      const key = groupKey(input.kind, input.subjectId, input.eventId);
      const open = state.open.find((o) => o.key === key && o.at > now.getTime() - groupWindowMs);
      const existing = open ? await model.findById(notificationId(ctx.key, open.seq)).lean<NotificationDoc>() : null;
      let id: string;
      let outcome: 'created' | 'grouped';
      let { seq, unread } = state;
      const openGroups = state.open.filter((o) => o.key !== key);
      if (open && existing && !existing.read) {
        const known = existing.actorIds.includes(input.actorId);
        id = existing._id;
        await fencedUpdate(model, id, ctx.epoch, {
          postId: input.postId ?? existing.postId,
          actorIds: [input.actorId, ...existing.actorIds.filter((a) => a !== input.actorId)].slice(0, MAX_ACTORS_KEPT),
          actorCount: existing.actorCount + (known ? 0 : 1),
          updatedAt: now,
        });
        openGroups.push(open);
        outcome = 'grouped';
      } else {
        seq += 1;
        unread += 1;
        id = notificationId(ctx.key, seq);
        await fencedUpsert(model, id, ctx.epoch, {
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
        });
        openGroups.push({ key, seq, at: now.getTime() });
        outcome = 'created';
      }
      ctx.setState({ ...state, seq, unread, open: openGroups.slice(-MAX_OPEN), seen: remember(ctx, state.seen, input.eventId) });
      ctx.effect({ kind: 'publish', notificationId: id, unread });
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
        await fencedUpdate(model, doc._id, ctx.epoch, { retracted: true, read: true });
        if (!doc.read) unread = Math.max(0, unread - 1);
      }
      const closed = new Set(docs.map((d) => d.groupKey));
      ctx.setState({ ...state, unread, open: state.open.filter((o) => !closed.has(o.key)), seen: remember(ctx, state.seen, eventId) });
      const ids = docs.map((d) => d._id);
      if (ids.length > 0) ctx.effect({ kind: 'retracted', notificationIds: ids, unread });
      return { retracted: ids.length, unread };
    },
    markRead: async (ctx, { ids }) => {
      const model = ctx.services.notifications.notifications;
      const mine = [...new Set(ids)].filter((id) => id.startsWith(`${ctx.key}:`));
      let { unread } = ctx.state;
      const closed = new Set<string>();
      for (const id of mine) {
        const doc = await model.findById(id, { read: 1, groupKey: 1 }).lean<NotificationDoc>();
        if (!doc || doc.read) continue;
        await fencedUpdate(model, id, ctx.epoch, { read: true });
        unread = Math.max(0, unread - 1);
        closed.add(doc.groupKey);
      }
      if (closed.size > 0) ctx.setState({ ...ctx.state, unread, open: ctx.state.open.filter((o) => !closed.has(o.key)) });
      return { unread };
    },
    markAllRead: async (ctx) => {
      if (ctx.state.unread === 0 && ctx.state.open.length === 0) return { unread: 0 };
      await fencedUpdateMany(ctx.services.notifications.notifications, { userId: ctx.key, read: false }, ctx.epoch, { read: true });
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

async function runEffect(ctx: Ctx, effect: Effect): Promise<void> {
  if (effect.kind === 'retracted') {
    await ctx.services.deliver(ctx.key, 'notifications:retracted', { notificationIds: effect.notificationIds, unread: effect.unread });
    return;
  }
  const doc = await ctx.services.notifications.notifications.findById(effect.notificationId).lean<NotificationDoc>();
  if (doc) await publish(ctx, doc, effect.unread);
}

/** The notification to the user's personal stream, and to the push outbox if they are offline. */
async function publish(ctx: Ctx, doc: NotificationDoc, unread: number): Promise<void> {
  const profiles = new Map((await ctx.services.social.byIds(ctx.services.social.profiles, shownActors(doc))).map((p) => [p._id, p]));
  const view = notificationView.parse(toNotificationView(doc, profiles));
  await ctx.services.deliver(ctx.key, 'notifications:changed', { notification: view, unread });
  if (await ctx.services.isOnline(ctx.key)) return;
  const now = new Date();
  await ctx.services.notifications.queuePush({
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
  });
}
