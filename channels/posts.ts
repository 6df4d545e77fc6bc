// posts: posts, replies (comments), quotes and reposts; likes; edits and
// deletion; threads, profile and hashtag pages, trending hashtags. Each post
// is owned by its PostActor (actors/post.ts); reads come from the posts
// collection through social/reads.ts, which applies blocks, privacy and
// deletion on every path.
import { z } from 'zod';
import { PostActor } from '../actors/contracts/post.ts';
import { UserActor } from '../actors/contracts/user.ts';
import type { PostDoc } from '../models/post.ts';
import { FlockError } from '../kernel/errors.ts';
import { cursorInput, pageLimit, pageOf } from '../kernel/cursor.ts';
import { keyedPostId, newPostId, repostId } from '../social/ids.ts';
import { hashtagInput, MAX_MEDIA_PER_POST, parseHashtags, parseMentions, postText } from '../social/text.ts';
import { postView, userSummary } from '../social/views.ts';
import { defineChannel, defineEvent, type AuthedEventContext, writes, reads } from './define.ts';
import { userIdInput } from '../kernel/ids.ts';
import { postIdInput } from '../kernel/ids.ts';
import { idempotencyKeyInput, mediaIdInput } from '../kernel/ids.ts';

const byPost = z.object({ postId: postIdInput }).strict();
const postPage = pageOf(postView);
const likeState = z.object({ liked: z.boolean(), likes: z.number().int() });

const write = writes(1024);
const read = reads(1024);

const createRequest = z
  .object({
    text: postText.optional(),
    mediaIds: z.array(mediaIdInput).max(MAX_MEDIA_PER_POST).default([]).describe('Media ids from the upload API (images, videos)'),
    visibility: z.enum(['public', 'followers']).default('public'),
    replyTo: postIdInput.optional().describe('Makes this a reply (comment) to the post'),
    quoteOf: postIdInput.optional().describe('Makes this a quote of the post'),
    idempotencyKey: idempotencyKeyInput.optional().describe('Resending with the same key returns the same post instead of a second one'),
  })
  .strict()
  .refine((r) => r.text !== undefined || r.mediaIds.length > 0, 'a post needs text or media')
  .refine((r) => !(r.replyTo && r.quoteOf), 'a post replies or quotes, not both');

const post = (ctx: AuthedEventContext, postId: string) => ctx.services.actors.ref(PostActor, postId);

/** The author's profile must exist before their posts can be shown (accounts made by OAuth get it lazily). */
async function ensureProfile(ctx: AuthedEventContext): Promise<void> {
  const me = ctx.session.userId;
  if (await ctx.services.social.profiles.exists({ _id: me })) return;
  const account = await ctx.services.accounts.findById(me);
  if (!account) throw new FlockError('USER_NOT_FOUND');
  await ctx.services.actors.ref(UserActor, me).ask('create', { username: account.displayUsername, displayName: account.displayUsername });
}

/** Mentioned users that exist, other than the author and anyone blocked with the author. */
async function mentionsOf(ctx: AuthedEventContext, text: string): Promise<string[]> {
  const me = ctx.session.userId;
  const ids = (await ctx.services.social.resolveUsernames(parseMentions(text))).filter((id) => id !== me);
  if (ids.length === 0) return ids;
  const rel = await ctx.services.social.relations(me, ids);
  return ids.filter((id) => !rel.blocked.has(id));
}

/** The post a repost or quote refers to: reposts resolve to their original. */
async function original(ctx: AuthedEventContext, postId: string): Promise<PostDoc> {
  const doc = await ctx.services.reads.visibleDoc(ctx.session.userId, postId);
  return doc.kind === 'repost' && doc.repostOf ? ctx.services.reads.visibleDoc(ctx.session.userId, doc.repostOf) : doc;
}

export const postsChannel = defineChannel({
  name: 'posts',
  description: 'Posts, replies, quotes, reposts, likes, threads, profile and hashtag pages, trending hashtags.',
  events: {
    create: defineEvent({
      ...write,
      maxBytes: 16 * 1024,
      summary: 'Publishes a post, a reply (replyTo) or a quote (quoteOf). Hashtags and @mentions are parsed from the text; mentioned users are notified.',
      request: createRequest,
      ack: postView,
      handler: async (ctx, req) => {
        const me = ctx.session.userId;
        await ensureProfile(ctx);
        const text = req.text ?? '';
        let parent: PostDoc | undefined;
        let quoted: PostDoc | undefined;
        if (req.replyTo) parent = await ctx.services.reads.visibleDoc(me, req.replyTo);
        if (req.quoteOf) quoted = await original(ctx, req.quoteOf);
        // Only the author's own media, uploaded (it may still be processing: the post shows it once ready).
        await ctx.services.media.reads.assertUsable(me, req.mediaIds);
        const postId = req.idempotencyKey ? keyedPostId(me, req.idempotencyKey) : newPostId();
        await post(ctx, postId).ask('create', {
          authorId: me,
          kind: parent ? 'reply' : quoted ? 'quote' : 'post',
          text,
          mediaIds: req.mediaIds,
          visibility: req.visibility,
          parentId: parent?._id ?? null,
          rootId: parent ? (parent.rootId ?? parent._id) : null,
          quoteOf: quoted?._id ?? null,
          repostOf: null,
          hashtags: parseHashtags(text),
          mentions: await mentionsOf(ctx, text),
        });
        return ctx.services.reads.post(me, postId);
      },
    }),
    repost: defineEvent({
      ...write,
      summary: "Reposts a public post to your followers. Idempotent: one repost per post. Private accounts' and followers-only posts cannot be reposted.",
      request: byPost,
      ack: postView,
      handler: async (ctx, { postId }) => {
        const me = ctx.session.userId;
        await ensureProfile(ctx);
        const target = await original(ctx, postId);
        const author = await ctx.services.social.profiles.findById(target.authorId, { private: 1 }).lean();
        if (target.visibility !== 'public' || author?.private) throw new FlockError('POST_FORBIDDEN', 'only public posts of public accounts can be reposted');
        const id = repostId(me, target._id);
        await post(ctx, id).ask('create', {
          authorId: me,
          kind: 'repost',
          text: '',
          mediaIds: [],
          visibility: 'public',
          parentId: null,
          rootId: null,
          quoteOf: null,
          repostOf: target._id,
          hashtags: [],
          mentions: [],
        });
        return ctx.services.reads.post(me, id);
      },
    }),
    undoRepost: defineEvent({
      ...write,
      summary: 'Takes back your repost of a post. Idempotent.',
      request: byPost,
      ack: z.object({ changed: z.boolean() }),
      handler: async (ctx, { postId }) => post(ctx, repostId(ctx.session.userId, postId)).ask('delete', { userId: ctx.session.userId }),
    }),
    edit: defineEvent({
      ...write,
      maxBytes: 16 * 1024,
      summary: 'Replaces the text of your post; the earlier text is kept in its history (posts:history). Hashtags and mentions are parsed again.',
      request: z.object({ postId: postIdInput, text: postText }).strict(),
      ack: postView,
      handler: async (ctx, { postId, text }) => {
        const me = ctx.session.userId;
        await post(ctx, postId).ask('edit', { userId: me, text, hashtags: parseHashtags(text), mentions: await mentionsOf(ctx, text) });
        return ctx.services.reads.post(me, postId);
      },
    }),
    delete: defineEvent({
      ...write,
      summary: 'Deletes your post: it leaves every list, thread and count at once. Idempotent.',
      request: byPost,
      ack: z.object({ changed: z.boolean() }),
      handler: async (ctx, { postId }) => post(ctx, postId).ask('delete', { userId: ctx.session.userId }),
    }),
    remove: defineEvent({
      ...write,
      access: { roles: ['moderator', 'admin'] },
      summary: "Removes anyone's post (moderators and admins), recording who did and why.",
      request: z.object({ postId: postIdInput, reason: z.string().trim().min(1).max(500) }).strict(),
      ack: z.object({ changed: z.boolean() }),
      handler: async (ctx, { postId, reason }) => post(ctx, postId).ask('delete', { userId: ctx.session.userId, moderatorReason: reason }),
    }),
    like: defineEvent({
      ...write,
      rateLimit: { capacity: 60, perSecond: 20 },
      summary: 'Likes a post or reply. Idempotent: liking twice is one like.',
      request: byPost,
      ack: likeState,
      handler: async (ctx, { postId }) => {
        await ctx.services.reads.visibleDoc(ctx.session.userId, postId);
        return post(ctx, postId).ask('like', { userId: ctx.session.userId });
      },
    }),
    unlike: defineEvent({
      ...write,
      rateLimit: { capacity: 60, perSecond: 20 },
      summary: 'Takes back a like. Idempotent.',
      request: byPost,
      ack: likeState,
      handler: async (ctx, { postId }) => post(ctx, postId).ask('unlike', { userId: ctx.session.userId }),
    }),
    get: defineEvent({
      ...read,
      summary: 'One post with its author, counts, your own state (liked, reposted) and the post it quotes or reposts.',
      request: byPost,
      ack: postView,
      handler: async (ctx, { postId }) => ctx.services.reads.post(ctx.session.userId, postId),
    }),
    history: defineEvent({
      ...read,
      summary: "A post's earlier texts, oldest first.",
      request: byPost,
      ack: z.object({ edits: z.array(z.object({ text: z.string(), editedAt: z.number().int() })) }),
      handler: async (ctx, { postId }) => {
        const doc = await ctx.services.reads.visibleDoc(ctx.session.userId, postId);
        return { edits: doc.edits.map((e) => ({ text: e.text, editedAt: e.editedAt.getTime() })) };
      },
    }),
    thread: defineEvent({
      ...read,
      summary: 'A post with its ancestors (root first) and a page of its direct replies, oldest first.',
      request: z.object({ postId: postIdInput, cursor: cursorInput.optional(), limit: pageLimit }).strict(),
      ack: z.object({ post: postView, ancestors: z.array(postView), replies: postPage }),
      handler: async (ctx, { postId, cursor, limit }) => ctx.services.reads.thread(ctx.session.userId, postId, { ...(cursor && { cursor }), limit }),
    }),
    byUser: defineEvent({
      ...read,
      summary: "A profile's posts and reposts, newest first (replies too with includeReplies).",
      request: z.object({ userId: userIdInput, cursor: cursorInput.optional(), limit: pageLimit, includeReplies: z.boolean().default(false) }).strict(),
      ack: postPage,
      handler: async (ctx, { userId, cursor, limit, includeReplies }) =>
        ctx.services.reads.userPosts(ctx.session.userId, userId, { ...(cursor && { cursor }), limit, includeReplies }),
    }),
    hashtag: defineEvent({
      ...read,
      summary: 'Posts with a hashtag, newest first (without the authors you muted).',
      request: z.object({ tag: hashtagInput, cursor: cursorInput.optional(), limit: pageLimit }).strict(),
      ack: postPage,
      handler: async (ctx, { tag, cursor, limit }) => ctx.services.reads.hashtag(ctx.session.userId, tag, { ...(cursor && { cursor }), limit }),
    }),
    likers: defineEvent({
      ...read,
      summary: 'Who liked a post, newest first.',
      request: z.object({ postId: postIdInput, cursor: cursorInput.optional(), limit: pageLimit }).strict(),
      ack: pageOf(userSummary),
      handler: async (ctx, { postId, cursor, limit }) => {
        const me = ctx.session.userId;
        await ctx.services.reads.visibleDoc(me, postId);
        const page = await ctx.services.social.edges.page({ kind: 'like', by: 'owner', id: postId, status: 'active', ...(cursor && { cursor }), limit });
        return {
          items: await ctx.services.reads.users(
            me,
            page.items.map((i) => i.id),
          ),
          nextCursor: page.nextCursor,
        };
      },
    }),
    trending: defineEvent({
      ...read,
      summary: 'The most used hashtags of the last hour (each author counted once per tag and 5 minutes).',
      request: z.object({ limit: z.number().int().min(1).max(50).default(10) }).strict(),
      ack: z.object({ tags: z.array(z.object({ tag: z.string(), count: z.number().int() })) }),
      handler: async (ctx, { limit }) => ({ tags: await ctx.services.social.trending.top(limit) }),
    }),
  },
});
