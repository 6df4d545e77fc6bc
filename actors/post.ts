// PostActor's implementation (interface: actors/contracts/post.ts). The post
// document is the actor's state (document persistence in `posts`): claimed
// for the activation's epoch when it activates, saved fenced before every
// reply, null until the post is created.
//
// A change to the post and its counters is one document write that also
// records what must follow it (effects): the write of the post's own edge
// (like, reply, quote, repost), the link or unlink in the post this one
// replies to, quotes or reposts, the domain event, the trending count. They
// run after the write, before the reply, and again at the next activation if
// a crash may have cut them short; each is idempotent. Asks only go from a
// post to an older one (the one it replies to, quotes or reposts), so they
// never form a cycle. A reply whose parent turned out to be gone compensates:
// it marks itself deleted and the create fails with POST_NOT_FOUND.
import { z } from 'zod';
import { domainEventSchema, domainEvent, type DomainEventData, type DomainEventType } from '../events/domain.ts';
import { FlockError, isFlockError } from '../kernel/errors.ts';
import { postIdInput } from '../kernel/ids.ts';
import { EDGE_STATUSES, type EdgeStatus } from '../models/edge.ts';
import { postFields, type PostFields } from '../models/post.ts';
import { MediaActor } from './contracts/media.ts';
import { CHILD_KINDS, MAX_EDITS, PostActor, type ChildKind } from './contracts/post.ts';
import { implementActor, type ActorContext } from './define.ts';

const COUNTER = { reply: 'replies', quote: 'quotes', repost: 'reposts', like: 'likes' } as const satisfies Record<ChildKind | 'like', keyof PostFields>;

const postEffect = z.discriminatedUnion('kind', [
  /** This post's own edge (kind, post, member) gets `status`. */
  z.object({ kind: z.literal('edge'), edge: z.enum(['like', ...CHILD_KINDS]), member: z.string(), status: z.enum(EDGE_STATUSES) }),
  /** Tell the post this one points at that it is (or is no longer) its child. */
  z.object({ kind: z.enum(['link', 'unlink']), childKind: z.enum(CHILD_KINDS), target: postIdInput }),
  z.object({ kind: z.literal('event'), event: domainEventSchema }),
  z.object({ kind: z.literal('trending'), authorId: z.string(), hashtags: z.array(z.string()), at: z.number().int() }),
  /** The deleted post's media go with it (their files are purged). */
  z.object({ kind: z.literal('removeMedia'), authorId: z.string(), mediaIds: z.array(z.string()) }),
]);
type PostEffect = z.output<typeof postEffect>;
type State = PostFields | null;
type Ctx = ActorContext<State, PostEffect>;

export const postActor = implementActor(PostActor, {
  state: postFields.nullable(),
  initialState: (): State => null,
  persistence: { kind: 'document', collection: 'posts' },
  effects: { schema: postEffect, run: runEffect, upgrade: upgradeLegacy },
  handlers: {
    create: async (ctx, input) => {
      const doc = ctx.state;
      const now = new Date();
      if (doc) {
        if (doc.authorId !== input.authorId || doc.kind !== input.kind) throw new FlockError('POST_DUPLICATE_KEY');
        if (!doc.deleted) return { created: false };
        if (doc.kind !== 'repost' || doc.removal) throw new FlockError('POST_NOT_FOUND');
        // Undo of an undone repost: the same document comes back, linked again; no new event (as in 0.1).
        const revived = { ...doc, deleted: false, deletedAt: null, createdAt: now };
        ctx.setState(revived);
        childLinks(ctx, 'link', revived);
        return { created: true };
      }
      const { authorId, kind, text, mediaIds, visibility, parentId, rootId, quoteOf, repostOf, hashtags, mentions } = input;
      const fresh: PostFields = {
        ...{ authorId, kind, text, mediaIds, visibility, parentId, rootId, quoteOf, repostOf, hashtags, mentions },
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
      };
      ctx.setState(fresh);
      created(ctx, fresh);
      return { created: true };
    },
    link: async (ctx, { childId, kind }) => ({ changed: await setEdge(ctx, live(ctx), kind, childId, 'active') }),
    unlink: async (ctx, { childId, kind }) => {
      const doc = ctx.state;
      if (!doc) return { changed: false };
      return { changed: await setEdge(ctx, doc, kind, childId, 'none') };
    },
    like: async (ctx, { userId }) => {
      const doc = live(ctx);
      const changed = await setEdge(ctx, doc, 'like', userId, 'active');
      if (changed && userId !== doc.authorId)
        emit(ctx, 'posts:liked', `posts:liked:${ctx.key}:${userId}:${ctx.nextVersion}`, { postId: ctx.key, authorId: doc.authorId, userId });
      return { liked: true, likes: doc.likes + (changed ? 1 : 0) };
    },
    unlike: async (ctx, { userId }) => {
      const doc = live(ctx);
      const changed = await setEdge(ctx, doc, 'like', userId, 'none');
      return { liked: false, likes: doc.likes - (changed ? 1 : 0) };
    },
    edit: async (ctx, { userId, text, hashtags, mentions }) => {
      const doc = live(ctx);
      if (doc.authorId !== userId) throw new FlockError('POST_FORBIDDEN');
      if (doc.kind === 'repost') throw new FlockError('POST_NOT_EDITABLE', 'reposts have no text to edit');
      if (doc.edits.length >= MAX_EDITS) throw new FlockError('POST_NOT_EDITABLE', `a post keeps at most ${MAX_EDITS} edits`);
      if (doc.text === text) return { edits: doc.edits.length };
      const now = new Date();
      const edits = [...doc.edits, { text: doc.text, editedAt: now }];
      ctx.setState({ ...doc, text, hashtags, mentions, editedAt: now, edits });
      emit(ctx, 'posts:edited', `posts:edited:${ctx.key}:${edits.length}`, { postId: ctx.key, authorId: doc.authorId, mentions, hashtags });
      return { edits: edits.length };
    },
    delete: async (ctx, { userId, moderatorReason }) => {
      const doc = ctx.state;
      if (!doc || doc.deleted) return { changed: false };
      if (moderatorReason === undefined && doc.authorId !== userId) throw new FlockError('POST_FORBIDDEN');
      const removal = moderatorReason === undefined ? null : { by: userId, reason: moderatorReason };
      ctx.setState({ ...doc, deleted: true, deletedAt: new Date(), removal });
      childLinks(ctx, 'unlink', doc);
      if (doc.mediaIds.length > 0) ctx.effect({ kind: 'removeMedia', authorId: doc.authorId, mediaIds: doc.mediaIds });
      emit(ctx, 'posts:deleted', `posts:deleted:${ctx.key}:${ctx.nextVersion}`, { postId: ctx.key, authorId: doc.authorId, removedBy: removal?.by ?? null });
      return { changed: true };
    },
  },
});

/** The post, if it exists and is not deleted; POST_NOT_FOUND otherwise. */
function live(ctx: Ctx): PostFields {
  const doc = ctx.state;
  if (!doc || doc.deleted) throw new FlockError('POST_NOT_FOUND');
  return doc;
}

/** What follows a post's (re)creation: the link in its target, its domain event, its hashtags' trend. */
function created(ctx: Ctx, doc: PostFields): void {
  childLinks(ctx, 'link', doc);
  const { authorId, kind, parentId, quoteOf, repostOf, mentions, hashtags, visibility } = doc;
  emit(ctx, 'posts:created', `posts:created:${ctx.key}:${ctx.nextVersion}`, {
    postId: ctx.key,
    authorId,
    kind,
    parentId,
    quoteOf,
    repostOf,
    mentions,
    hashtags,
    visibility,
  });
  if (visibility === 'public' && hashtags.length > 0) ctx.effect({ kind: 'trending', authorId, hashtags, at: doc.createdAt.getTime() });
}

/** The link or unlink of a post in the post it replies to, quotes or reposts. */
function childLinks(ctx: Ctx, kind: 'link' | 'unlink', doc: Pick<PostFields, 'kind' | 'parentId' | 'quoteOf' | 'repostOf'>): void {
  const target = doc.kind === 'reply' ? doc.parentId : doc.kind === 'quote' ? doc.quoteOf : doc.kind === 'repost' ? doc.repostOf : null;
  if (target && doc.kind !== 'post') ctx.effect({ kind, childKind: doc.kind, target });
}

function emit<T extends DomainEventType>(ctx: Ctx, type: T, id: string, data: DomainEventData<T>): void {
  ctx.effect({ kind: 'event', event: domainEvent(type, id, data) });
}

/**
 * Moves one of this post's own edges to `status`, adjusting its counter in the
 * state this turn saves and recording the edge write as an effect. False if
 * the edge already had that status.
 */
async function setEdge(ctx: Ctx, doc: PostFields, kind: ChildKind | 'like', member: string, status: EdgeStatus): Promise<boolean> {
  const current = await ctx.services.social.edges.status(kind, ctx.key, member);
  if ((current === 'active') === (status === 'active')) return false;
  const counter = COUNTER[kind];
  ctx.setState({ ...doc, [counter]: doc[counter] + (status === 'active' ? 1 : -1) });
  ctx.effect({ kind: 'edge', edge: kind, member, status });
  return true;
}

async function runEffect(ctx: Ctx, effect: PostEffect): Promise<void> {
  const social = ctx.services.social;
  switch (effect.kind) {
    case 'edge':
      await social.edges.apply([{ kind: effect.edge, owner: ctx.key, member: effect.member, status: effect.status }], ctx.epoch);
      return;
    case 'link':
    case 'unlink':
      try {
        await ctx.ask(PostActor, effect.target, effect.kind, { childId: ctx.key, kind: effect.childKind });
      } catch (err) {
        // The post this one points at is gone: so is this reply, quote or repost.
        const doc = ctx.state;
        if (effect.kind === 'link' && doc && isFlockError(err) && err.code === 'POST_NOT_FOUND') ctx.setState({ ...doc, deleted: true, deletedAt: new Date() });
        throw err;
      }
      return;
    case 'event':
      await social.events.append(effect.event);
      return;
    case 'trending':
      await social.trending.record(effect.authorId, effect.hashtags, effect.at);
      return;
    case 'removeMedia':
      for (const mediaId of effect.mediaIds) {
        try {
          await ctx.ask(MediaActor, mediaId, 'remove', { userId: effect.authorId });
        } catch (err) {
          if (!(isFlockError(err) && err.code === 'MEDIA_NOT_FOUND')) throw err; // already gone, or never the author's
        }
      }
      return;
  }
}

/** Effects stored before 0.2.0: `{ op, kind, ref, status }` objects. */
function upgradeLegacy(stored: unknown): z.input<typeof postEffect> | undefined {
  const legacy = z.object({ op: z.enum(['edge', 'link', 'unlink', 'emit']), kind: z.string(), ref: z.string(), status: z.string() }).safeParse(stored);
  if (!legacy.success) return undefined;
  const { op, kind, ref, status } = legacy.data;
  if (op === 'edge') return { kind: 'edge', edge: z.enum(['like', ...CHILD_KINDS]).parse(kind), member: ref, status: z.enum(EDGE_STATUSES).parse(status) };
  if (op === 'link' || op === 'unlink') return { kind: op, childKind: z.enum(CHILD_KINDS).parse(kind), target: ref };
  // A domain event of the old format: its consumers have handled it, or will drop it for its old id.
  return undefined;
}
