// The floor the social bench compares Flock with: the same work done straight
// against MongoDB with the driver, from the bench process, with no socket, no
// dispatcher and no actor. The documents have the shapes the PostActor writes
// (models/post.ts, models/edge.ts) and go into the same collections, with the
// indexes the nodes created, so the database does the same work for each.
// The floor remembers what it inserted and removes it after each scenario, so
// Flock's run that follows starts from the same data the floor's run did.
import type { Collection, Db } from 'mongodb';
import { edgeId, type EdgeDoc } from '../../models/edge.ts';
import type { PostDoc } from '../../models/post.ts';
import { newPostId } from '../../social/ids.ts';
import { parseHashtags } from '../../social/text.ts';

/** Epoch the floor stamps on its documents (no actor owns them). */
const FLOOR_EPOCH = 1;

export class Floor {
  private readonly posts: Collection<PostDoc>;
  private readonly edges: Collection<EdgeDoc>;

  private readonly own = { posts: [] as string[], edges: [] as string[] };

  constructor(db: Db) {
    this.posts = db.collection<PostDoc>('posts');
    this.edges = db.collection<EdgeDoc>('edges');
  }

  /** Removes every document the floor inserted. */
  async removeOwn(): Promise<void> {
    const { posts, edges } = this.own;
    if (posts.length > 0) await this.posts.deleteMany({ _id: { $in: posts } });
    if (edges.length > 0) await this.edges.deleteMany({ _id: { $in: edges } });
    this.own.posts = [];
    this.own.edges = [];
  }

  /** A new top-level post document, as PostActor's create writes it (mentions already resolved to user ids). */
  postDoc(authorId: string, text: string, mentions: string[]): PostDoc {
    return {
      _id: newPostId(),
      kind: 'post',
      authorId,
      text,
      mediaIds: [],
      visibility: 'public',
      parentId: null,
      rootId: null,
      quoteOf: null,
      repostOf: null,
      hashtags: parseHashtags(text),
      mentions,
      likes: 0,
      replies: 0,
      reposts: 0,
      quotes: 0,
      edits: [],
      createdAt: new Date(),
      editedAt: null,
      deleted: false,
      deletedAt: null,
      removal: null,
      pending: [],
      epoch: FLOOR_EPOCH,
    };
  }

  /** posts:create's floor: one insert. */
  async create(doc: PostDoc): Promise<void> {
    this.own.posts.push(doc._id);
    await this.posts.insertOne(doc);
  }

  /** posts:like's floor: the like edge inserted, then the post's counter incremented. */
  async like(postId: string, userId: string): Promise<void> {
    const _id = edgeId('like', postId, userId);
    this.own.edges.push(_id);
    await this.edges.insertOne({ _id, kind: 'like', owner: postId, member: userId, status: 'active', at: new Date(), epoch: FLOOR_EPOCH });
    const res = await this.posts.updateOne({ _id: postId }, { $inc: { likes: 1 } });
    if (res.matchedCount !== 1) throw new Error(`floor like: post ${postId} not found`);
  }

  /** posts:thread's floor: the post and its first `limit` direct replies, oldest first (both queries at once). */
  async thread(postId: string, limit: number): Promise<{ post: PostDoc | null; replies: PostDoc[] }> {
    const [post, replies] = await Promise.all([
      this.posts.findOne({ _id: postId }),
      this.posts
        .find({ parentId: postId, deleted: false })
        .sort({ createdAt: 1, _id: 1 })
        .limit(limit + 1)
        .toArray(),
    ]);
    return { post, replies: replies.slice(0, limit) };
  }

  /** posts:byUser's floor: an author's first `limit` posts (no replies), newest first. */
  async byUser(authorId: string, limit: number): Promise<PostDoc[]> {
    const docs = await this.posts
      .find({ authorId, deleted: false, kind: { $ne: 'reply' } })
      .sort({ createdAt: -1, _id: -1 })
      .limit(limit + 1)
      .toArray();
    return docs.slice(0, limit);
  }

  /** The like counters of some posts (the bench checks them after its runs). */
  async likes(postIds: string[]): Promise<Map<string, number>> {
    const docs = await this.posts.find({ _id: { $in: postIds } }, { projection: { likes: 1 } }).toArray();
    return new Map(docs.map((d) => [d._id, d.likes]));
  }
}
