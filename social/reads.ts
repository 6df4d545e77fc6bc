// The read paths of the social core: hydrated posts with the viewer's own
// state, threads, profile and hashtag pages, graph lists and relationships.
// Every path applies the same rules (social/audience below): nobody sees a
// blocked pair's content in either direction, followers-only posts and
// private accounts' posts reach approved followers only, deleted posts reach
// nobody, and muted authors drop out of hashtag pages.
import mongoose from 'mongoose';
import { edgeId } from '../models/edge.ts';
import type { PostDoc } from '../models/post.ts';
import type { ProfileDoc } from '../models/profile.ts';
import { FlockError } from '../kernel/errors.ts';
import { decodeCursor, encodeCursor } from '../kernel/cursor.ts';
import { repostId } from './ids.ts';
import type { Relations, SocialStore } from './store.ts';
import type { PostCore, PostView, UserSummary } from './views.ts';

/** Documents scanned per page at most, as multiples of the page size, before a short page is returned. */
const SCAN_ROUNDS = 5;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export class SocialReads {
  constructor(readonly store: SocialStore) {}

  /** Whether `viewer` may see `doc` (not its quoted/reposted original). */
  private visible(viewerId: string, doc: PostDoc, rel: Relations): boolean {
    if (doc.deleted) return false;
    if (doc.authorId === viewerId) return true;
    if (rel.blocked.has(doc.authorId)) return false;
    const author = rel.profiles.get(doc.authorId);
    if (!author) return false;
    if (doc.visibility === 'followers' || author.private) return rel.following.has(doc.authorId);
    return true;
  }

  /**
   * Hydrates posts for a viewer; posts the viewer may not see are left out.
   * `viewerState: false` skips the viewer's likes and reposts (all false): for
   * a post that was just created, where looking them up only costs.
   */
  async views(viewerId: string, docs: PostDoc[], rel?: Relations, options: { viewerState?: boolean } = {}): Promise<PostView[]> {
    const originalIds = [...new Set(docs.map((d) => d.quoteOf ?? d.repostOf).filter((id): id is string => id !== null))];
    const originals = await this.store.byIds<PostDoc>(this.store.posts, originalIds);
    const byId = new Map(originals.map((d) => [d._id, d]));
    const authors = [...docs, ...originals].map((d) => d.authorId);
    // A map passed in covers the page's authors; the authors of what they quote or repost are added to it.
    rel = await this.store.relations(viewerId, authors, rel);

    const shown = docs.filter((d) => this.visible(viewerId, d, rel));
    const cores = [...shown, ...originals.filter((d) => this.visible(viewerId, d, rel))];
    const withState = options.viewerState !== false;
    const [liked, reposted] = await Promise.all([
      withState ? this.store.edges.activeIds(cores.map((d) => edgeId('like', d._id, viewerId))) : new Set<string>(),
      withState
        ? this.store.byIds<PostDoc>(
            this.store.posts,
            cores.map((d) => repostId(viewerId, d._id)),
            { repostOf: 1, deleted: 1 },
          )
        : [],
    ]);
    const repostedIds = new Set(reposted.filter((r) => !r.deleted).map((r) => r.repostOf));
    const core = (d: PostDoc): PostCore => ({
      postId: d._id,
      kind: d.kind,
      author: summary(rel.profiles.get(d.authorId)!),
      text: d.text,
      mediaIds: d.mediaIds,
      visibility: d.visibility,
      parentId: d.parentId,
      rootId: d.rootId,
      quoteOf: d.quoteOf,
      repostOf: d.repostOf,
      hashtags: d.hashtags,
      mentions: d.mentions,
      counts: { likes: d.likes, replies: d.replies, reposts: d.reposts, quotes: d.quotes },
      createdAt: d.createdAt.getTime(),
      editedAt: d.editedAt?.getTime() ?? null,
      edits: d.edits.length,
      viewer: { liked: liked.has(edgeId('like', d._id, viewerId)), reposted: repostedIds.has(d._id) },
    });
    return shown.map((d) => {
      const originalId = d.quoteOf ?? d.repostOf;
      const original = originalId ? byId.get(originalId) : undefined;
      const originalVisible = original !== undefined && this.visible(viewerId, original, rel);
      return { ...core(d), original: originalVisible ? core(original) : null, originalUnavailable: originalId !== null && !originalVisible };
    });
  }

  /** One post, or POST_NOT_FOUND when it does not exist, is deleted or is hidden from the viewer. */
  async post(viewerId: string, postId: string): Promise<PostView> {
    const doc = await this.store.posts.findById(postId).lean<PostDoc>();
    const [view] = doc ? await this.views(viewerId, [doc]) : [];
    if (!view) throw new FlockError('POST_NOT_FOUND');
    return view;
  }

  /** The raw document of a post the viewer may see (for writes that act on it). */
  async visibleDoc(viewerId: string, postId: string): Promise<PostDoc> {
    const doc = await this.store.posts.findById(postId).lean<PostDoc>();
    if (!doc) throw new FlockError('POST_NOT_FOUND');
    const rel = await this.store.relations(viewerId, [doc.authorId]);
    if (!this.visible(viewerId, doc, rel)) throw new FlockError('POST_NOT_FOUND');
    return doc;
  }

  /** A post with up to `maxAncestors` visible ancestors (root first) and a page of its direct replies, oldest first. */
  async thread(viewerId: string, postId: string, options: { cursor?: string; limit: number; maxAncestors?: number }) {
    const post = await this.post(viewerId, postId);
    const ancestorDocs: PostDoc[] = [];
    let parentId = post.parentId;
    while (parentId && ancestorDocs.length < (options.maxAncestors ?? 20)) {
      const parent = await this.store.posts.findById(parentId).lean<PostDoc>();
      if (!parent) break;
      ancestorDocs.unshift(parent);
      parentId = parent.parentId;
    }
    const ancestors = await this.views(viewerId, ancestorDocs);
    const replies = await this.scan(viewerId, { parentId: postId, deleted: false }, 1, options, () => true);
    return { post, ancestors, replies };
  }

  /** A profile's posts, newest first (replies only when asked). */
  async userPosts(viewerId: string, userId: string, options: { cursor?: string; limit: number; includeReplies: boolean }): Promise<Page<PostView>> {
    await this.requireProfileAccess(viewerId, userId);
    const filter: Record<string, unknown> = { authorId: userId, deleted: false };
    if (!options.includeReplies) filter.kind = mongoose.trusted({ $ne: 'reply' });
    return this.scan(viewerId, filter, -1, options, () => true);
  }

  /** Posts with a hashtag, newest first, without muted authors. */
  async hashtag(viewerId: string, tag: string, options: { cursor?: string; limit: number }): Promise<Page<PostView>> {
    return this.scan(viewerId, { hashtags: tag, deleted: false }, -1, options, (d, rel) => !rel.muted.has(d.authorId));
  }

  /**
   * Pages through posts matching `filter` in (createdAt, _id) order, keeping
   * those the viewer may see; scans at most SCAN_ROUNDS pages' worth of
   * documents, so a page may be short yet have a next cursor.
   */
  private async scan(
    viewerId: string,
    filter: Record<string, unknown>,
    direction: 1 | -1,
    options: { cursor?: string; limit: number },
    keep: (doc: PostDoc, rel: Relations) => boolean,
  ): Promise<Page<PostView>> {
    let after = decodeCursor(options.cursor);
    const out: PostView[] = [];
    const op = direction === -1 ? '$lt' : '$gt';
    for (let round = 0; round < SCAN_ROUNDS; round++) {
      const query: Record<string, unknown> = { ...filter };
      if (after) {
        const at = new Date(after.t);
        query.$or = [{ createdAt: mongoose.trusted({ [op]: at }) }, { createdAt: at, _id: mongoose.trusted({ [op]: after.id }) }];
      }
      const batchSize = options.limit - out.length + 1;
      const docs = await this.store.posts.find(query).sort({ createdAt: direction, _id: direction }).limit(batchSize).lean<PostDoc[]>();
      const more = docs.length === batchSize;
      const batch = more ? docs.slice(0, -1) : docs;
      const rel = await this.store.relations(
        viewerId,
        batch.map((d) => d.authorId),
      );
      const views = await this.views(
        viewerId,
        batch.filter((d) => keep(d, rel)),
        rel,
      );
      out.push(...views);
      const last = batch.at(-1);
      if (!more || !last) return { items: out, nextCursor: null };
      after = { t: last.createdAt.getTime(), id: last._id };
      if (out.length >= options.limit) break;
    }
    return { items: out, nextCursor: after ? encodeCursor(after) : null };
  }

  /** Refuses profile content (posts, follower lists) of a blocked pair or of a private account the viewer does not follow. */
  async requireProfileAccess(viewerId: string, userId: string): Promise<ProfileDoc> {
    const rel = await this.store.relations(viewerId, [userId]);
    const profile = rel.profiles.get(userId);
    if (!profile) throw new FlockError('USER_NOT_FOUND');
    if (userId === viewerId) return profile;
    if (rel.blocked.has(userId)) throw new FlockError('GRAPH_BLOCKED');
    if (profile.private && !rel.following.has(userId)) throw new FlockError('GRAPH_PRIVATE_ACCOUNT');
    return profile;
  }

  /** Users at the other end of a page of edges, without those blocked with the viewer. */
  async users(viewerId: string, ids: string[]): Promise<UserSummary[]> {
    const rel = await this.store.relations(viewerId, ids);
    return ids.flatMap((id) => {
      const p = rel.profiles.get(id);
      return p && !rel.blocked.has(id) ? [summary(p)] : [];
    });
  }

  async relationship(viewerId: string, userId: string) {
    const ids = [
      edgeId('follow', userId, viewerId),
      edgeId('follow', viewerId, userId),
      edgeId('block', viewerId, userId),
      edgeId('block', userId, viewerId),
      edgeId('mute', viewerId, userId),
    ];
    const status = await this.store.edges.statuses(ids);
    return {
      following: status.get(ids[0]!) === 'active',
      requested: status.get(ids[0]!) === 'pending',
      followedBy: status.get(ids[1]!) === 'active',
      blocking: status.get(ids[2]!) === 'active',
      blockedBy: status.get(ids[3]!) === 'active',
      muting: status.get(ids[4]!) === 'active',
    };
  }
}

export function summary(p: ProfileDoc): UserSummary {
  return { userId: p._id, username: p.username, displayName: p.displayName, avatarMediaId: p.avatarMediaId ?? null, private: p.private };
}
