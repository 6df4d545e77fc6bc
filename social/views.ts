// What clients receive for posts and users in lists: one zod schema each, so
// the acks, the AsyncAPI document and the typed client agree.
import { z } from 'zod';
import { POST_KINDS, VISIBILITIES } from '../models/post.ts';

export const userSummary = z.object({
  userId: z.string(),
  username: z.string(),
  displayName: z.string(),
  avatarMediaId: z.string().nullable(),
  private: z.boolean(),
});
export type UserSummary = z.infer<typeof userSummary>;

export const postCore = z.object({
  postId: z.string(),
  kind: z.enum(POST_KINDS),
  author: userSummary,
  text: z.string(),
  mediaIds: z.array(z.string()),
  visibility: z.enum(VISIBILITIES),
  parentId: z.string().nullable(),
  rootId: z.string().nullable(),
  quoteOf: z.string().nullable(),
  repostOf: z.string().nullable(),
  hashtags: z.array(z.string()),
  mentions: z.array(z.string()).describe('User ids mentioned in the text'),
  counts: z.object({ likes: z.number().int(), replies: z.number().int(), reposts: z.number().int(), quotes: z.number().int() }),
  createdAt: z.number().int(),
  editedAt: z.number().int().nullable(),
  edits: z.number().int().describe('How many times the text was edited (history: posts:history)'),
  viewer: z.object({ liked: z.boolean(), reposted: z.boolean() }),
});
export type PostCore = z.infer<typeof postCore>;

export const postView = postCore.extend({
  original: postCore.nullable().describe('The quoted or reposted post, when the viewer may see it'),
  originalUnavailable: z.boolean().describe('True when this quotes or reposts a post that is deleted or hidden from the viewer'),
});
export type PostView = z.infer<typeof postView>;
