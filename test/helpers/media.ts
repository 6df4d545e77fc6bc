// What the upload tests share: the media side as a small in-memory
// UploadLifecycle that records every call (S3 and MongoDB stay real), the
// suite's S3 client and bucket, and what S3 holds of an upload afterwards.
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FlockError } from '../../kernel/errors.ts';
import type { UploadDeclaration, UploadLifecycle } from '../../media/upload-lifecycle.ts';
import { createS3Client } from '../../server/s3.ts';
import { requireEnv } from './env.ts';

/** A file whose head starts with this is "not media" for the test lifecycle. */
export const NOT_MEDIA = Buffer.from('NOTMEDIA');

export interface MediaItem {
  owner: string;
  key: string;
  declared: UploadDeclaration;
  state: 'uploading' | 'uploaded' | 'removed';
  sniffed: Buffer[];
  completed: { key: string; bytes: number }[];
  abandoned: number;
}

/** The media side of the tests: items by id, and every call the transports made. */
export class TestLifecycle implements UploadLifecycle {
  readonly items = new Map<string, MediaItem>();
  /** Makes the next complete call fail as if the media side were away. */
  failNextComplete = false;

  async begin(owner: string, declared: UploadDeclaration): Promise<{ mediaId: string; key: string }> {
    if (declared.length > 512 * 1024 * 1024) throw new FlockError('MEDIA_TOO_LARGE');
    const mediaId = `m_${randomBytes(12).toString('base64url')}`;
    const key = `test-uploads/${owner}/${mediaId}/original`;
    this.items.set(mediaId, { owner, key, declared, state: 'uploading', sniffed: [], completed: [], abandoned: 0 });
    return { mediaId, key };
  }

  async sniffed(owner: string, mediaId: string, head: Buffer): Promise<void> {
    const item = this.item(mediaId);
    if (item.owner !== owner) throw new FlockError('MEDIA_NOT_FOUND');
    item.sniffed.push(Buffer.from(head));
    if (head.subarray(0, NOT_MEDIA.length).equals(NOT_MEDIA)) throw new FlockError('MEDIA_UNSUPPORTED_TYPE');
  }

  async complete(mediaId: string, object: { key: string; bytes: number }): Promise<void> {
    const item = this.item(mediaId);
    if (this.failNextComplete) {
      this.failNextComplete = false;
      throw new FlockError('SERVICE_UNAVAILABLE');
    }
    item.completed.push(object);
    item.state = 'uploaded';
  }

  async abandon(mediaId: string): Promise<void> {
    const item = this.items.get(mediaId);
    if (!item) return;
    item.abandoned++;
    item.state = 'removed';
  }

  item(mediaId: string): MediaItem {
    const item = this.items.get(mediaId);
    if (!item) throw new FlockError('MEDIA_NOT_FOUND');
    return item;
  }
}

export const s3Settings = {
  endpoint: process.env.S3_ENDPOINT,
  region: requireEnv('S3_REGION'),
  bucket: requireEnv('S3_BUCKET'),
  forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true',
  credentials: process.env.S3_ACCESS_KEY_ID ? { accessKeyId: requireEnv('S3_ACCESS_KEY_ID'), secretAccessKey: requireEnv('S3_SECRET_ACCESS_KEY') } : undefined,
};
export const testS3 = createS3Client(s3Settings);

/** The object's bytes. */
export async function readObject(key: string): Promise<Buffer> {
  const got = await testS3.send(new GetObjectCommand({ Bucket: s3Settings.bucket, Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

/** Every key under `prefix`. */
export async function keysUnder(prefix: string): Promise<string[]> {
  const listed = await testS3.send(new ListObjectsV2Command({ Bucket: s3Settings.bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((o) => o.Key ?? '');
}

/**
 * Whether S3 still has the multipart upload: ListMultipartUploads where the
 * server has it; on the suite's embedded s3rver, which lists none, whether
 * the directory it keeps the upload's parts in is still there.
 */
export async function multipartExists(key: string, uploadId: string): Promise<boolean> {
  try {
    const listed = await testS3.send(new ListMultipartUploadsCommand({ Bucket: s3Settings.bucket, Prefix: key }));
    return (listed.Uploads ?? []).some((u) => u.UploadId === uploadId);
  } catch (err) {
    if (!(err instanceof Error && err.name === 'NotImplemented')) throw err;
  }
  return fs.existsSync(path.join(requireEnv('FLOCK_TEST_DATA_DIR'), 's3', s3Settings.bucket, '._S3rver_uploads', uploadId));
}
