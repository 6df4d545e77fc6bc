// Posts, replies (comments), quotes and reposts: one document each, owned and
// written only by its PostActor (actors/post.ts), fenced by the actor's
// activation epoch. Deletion is soft: the document stays with `deletedAt`
// (and `removal` when a moderator removed it) and drops out of every list.
//
// Access paths and their indexes:
//   a post by id (reads, hydration, viewer's reposts)  _id
//   a profile's posts, newest first                    { authorId, deleted, createdAt, _id }
//   a post's direct replies, oldest first              { parentId, deleted, createdAt, _id }
//   a hashtag page, newest first                       { hashtags, deleted, createdAt, _id }
//   posts mentioning a user, newest first              { mentions, deleted, createdAt, _id }
// Arrays (hashtags, mentions, mediaIds) are flat arrays of strings: FerretDB v1
// has no nested arrays.
import { Schema, type Connection, type Model } from 'mongoose';

export const POST_COLLECTION = 'posts';

export const POST_KINDS = ['post', 'reply', 'quote', 'repost'] as const;
export type PostKind = (typeof POST_KINDS)[number];
export const VISIBILITIES = ['public', 'followers'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

export interface PostEdit {
  text: string;
  editedAt: Date;
}

/**
 * An effect of the post's last change, redone when the actor activates
 * (actors/post.ts): an edge write of this post's own edges, a link or unlink
 * in the post this one replies to, quotes or reposts, or a domain event.
 */
export interface PostPendingOp {
  op: 'edge' | 'link' | 'unlink' | 'emit';
  /** edge: the edge kind; link/unlink: the child kind; emit: the event type. */
  kind: string;
  /** edge: the member; link/unlink: the target post. */
  ref: string;
  /** edge: the new status. */
  status: string;
}

export interface PostDoc {
  _id: string;
  kind: PostKind;
  authorId: string;
  text: string;
  mediaIds: string[];
  visibility: Visibility;
  /** Direct parent of a reply. */
  parentId: string | null;
  /** First post of the thread a reply belongs to. */
  rootId: string | null;
  quoteOf: string | null;
  repostOf: string | null;
  hashtags: string[];
  /** User ids resolved from @mentions. */
  mentions: string[];
  likes: number;
  replies: number;
  reposts: number;
  quotes: number;
  /** Earlier texts, oldest first (bounded). */
  edits: PostEdit[];
  createdAt: Date;
  editedAt: Date | null;
  /** Mirrors deletedAt !== null, for indexes. */
  deleted: boolean;
  deletedAt: Date | null;
  removal: { by: string; reason: string } | null;
  /** Effects still to do after the last change (replayed on activation). */
  pending: PostPendingOp[];
  epoch: number;
}

export const postSchema = new Schema<PostDoc>(
  {
    _id: { type: String, required: true },
    kind: { type: String, required: true, enum: POST_KINDS },
    authorId: { type: String, required: true },
    text: { type: String, default: '' },
    mediaIds: { type: [String], default: [] },
    visibility: { type: String, required: true, enum: VISIBILITIES },
    parentId: { type: String, default: null },
    rootId: { type: String, default: null },
    quoteOf: { type: String, default: null },
    repostOf: { type: String, default: null },
    hashtags: { type: [String], default: [] },
    mentions: { type: [String], default: [] },
    likes: { type: Number, default: 0 },
    replies: { type: Number, default: 0 },
    reposts: { type: Number, default: 0 },
    quotes: { type: Number, default: 0 },
    edits: { type: [new Schema({ text: String, editedAt: Date }, { _id: false })], default: [] },
    createdAt: { type: Date, required: true },
    editedAt: { type: Date, default: null },
    deleted: { type: Boolean, default: false },
    deletedAt: { type: Date, default: null },
    removal: { type: new Schema({ by: String, reason: String }, { _id: false }), default: null },
    pending: { type: [new Schema({ op: String, kind: String, ref: String, status: String }, { _id: false })], default: [] },
    epoch: { type: Number, required: true },
  },
  { collection: POST_COLLECTION, versionKey: false, minimize: false, strict: 'throw' },
);
postSchema.index({ authorId: 1, deleted: 1, createdAt: -1, _id: -1 });
postSchema.index({ parentId: 1, deleted: 1, createdAt: 1, _id: 1 });
postSchema.index({ hashtags: 1, deleted: 1, createdAt: -1, _id: -1 });
postSchema.index({ mentions: 1, deleted: 1, createdAt: -1, _id: -1 });

export type PostModel = Model<PostDoc>;

export function postModel(connection: Connection): PostModel {
  return (connection.models.Post as PostModel | undefined) ?? connection.model<PostDoc>('Post', postSchema);
}
