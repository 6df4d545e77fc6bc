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
import { z } from 'zod';
import { modelOn } from '../kernel/mongo.ts';

export const POST_COLLECTION = 'posts';

export const POST_KINDS = ['post', 'reply', 'quote', 'repost'] as const;
export type PostKind = (typeof POST_KINDS)[number];
export const VISIBILITIES = ['public', 'followers'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

/**
 * The fields of a post document, as PostActor holds them in memory (its state)
 * and as they are parsed when it activates. The actor's bookkeeping (`epoch`,
 * `version`, the effects still to do in `pending`) is stored beside them.
 */
export const postFields = z.object({
  kind: z.enum(POST_KINDS),
  authorId: z.string(),
  text: z.string(),
  mediaIds: z.array(z.string()),
  visibility: z.enum(VISIBILITIES),
  /** Direct parent of a reply. */
  parentId: z.string().nullable(),
  /** First post of the thread a reply belongs to. */
  rootId: z.string().nullable(),
  quoteOf: z.string().nullable(),
  repostOf: z.string().nullable(),
  hashtags: z.array(z.string()),
  /** User ids resolved from @mentions. */
  mentions: z.array(z.string()),
  likes: z.number().int(),
  replies: z.number().int(),
  reposts: z.number().int(),
  quotes: z.number().int(),
  /** Earlier texts, oldest first (bounded). */
  edits: z.array(z.object({ text: z.string(), editedAt: z.date() })),
  createdAt: z.date(),
  editedAt: z.date().nullable(),
  /** Mirrors deletedAt !== null, for indexes. */
  deleted: z.boolean(),
  deletedAt: z.date().nullable(),
  removal: z.object({ by: z.string(), reason: z.string() }).nullable(),
});
export type PostFields = z.output<typeof postFields>;

export interface PostDoc extends PostFields {
  _id: string;
  /** The owning actor's bookkeeping (actors/state-store.ts). */
  epoch: number;
  version?: number;
  pending?: unknown[];
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
    epoch: { type: Number, required: true },
    version: { type: Number, default: 0 },
    /** Effects of the last change, as JSON (actors/activation.ts); objects in documents written before 0.2.0. */
    pending: { type: [Schema.Types.Mixed], default: [] },
  },
  { collection: POST_COLLECTION, versionKey: false, minimize: false, strict: 'throw' },
);
postSchema.index({ authorId: 1, deleted: 1, createdAt: -1, _id: -1 });
postSchema.index({ parentId: 1, deleted: 1, createdAt: 1, _id: 1 });
postSchema.index({ hashtags: 1, deleted: 1, createdAt: -1, _id: -1 });
postSchema.index({ mentions: 1, deleted: 1, createdAt: -1, _id: -1 });

export type PostModel = Model<PostDoc>;

export function postModel(connection: Connection): PostModel {
  return modelOn(connection, 'Post', postSchema);
}
