// Playback of processed media: GET /media/:mediaId/:token/:file, the URLs in
// media views (media/views.ts). No access token: the URL is the credential
// (signed for a viewer who may see the media, expiring), so players and
// <img> tags can fetch it. Playlists come back as text; segments, posters,
// storyboards and image variants as redirects to presigned S3 URLs.
import { FlockError } from '../kernel/errors.ts';
import { mediaIdInput } from '../kernel/ids.ts';
import { defineRoute } from './define.ts';

export const mediaRoutes = [
  defineRoute({
    method: 'GET',
    path: '/media/:mediaId/:token/:file',
    summary: 'A file of a processed media item, through a signed playback URL',
    auth: { kind: 'none' },
    body: { kind: 'none' },
    rateLimit: { capacity: 600, perSecond: 100 },
    handler: async (request, ctx) => {
      const playback = ctx.services.playback;
      const { mediaId = '', token = '', file = '' } = request.params;
      if (!playback || !mediaIdInput.safeParse(mediaId).success || !/^[A-Za-z0-9._-]{1,100}$/.test(file)) throw new FlockError('MEDIA_NOT_FOUND');
      const answer = await playback.open(mediaId, token, file);
      const cache = ['Cache-Control', `private, max-age=${answer.maxAgeSeconds}`] as const;
      if (answer.kind === 'text') return { status: 200, text: answer.body, contentType: answer.contentType, headers: [cache] };
      return { status: 302, location: answer.url, headers: [cache] };
    },
  }),
];
