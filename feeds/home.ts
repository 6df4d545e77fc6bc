// The home timeline: posts and reposts (not replies) of the accounts a user
// follows, and their own, newest first. Three sources are merged at read time:
//   - the stored feed (feeds/store.ts), filled by fan-out on write for authors
//     below the fan-out threshold;
//   - the recent posts of followed authors at or above the threshold
//     ("celebrities", kept in a Redis set when they post), read from MongoDB;
//   - when the stored feed cannot answer (it is missing, the page goes past
//     its oldest entry and it is at its cap, or reaches its floor: a feed made
//     after Redis lost the old one holds only what came since): the posts of
//     every followed author, read from MongoDB.
// Every candidate then goes through the same rules as any other read
// (blocks, mutes, visibility, deletion; social/reads.ts), and only authors the
// viewer follows now, or the viewer, are kept: an unfollow or a block takes
// effect at once even before the stored feed is cleaned.
import mongoose from 'mongoose';
import type { PostDoc } from '../models/post.ts';
import type { Redis } from '../kernel/redis.ts';
import { decodeCursor, encodeCursor, type Cursor } from '../kernel/cursor.ts';
import type { Page, SocialReads } from '../social/reads.ts';
import type { PostView } from '../social/views.ts';
import type { FeedEntry, FeedStore } from './store.ts';

/** Followed authors read for a merge of everyone (the most recently followed first). */
const MERGE_AUTHORS_MAX = 1_000;

export interface ScoredPost {
  doc: PostDoc;
  now: number;
}

/** Ranks "for you" candidates: higher first. Pluggable (the recommender replaces it later). */
export type Scorer = (candidate: ScoredPost) => number;

/** Engagement decayed by age (hours), like the classic hot ranking. */
export const recencyEngagementScorer: Scorer = ({ doc, now }) => {
  const ageHours = Math.max(0, now - new Date(doc.createdAt).getTime()) / 3_600_000;
  return (1 + doc.likes + 2 * doc.reposts + doc.replies + doc.quotes) / (ageHours + 2) ** 1.5;
};

export class HomeFeeds {
  constructor(
    readonly store: FeedStore,
    private readonly reads: SocialReads,
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly scorer: Scorer = recencyEngagementScorer,
  ) {}

  private get social() {
    return this.reads.store;
  }

  celebritiesKey(): string {
    return `${this.prefix}:feed:celebrities`;
  }

  /** Set once a post's live event went out. */
  liveKey(postId: string): string {
    return `${this.prefix}:feed:live:${postId}`;
  }

  /** Followed authors whose posts are merged at read time. */
  async followedCelebrities(viewerId: string): Promise<string[]> {
    const celebs = await this.redis.smembers(this.celebritiesKey());
    if (celebs.length === 0) return [];
    const rel = await this.social.edges.activeIds(celebs.map((c) => `follow|${c}|${viewerId}`));
    return celebs.filter((c) => rel.has(`follow|${c}|${viewerId}`));
  }

  /** Accounts the viewer follows (active), most recently followed first, at most MERGE_AUTHORS_MAX. */
  async following(viewerId: string): Promise<string[]> {
    const out: string[] = [];
    let cursor: string | undefined;
    while (out.length < MERGE_AUTHORS_MAX) {
      const page = await this.social.edges.page({ kind: 'follow', by: 'member', id: viewerId, status: 'active', limit: 50, ...(cursor && { cursor }) });
      out.push(...page.items.map((i) => i.id));
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    return out.slice(0, MERGE_AUTHORS_MAX);
  }

  /** A page, newest first. */
  async page(viewerId: string, options: { cursor?: string; limit: number }): Promise<Page<PostView>> {
    const before = decodeCursor(options.cursor);
    const docs = await this.candidates(viewerId, { ...(before && { before }), limit: options.limit });
    const views = await this.keep(viewerId, docs);
    const items = views.slice(0, options.limit);
    if (docs.length <= options.limit && views.length <= options.limit) return { items, nextCursor: null };
    // Continue after the last item returned, or after the candidates looked at when all were hidden.
    const last = items.at(-1);
    return { items, nextCursor: encodeCursor(last ? { t: last.createdAt, id: last.postId } : cursorOf(docs.at(-1)!)) };
  }

  /** What came after `cursor` (the newest item a client has), oldest first: the catch-up after a reconnect. */
  async since(viewerId: string, options: { cursor: string; limit: number }): Promise<{ items: PostView[]; nextCursor: string; more: boolean }> {
    const after = decodeCursor(options.cursor)!;
    const docs = await this.candidates(viewerId, { after, limit: options.limit });
    const views = await this.keep(viewerId, docs);
    const items = views.slice(0, options.limit);
    const more = docs.length > options.limit;
    // Continue after the last item returned (or after the last candidate looked at, if all were hidden).
    const last = items.at(-1);
    const next = last ? { t: last.createdAt, id: last.postId } : docs.length > 0 ? cursorOf(docs.at(-1)!) : after;
    return { items, nextCursor: encodeCursor(next), more };
  }

  /** "For you": recent candidates of the home timeline, ranked by the scorer. */
  async forYou(viewerId: string, limit: number): Promise<PostView[]> {
    const docs = await this.candidates(viewerId, { limit: 100 });
    const now = Date.now();
    const ranked = [...docs].sort((a, b) => this.scorer({ doc: b, now }) - this.scorer({ doc: a, now }));
    return (await this.keep(viewerId, ranked)).slice(0, limit);
  }

  /**
   * Candidate documents older than `before` (newest first) or newer than
   * `after` (oldest first), a few more than `limit`, not yet filtered for the
   * viewer.
   */
  private async candidates(viewerId: string, options: { before?: Cursor; after?: Cursor; limit: number }): Promise<PostDoc[]> {
    const want = options.limit + 1;
    const toEntry = (c: Cursor): FeedEntry => ({ postId: c.id, at: c.t });
    const [stored, exists, floor, celebs] = await Promise.all([
      this.store.range(viewerId, {
        ...(options.before && { before: toEntry(options.before) }),
        ...(options.after && { after: toEntry(options.after) }),
        limit: want,
      }),
      this.store.exists(viewerId),
      this.store.floor(viewerId),
      this.followedCelebrities(viewerId),
    ]);
    const authors = new Set(celebs);
    // The stored feed cannot answer: merge everyone the viewer follows.
    const capped = exists && stored.length < want && !options.after && (await this.redis.zcard(this.store.key(viewerId))) >= this.store.settings.maxLength;
    const belowFloor = floor !== null && (options.after ? options.after.t <= floor : stored.length < want || stored[stored.length - 1]!.at <= floor);
    if (!exists || capped || belowFloor) for (const id of [viewerId, ...(await this.following(viewerId))]) authors.add(id);
    const [fromStore, fromAuthors] = await Promise.all([
      this.social.byIds<PostDoc>(
        this.social.posts,
        stored.map((e) => e.postId),
      ),
      this.byAuthors([...authors], options, want),
    ]);
    const byId = new Map<string, PostDoc>();
    for (const d of [...fromStore, ...fromAuthors]) if (!d.deleted && d.kind !== 'reply') byId.set(d._id, d);
    const newerFirst = (a: PostDoc, b: PostDoc) => b.createdAt.getTime() - a.createdAt.getTime() || (a._id < b._id ? 1 : -1);
    const sorted = [...byId.values()].sort(options.after ? (a, b) => -newerFirst(a, b) : newerFirst);
    return sorted.slice(0, want);
  }

  /** Recent posts (not replies) of some authors, on one side of a cursor. */
  private async byAuthors(authorIds: string[], options: { before?: Cursor; after?: Cursor }, limit: number): Promise<PostDoc[]> {
    if (authorIds.length === 0) return [];
    const filter: Record<string, unknown> = { authorId: mongoose.trusted({ $in: authorIds }), deleted: false, kind: mongoose.trusted({ $ne: 'reply' }) };
    const edge = options.before ?? options.after;
    if (edge) {
      const op = options.before ? '$lt' : '$gt';
      const t = new Date(edge.t);
      filter.$or = [{ createdAt: mongoose.trusted({ [op]: t }) }, { createdAt: t, _id: mongoose.trusted({ [op]: edge.id }) }];
    }
    const dir = options.after ? 1 : -1;
    return this.social.posts.find(filter).sort({ createdAt: dir, _id: dir }).limit(limit).lean<PostDoc[]>();
  }

  /** The viewer's rules: followed authors (or the viewer) only, no mutes; then blocks and visibility (views). */
  private async keep(viewerId: string, docs: PostDoc[]): Promise<PostView[]> {
    const rel = await this.social.relations(
      viewerId,
      docs.map((d) => d.authorId),
    );
    const kept = docs.filter((d) => (d.authorId === viewerId || rel.following.has(d.authorId)) && !rel.muted.has(d.authorId));
    return this.reads.views(viewerId, kept, rel);
  }
}

function cursorOf(doc: PostDoc): Cursor {
  return { t: doc.createdAt.getTime(), id: doc._id };
}
