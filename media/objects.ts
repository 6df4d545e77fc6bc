// S3 glue for media: the original down to a local file (streamed), a
// processing run's outputs up under its prefix, and prefixes removed.
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface Bucket {
  s3: S3Client;
  name: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.mpd': 'application/dash+xml',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.vtt': 'text/vtt',
};

export function contentTypeOf(file: string): string {
  return CONTENT_TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/** Streams an object into a local file (memory does not grow with its size). */
export async function downloadToFile(bucket: Bucket, key: string, file: string, signal?: AbortSignal): Promise<void> {
  const object = await bucket.s3.send(new GetObjectCommand({ Bucket: bucket.name, Key: key }), { abortSignal: signal });
  if (!(object.Body instanceof Readable)) throw new Error(`s3://${bucket.name}/${key}: no body`);
  await pipeline(object.Body, createWriteStream(file), { signal });
}

/** Uploads local files (paths relative to `dir`) under `prefix`, a few at a time. */
export async function uploadFiles(bucket: Bucket, prefix: string, dir: string, files: readonly string[], signal?: AbortSignal): Promise<void> {
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      const local = path.join(dir, file);
      const { size } = await stat(local);
      await bucket.s3.send(
        new PutObjectCommand({ Bucket: bucket.name, Key: prefix + file, Body: createReadStream(local), ContentLength: size, ContentType: contentTypeOf(file) }),
        { abortSignal: signal },
      );
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/** Deletes every object under `prefix` except those under `keep`; returns how many were deleted. */
export async function deletePrefix(bucket: Bucket, prefix: string, keep?: string): Promise<number> {
  let deleted = 0;
  let token: string | undefined;
  do {
    const page = await bucket.s3.send(new ListObjectsV2Command({ Bucket: bucket.name, Prefix: prefix, ContinuationToken: token }));
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key && !(keep && o.Key.startsWith(keep)) ? [o.Key] : []));
    deleted += await deleteKeys(bucket, keys);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return deleted;
}

/** Deletes these objects (missing ones are fine). */
export async function deleteKeys(bucket: Bucket, keys: readonly string[]): Promise<number> {
  for (let i = 0; i < keys.length; i += 1000) {
    const chunk = keys.slice(i, i + 1000);
    await bucket.s3.send(new DeleteObjectsCommand({ Bucket: bucket.name, Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true } }));
  }
  return keys.length;
}
