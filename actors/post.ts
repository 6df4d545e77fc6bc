// PostActor: one per post (key = post id). It owns the post document
// (models/post.ts) and the edges that point at the post (likes, and the
// replies, quotes and reposts it counts), so every change to a post and its
// counts happens in one turn at a time: counts are exact under any
// concurrency, across nodes.
//
// The actor keeps no runtime state: the post document is its state, written
// with fenced updates (epoch <= this activation's). A turn that changes counts
// writes the document first, with the effects still to do in `pending`, and
// then does them: the edge write, the link/unlink in the post this one points
// at, the domain event. onActivate redoes the pending effects of the last
// change, so a crash between the two leaves nothing half done. Every effect is
// idempotent. Asks only go from a post to an older one (the one it replies
// to, quotes or reposts), so they never form a cycle.
import { z } from 'zod';
import { FlockError, isFlockError } from '../kernel/errors.ts';
import type { EdgeKind, EdgeStatus } from '../models/edge.ts';
import { POST_KINDS, VISIBILITIES, type PostDoc, type PostPendingOp } from '../models/post.ts';
import { fencedInsert, fencedUpdate } from '../kernel/fenced.ts';
import { defineActor, type ActorContext, type ActorType } from './define.ts';
import { userIdInput } from '../kernel/ids.ts';
import { postIdInput } from '../kernel/ids.ts';

/** Edits kept per post; further edits are refused. */
export const MAX_EDITS = 20;

const CHILD_KINDS = ['reply', 'quote', 'repost'] as const;
type ChildKind = (typeof CHILD_KINDS)[number];
const COUNTER: Record<ChildKind | 'like', 'replies' | 'quotes' | 'reposts' | 'likes'> = { reply: 'replies', quote: 'quotes', repost: 'reposts', like: 'likes' };

const postState = z.object({});

const createInput = z.object({
  authorId: userIdInput,
  kind: z.enum(POST_KINDS),
  text: z.string().max(10_000),
  mediaIds: z.array(z.string()).max(10),
  visibility: z.enum(VISIBILITIES),
  parentId: postIdInput.nullable(),
  rootId: postIdInput.nullable(),
  quoteOf: postIdInput.nullable(),
  repostOf: postIdInput.nullable(),
  hashtags: z.array(z.string()).max(20),
  mentions: z.array(z.string()).max(20),
});

const postMessages = {
  /** Creates the post; idempotent (a repeat returns created: false). A deleted repost is revived. */
  create: { input: createInput, output: z.object({ created: z.boolean() }) },
  /** A child (reply, quote, repost) now points at this post. Idempotent. */
  link: { input: z.object({ childId: postIdInput, kind: z.enum(CHILD_KINDS) }), output: z.object({ changed: z.boolean() }) },
  /** A child stopped pointing at this post (deleted). Idempotent. */
  unlink: { input: z.object({ childId: postIdInput, kind: z.enum(CHILD_KINDS) }), output: z.object({ changed: z.boolean() }) },
  like: { input: z.object({ userId: userIdInput }), output: z.object({ liked: z.boolean(), likes: z.number().int() }) },
  unlike: { input: z.object({ userId: userIdInput }), output: z.object({ liked: z.boolean(), likes: z.number().int() }) },
  edit: {
    input: z.object({ userId: userIdInput, text: z.string().max(10_000), hashtags: z.array(z.string()).max(20), mentions: z.array(z.string()).max(20) }),
    output: z.object({ edits: z.number().int() }),
  },
  /** By the author (userId), or a moderator's removal (reason given). */
  delete: { input: z.object({ userId: userIdInput, moderatorReason: z.string().min(1).max(500).optional() }), output: z.object({ changed: z.boolean() }) },
};

type PostActorType = ActorType<typeof postState, typeof postMessages>;
type Ctx = ActorContext<z.output<typeof postState>>;

export const PostActor: PostActorType = defineActor({
  type: 'post',
  state: postState,
  initialState: () => ({}),
  persistence: { kind: 'durable' },
  onActivate: async (ctx) => {
    const doc = await load(ctx);
    if (doc && doc.pending.length > 0) await runPending(ctx, doc, doc.pending);
  },
  messages: postMessages,
  handlers: {
    create: async (ctx, input) => {
      const doc = await load(ctx);
      if (doc) {
        if (doc.authorId !== input.authorId || doc.kind !== input.kind) throw new FlockError('POST_DUPLICATE_KEY');
        if (!doc.deleted) return { created: false };
        if (doc.kind !== 'repost' || doc.removal) throw new FlockError('POST_NOT_FOUND');
        // Undo of an undone repost: the same document comes back.
        const pending = childOps('link', doc);
        const createdAt = new Date();
        const next = { ...doc, deleted: false, deletedAt: null, createdAt, pending };
        await write(ctx, { $set: { deleted: false, deletedAt: null, createdAt, pending } }, next);
        await runPending(ctx, next, pending);
        return { created: true };
      }
      const now = new Date();
      const fresh: Omit<PostDoc, 'epoch'> = {
        _id: ctx.key,
        ...input,
        likes: 0,
        replies: 0,
        reposts: 0,
        quotes: 0,
        edits: [],
        createdAt: now,
        editedAt: null,
        deleted: false,
        deletedAt: null,
        removal: null,
        pending: [],
      };
      const pending = [...childOps('link', fresh), { op: 'emit', kind: 'posts:created', ref: '', status: '' }] satisfies PostPendingOp[];
      await fencedInsert(ctx.services.social.posts, { ...fresh, pending }, ctx.epoch);
      const created = { ...fresh, pending, epoch: ctx.epoch };
      cache.set(ctx, created);
      await runPending(ctx, created, pending);
      return { created: true };
    },
    link: async (ctx, { childId, kind }) => {
      const doc = await live(ctx);
      return { changed: await setEdge(ctx, doc, kind, childId, 'active') };
    },
    unlink: async (ctx, { childId, kind }) => {
      const doc = await load(ctx);
      if (!doc) return { changed: false };
      return { changed: await setEdge(ctx, doc, kind, childId, 'none') };
    },
    like: async (ctx, { userId }) => {
      const doc = await live(ctx);
      const changed = await setEdge(ctx, doc, 'like', userId, 'active');
      if (changed && userId !== doc.authorId) await ctx.services.social.events.emit('posts:liked', `like:${ctx.key}:${userId}:${ctx.epoch}:${Date.now()}`, { postId: ctx.key, authorId: doc.authorId, userId });
      return { liked: true, likes: doc.likes + (changed ? 1 : 0) };
    },
    unlike: async (ctx, { userId }) => {
      const doc = await live(ctx);
      const changed = await setEdge(ctx, doc, 'like', userId, 'none');
      return { liked: false, likes: doc.likes - (changed ? 1 : 0) };
    },
    edit: async (ctx, { userId, text, hashtags, mentions }) => {
      const doc = await live(ctx);
      if (doc.authorId !== userId) throw new FlockError('POST_FORBIDDEN');
      if (doc.kind === 'repost') throw new FlockError('POST_NOT_EDITABLE', 'reposts have no text to edit');
      if (doc.edits.length >= MAX_EDITS) throw new FlockError('POST_NOT_EDITABLE', `a post keeps at most ${MAX_EDITS} edits`);
      if (doc.text === text) return { edits: doc.edits.length };
      const now = new Date();
      const pending: PostPendingOp[] = [{ op: 'emit', kind: 'posts:edited', ref: '', status: '' }];
      const next = { ...doc, text, hashtags, mentions, editedAt: now, pending, edits: [...doc.edits, { text: doc.text, editedAt: now }] };
      await write(ctx, { $set: { text, hashtags, mentions, editedAt: now, pending }, $push: { edits: { text: doc.text, editedAt: now } } }, next);
      await runPending(ctx, next, pending);
      return { edits: doc.edits.length + 1 };
    },
    delete: async (ctx, { userId, moderatorReason }) => {
      const doc = await load(ctx);
      if (!doc || doc.deleted) return { changed: false };
      if (moderatorReason === undefined && doc.authorId !== userId) throw new FlockError('POST_FORBIDDEN');
      const removal = moderatorReason === undefined ? null : { by: userId, reason: moderatorReason };
      const pending: PostPendingOp[] = [...childOps('unlink', doc), { op: 'emit', kind: 'posts:deleted', ref: '', status: '' }];
      const deletedAt = new Date();
      const next = { ...doc, deleted: true, deletedAt, removal, pending };
      await write(ctx, { $set: { deleted: true, deletedAt, removal, pending } }, next);
      await runPending(ctx, next, pending);
      return { changed: true };
    },
  },
});

function self(): PostActorType {
  return PostActor;
}

/**
 * The post document as this activation last wrote it. Only the current
 * activation writes it (fenced), so after the first read the copy in memory
 * is the stored one, and a hot post's turns skip a read each.
 */
const cache = new WeakMap<Ctx, PostDoc | null>();

async function load(ctx: Ctx): Promise<PostDoc | null> {
  if (cache.has(ctx)) return cache.get(ctx)!;
  const doc = await ctx.services.social.posts.findById(ctx.key).lean<PostDoc>();
  cache.set(ctx, doc);
  return doc;
}

async function live(ctx: Ctx): Promise<PostDoc> {
  const doc = await load(ctx);
  if (!doc || doc.deleted) throw new FlockError('POST_NOT_FOUND');
  return doc;
}

/** Applies `update` to the stored document; `next` is the document it makes. */
async function write(ctx: Ctx, update: Record<string, unknown>, next: PostDoc): Promise<void> {
  cache.delete(ctx);
  if (!(await fencedUpdate(ctx.services.social.posts, ctx.key, ctx.epoch, update))) throw new FlockError('POST_NOT_FOUND');
  cache.set(ctx, { ...next, epoch: ctx.epoch });
}

/** The link/unlink ops of a post towards the post it replies to, quotes or reposts. */
function childOps(op: 'link' | 'unlink', doc: Pick<PostDoc, 'kind' | 'parentId' | 'quoteOf' | 'repostOf'>): PostPendingOp[] {
  const target = doc.kind === 'reply' ? doc.parentId : doc.kind === 'quote' ? doc.quoteOf : doc.kind === 'repost' ? doc.repostOf : null;
  return target ? [{ op, kind: doc.kind, ref: target, status: '' }] : [];
}

/**
 * Moves one of this post's own edges to `status`, adjusting its counter in the
 * same document write that records the edge write as pending. False if the
 * edge already had that status.
 */
async function setEdge(ctx: Ctx, doc: PostDoc, kind: ChildKind | 'like', member: string, status: EdgeStatus): Promise<boolean> {
  const social = ctx.services.social;
  const current = await social.edges.status(kind, ctx.key, member);
  if ((current === 'active') === (status === 'active')) {
    // Already so; still finish an edge write a crash may have left undone.
    if (current !== status) await social.edges.apply([{ kind, owner: ctx.key, member, status }], ctx.epoch);
    return false;
  }
  const pending: PostPendingOp[] = [{ op: 'edge', kind, ref: member, status }];
  const counter = COUNTER[kind];
  const next = { ...doc, [counter]: doc[counter] + (status === 'active' ? 1 : -1), pending };
  await write(ctx, { $inc: { [counter]: status === 'active' ? 1 : -1 }, $set: { pending } }, next);
  await runPending(ctx, next, pending);
  return true;
}

/** Does a change's effects, in order; each is idempotent. */
async function runPending(ctx: Ctx, doc: PostDoc, ops: readonly PostPendingOp[]): Promise<void> {
  const social = ctx.services.social;
  for (const op of ops) {
    if (op.op === 'edge') {
      await social.edges.apply([{ kind: op.kind as EdgeKind, owner: ctx.key, member: op.ref, status: op.status as EdgeStatus }], ctx.epoch);
    } else if (op.op === 'link' || op.op === 'unlink') {
      try {
        await ctx.ask(self(), op.ref, op.op, { childId: ctx.key, kind: op.kind as ChildKind });
      } catch (err) {
        // The post this one points at is gone: so is this reply, quote or repost.
        if (!(isFlockError(err) && err.code === 'POST_NOT_FOUND' && op.op === 'link')) throw err;
        const deletedAt = new Date();
        await write(ctx, { $set: { deleted: true, deletedAt, pending: [] } }, { ...doc, deleted: true, deletedAt, pending: [] });
        throw err;
      }
    } else {
      await emit(ctx, doc, op.kind);
    }
  }
}

async function emit(ctx: Ctx, doc: PostDoc, type: string): Promise<void> {
  const events = ctx.services.social.events;
  const base = { postId: doc._id, authorId: doc.authorId };
  if (type === 'posts:created') {
    await events.emit('posts:created', `posts:created:${doc._id}`, {
      ...base,
      kind: doc.kind,
      parentId: doc.parentId,
      quoteOf: doc.quoteOf,
      repostOf: doc.repostOf,
      mentions: doc.mentions,
      hashtags: doc.hashtags,
      visibility: doc.visibility,
    });
    if (doc.visibility === 'public') await ctx.services.social.trending.record(doc.authorId, doc.hashtags, doc.createdAt.getTime());
  } else if (type === 'posts:edited') {
    await events.emit('posts:edited', `posts:edited:${doc._id}:${doc.edits.length}`, { ...base, mentions: doc.mentions, hashtags: doc.hashtags });
  } else if (type === 'posts:deleted') {
    await events.emit('posts:deleted', `posts:deleted:${doc._id}`, { ...base, removedBy: doc.removal?.by ?? null });
  }
}
