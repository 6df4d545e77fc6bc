// A real media item for tests that only need one to exist: a tiny PNG
// uploaded straight to S3 through the socket API (media:createDirectUpload,
// a PUT to the presigned URL, media:completeDirectUpload).
import sharp from 'sharp';
import type { FlockClient } from '../../client/flock-client.ts';

let png: Buffer | undefined;

export async function uploadTinyImage(c: FlockClient): Promise<string> {
  png ??= await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: 200, g: 40, b: 90 } } })
    .png()
    .toBuffer();
  const ticket = await c.request('media:createDirectUpload', { length: png.length, kind: 'image', filename: 'tiny.png' });
  const [part] = ticket.parts;
  if (!part) throw new Error('no part URL');
  const res = await fetch(part.url, { method: 'PUT', body: png });
  if (!res.ok) throw new Error(`PUT answered ${res.status}`);
  await c.request('media:completeDirectUpload', { mediaId: ticket.mediaId, parts: [{ number: 1, etag: res.headers.get('etag') ?? '' }] });
  return ticket.mediaId;
}

/** `n` tiny images, a few at a time (uploads in progress at once are limited per user). */
export async function uploadTinyImages(c: FlockClient, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 4) ids.push(...(await Promise.all(Array.from({ length: Math.min(4, n - i) }, () => uploadTinyImage(c)))));
  return ids;
}
