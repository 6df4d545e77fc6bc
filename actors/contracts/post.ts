// PostActor's interface: one per post (key = post id). It owns the post
// document and the edges that point at the post (likes, and the replies,
// quotes and reposts it counts), so counts are exact under any concurrency.
import { z } from 'zod';
import { postIdInput, userIdInput } from '../../kernel/ids.ts';
import { POST_KINDS, VISIBILITIES } from '../../models/post.ts';
import { defineActorInterface } from '../define.ts';

/** Edits kept per post; further edits are refused. */
export const MAX_EDITS = 20;

export const CHILD_KINDS = ['reply', 'quote', 'repost'] as const;
export type ChildKind = (typeof CHILD_KINDS)[number];

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
const likeState = z.object({ liked: z.boolean(), likes: z.number().int() });
const child = z.object({ childId: postIdInput, kind: z.enum(CHILD_KINDS) });

export const PostActor = defineActorInterface({
  type: 'post',
  messages: {
    /** Creates the post; idempotent (a repeat returns created: false). A deleted repost is revived. */
    create: { input: createInput, output: z.object({ created: z.boolean() }) },
    /** A child (reply, quote, repost) now points at this post. Idempotent. */
    link: { input: child, output: z.object({ changed: z.boolean() }) },
    /** A child stopped pointing at this post (deleted). Idempotent. */
    unlink: { input: child, output: z.object({ changed: z.boolean() }) },
    like: { input: z.object({ userId: userIdInput }), output: likeState },
    unlike: { input: z.object({ userId: userIdInput }), output: likeState },
    edit: {
      input: z.object({ userId: userIdInput, text: z.string().max(10_000), hashtags: z.array(z.string()).max(20), mentions: z.array(z.string()).max(20) }),
      output: z.object({ edits: z.number().int() }),
    },
    /** By the author (userId), or a moderator's removal (reason given). */
    delete: { input: z.object({ userId: userIdInput, moderatorReason: z.string().min(1).max(500).optional() }), output: z.object({ changed: z.boolean() }) },
  },
});
