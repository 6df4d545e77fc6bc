// media: what was uploaded and how to show it. Uploads themselves go over
// HTTP (tus, POST /uploads) or straight to S3 (the direct-upload events
// here); progress arrives on the personal stream (media:uploaded,
// media:processing, media:ready, media:failed). Views carry playback URLs
// signed for this viewer that expire (playback.expiresAt): a viewer gets
// them for their own media, for the media of a post they may see, and for
// the media of a message in a conversation they may read.
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { conversationIdInput, mediaIdInput, postIdInput } from '../kernel/ids.ts';
import { completeDirectUploadInput, createDirectUploadInput } from '../media/direct-upload.ts';
import { mediaView } from '../media/views.ts';
import { MediaActor } from '../actors/contracts/media.ts';
import { defineChannel, defineEvent, SIGNED_IN } from './define.ts';

const MAX_IDS = 20;
const views = z.object({ media: z.array(mediaView) });
const read = { access: SIGNED_IN, rateLimit: { capacity: 60, perSecond: 20 }, maxBytes: 4 * 1024 } as const;
const write = { access: SIGNED_IN, rateLimit: { capacity: 10, perSecond: 1 } } as const;

export const mediaChannel = defineChannel({
  name: 'media',
  description: 'Uploaded images and videos: their state, playback URLs, direct-to-S3 uploads and deletion.',
  events: {
    get: defineEvent({
      ...read,
      summary:
        'Views of media with fresh playback URLs: your own (mediaIds), those of a post you may see (postId), or of a message in a conversation you may read (conversationId and seq). Missing and deleted media are left out.',
      request: z.union([
        z.object({ mediaIds: z.array(mediaIdInput).min(1).max(MAX_IDS) }).strict(),
        z.object({ postId: postIdInput }).strict(),
        z.object({ conversationId: conversationIdInput, seq: z.number().int().min(1) }).strict(),
      ]),
      ack: views,
      handler: async (ctx, req) => {
        const me = ctx.session.userId;
        const reads = ctx.services.media.reads;
        if ('mediaIds' in req) {
          return { media: await reads.views(req.mediaIds, me) };
        }
        if ('postId' in req) {
          const post = await ctx.services.reads.visibleDoc(me, req.postId);
          return { media: await reads.views(post.mediaIds) };
        }
        const reader = await ctx.services.messaging.reader(req.conversationId, me);
        if (req.seq < reader.from || req.seq > reader.to) throw new FlockError('CONVERSATION_MESSAGE_NOT_FOUND');
        const message = await ctx.services.messaging.message(req.conversationId, req.seq);
        if (!message || message.deletedAt) throw new FlockError('CONVERSATION_MESSAGE_NOT_FOUND');
        return { media: await reads.views(message.mediaIds) };
      },
    }),
    delete: defineEvent({
      ...write,
      maxBytes: 1024,
      summary: 'Deletes one of your media items: it leaves every post and message that shows it, and its files are removed.',
      request: z.object({ mediaId: mediaIdInput }).strict(),
      ack: z.object({ changed: z.boolean() }),
      handler: async (ctx, { mediaId }) => {
        const { changed } = await ctx.services.actors.ref(MediaActor, mediaId).ask('remove', { userId: ctx.session.userId });
        return { changed };
      },
    }),
    createDirectUpload: defineEvent({
      ...write,
      maxBytes: 2 * 1024,
      summary:
        'Starts an upload straight to S3: presigned URLs, one per part (PUT each part, keep each ETag), valid for an hour. Counts against your upload quotas like a tus upload.',
      request: createDirectUploadInput,
      ack: z.object({
        mediaId: z.string(),
        partSize: z.number().int(),
        parts: z.array(z.object({ number: z.number().int(), url: z.string() })),
        expiresAt: z.number().int().describe('ms since the epoch'),
      }),
      handler: async (ctx, req) => {
        const ticket = await ctx.services.media.direct.createDirectUpload(ctx.session.userId, req);
        return { mediaId: ticket.mediaId, partSize: ticket.partSize, parts: ticket.parts, expiresAt: ticket.expiresAt };
      },
    }),
    completeDirectUpload: defineEvent({
      ...write,
      maxBytes: 1024 * 1024,
      summary:
        'Completes a direct upload with the ETag of every part; processing starts (once, even if the storage webhook reported the object first). Safe to repeat.',
      request: completeDirectUploadInput,
      ack: z.object({ mediaId: z.string(), bytes: z.number().int() }),
      handler: async (ctx, req) => ctx.services.media.direct.completeDirectUpload(ctx.session.userId, req.mediaId, req.parts),
    }),
    abortDirectUpload: defineEvent({
      ...write,
      maxBytes: 1024,
      summary: 'Abandons a direct upload: its parts are deleted and its quota share returned.',
      request: z.object({ mediaId: mediaIdInput }).strict(),
      ack: z.object({}),
      handler: async (ctx, { mediaId }) => {
        await ctx.services.media.direct.abortDirectUpload(ctx.session.userId, mediaId);
        return {};
      },
    }),
  },
});
