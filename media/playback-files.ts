// What a signed playback URL leads to (routes/media.ts): the token is
// checked, the file must be one of the ready media's outputs, then a
// playlist (.m3u8, .mpd: small) is answered with its text, so the relative
// URLs inside it resolve to more signed Flock URLs, and anything else is a
// redirect to a presigned S3 URL that expires with the token.
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import { FlockError } from '../kernel/errors.ts';
import { contentTypeOf } from './objects.ts';
import type { PlaybackSigner } from './playback.ts';
import type { MediaReads } from './reads.ts';

/** Playlists are served by Flock; any larger one is not a playlist Flock wrote. */
const MAX_PLAYLIST_BYTES = 1024 * 1024;
const PLAYLIST = /\.(m3u8|mpd)$/;

export type PlaybackAnswer =
  { kind: 'text'; body: string; contentType: string; maxAgeSeconds: number } | { kind: 'redirect'; url: string; maxAgeSeconds: number };

export class PlaybackFiles {
  constructor(
    private readonly reads: MediaReads,
    private readonly signer: PlaybackSigner,
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async open(mediaId: string, token: string, file: string): Promise<PlaybackAnswer> {
    const expires = this.signer.check(mediaId, token);
    if (!expires) throw new FlockError('MEDIA_NOT_FOUND', 'this playback URL is not valid or has expired; ask media:get for a fresh one');
    const doc = (await this.reads.get([mediaId])).get(mediaId);
    if (!doc || doc.state !== 'ready' || !doc.output || !doc.outputPrefix || !doc.output.files.includes(file)) throw new FlockError('MEDIA_NOT_FOUND');
    const key = doc.outputPrefix + file;
    const maxAgeSeconds = Math.max(0, Math.floor((expires.getTime() - Date.now()) / 1000));
    if (PLAYLIST.test(file)) {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!object.Body) throw new FlockError('MEDIA_NOT_FOUND');
      // Flock's playlists are small; anything else under that name is not read (its connection is let go).
      if (object.ContentLength === undefined || object.ContentLength > MAX_PLAYLIST_BYTES) {
        if (object.Body instanceof Readable) object.Body.destroy();
        throw new FlockError('MEDIA_NOT_FOUND');
      }
      const body = await object.Body.transformToString('utf8');
      return { kind: 'text', body, contentType: contentTypeOf(file), maxAgeSeconds };
    }
    const url = await getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn: Math.max(60, maxAgeSeconds) });
    return { kind: 'redirect', url, maxAgeSeconds };
  }
}
