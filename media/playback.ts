// Playback URLs signed by Flock: `/media/<id>/<token>/<file>` where the
// token is `<expiry>.<hmac>` over the media id and the expiry. A view of a
// media item is built for a viewer who may see it (its owner, a viewer of the
// post or a member of the conversation that carries it), so the URLs in it
// honour the post's visibility; they expire after MEDIA_URL_TTL_SECONDS.
// Playlists (.m3u8, .mpd) are served by the route itself so that the
// relative URLs inside them resolve to more signed Flock URLs; every other
// file is a redirect to a presigned S3 URL (routes/media.ts).
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

export interface PlaybackSigner {
  /** The path prefix (ending in '/') under which every file of the media is readable until `expiresAt`. */
  prefix(mediaId: string, now?: number): { prefix: string; expiresAt: Date };
  /** Whether a token is Flock's, for this media, and unexpired; the expiry when it is. */
  check(mediaId: string, token: string, now?: number): Date | null;
}

export function createPlaybackSigner(options: { secret: string | Uint8Array; ttlSeconds: number; baseUrl: string }): PlaybackSigner {
  // A key of its own, so a playback token can never be mistaken for anything else signed with the secret.
  const key = Buffer.from(hkdfSync('sha256', options.secret, 'flock', 'media-playback-urls', 32));
  const mac = (mediaId: string, expiry: number) => createHmac('sha256', key).update(`${mediaId}.${expiry}`).digest('base64url');
  const base = options.baseUrl.replace(/\/+$/, '');
  return {
    prefix(mediaId, now = Date.now()) {
      // Rounded to the minute, so views built within one minute share their URLs (caches, CDN).
      const expiry = Math.ceil((now + options.ttlSeconds * 1000) / 60_000) * 60;
      return { prefix: `${base}/media/${mediaId}/${expiry}.${mac(mediaId, expiry)}/`, expiresAt: new Date(expiry * 1000) };
    },
    check(mediaId, token, now = Date.now()) {
      const match = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(token);
      if (!match) return null;
      const expiry = Number(match[1]);
      if (expiry * 1000 <= now) return null;
      const expected = Buffer.from(mac(mediaId, expiry));
      const given = Buffer.from(match[2] ?? '');
      return given.length === expected.length && timingSafeEqual(given, expected) ? new Date(expiry * 1000) : null;
    },
  };
}
