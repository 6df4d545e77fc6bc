// The S3 side of uploads, and the only upload module that knows the S3 SDK:
// multipart uploads (create, parts, an idempotent complete, abort), the small
// objects a tus upload keeps its incomplete part in, presigned part URLs for
// direct uploads, and reading an object's size and first bytes back.
//
// Development and the tests run on s3rver, which implements neither
// AbortMultipartUpload nor ListMultipartUploads. There, `abort` frees an
// upload's stored parts the only way that server offers: it completes the
// upload with one empty part and deletes the object it made. S3 and MinIO
// take the real abort.
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';

export class UploadObjects {
  constructor(
    readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  /** Starts a multipart upload to `key`; its upload id. */
  async createMultipart(key: string): Promise<string> {
    const created = await this.s3.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: 'application/octet-stream' }));
    if (!created.UploadId) throw new Error(`S3 started a multipart upload of ${key} without an upload id`);
    return created.UploadId;
  }

  /** Stores one part; its ETag. `body` may be reused once this resolves. */
  async uploadPart(key: string, uploadId: string, number: number, body: Buffer): Promise<string> {
    const stored = await this.s3.send(
      new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: number, Body: body, ContentLength: body.length }),
    );
    if (!stored.ETag) throw new Error(`S3 stored part ${number} of ${key} without an ETag`);
    return stored.ETag;
  }

  /**
   * Assembles the object from `parts`. Idempotent: when S3 refuses because
   * the upload is already complete (a second call, the storage webhook's
   * path, a node that died after completing), the object of `length` bytes
   * at `key` is the answer; otherwise S3's error is thrown.
   */
  async completeMultipart(key: string, uploadId: string, parts: readonly { number: number; etag: string }[], length: number): Promise<void> {
    try {
      await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: [...parts].sort((a, b) => a.number - b.number).map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
        }),
      );
    } catch (err) {
      if ((await this.size(key)) === length) return;
      throw err;
    }
  }

  /** Drops a multipart upload and its parts; an upload S3 no longer knows is already gone. */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      const name = s3ErrorName(err);
      if (name === 'NoSuchUpload') return;
      if (name !== 'MethodNotAllowed' && name !== 'NotImplemented') throw err;
      // s3rver: see the header. Completing an upload it no longer has fails, which is fine too.
      try {
        const etag = await this.uploadPart(key, uploadId, 1, Buffer.alloc(0));
        await this.s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: [{ PartNumber: 1, ETag: etag }] },
          }),
        );
        await this.remove(key);
      } catch {
        // Nothing left to free.
      }
    }
  }

  async put(key: string, body: Buffer): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length, ContentType: 'application/octet-stream' }),
    );
  }

  /** Reads the first `size` bytes of `key` into `target` (an incomplete part, never more than a part's size); fails if it holds fewer. */
  async readInto(key: string, target: Buffer, size: number): Promise<void> {
    if (size === 0) return;
    const got = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=0-${size - 1}` }));
    const body = got.Body;
    if (!(body instanceof Readable)) throw new Error(`S3 answered ${key} without a readable body`);
    let filled = 0;
    for await (const received of body) {
      const chunk: unknown = received;
      if (!(chunk instanceof Uint8Array)) throw new Error(`S3 answered ${key} with a body that is not bytes`);
      const take = Math.min(chunk.length, size - filled);
      target.set(chunk.subarray(0, take), filled);
      filled += take;
      if (filled === size) break;
    }
    if (filled < size) throw new Error(`${key} holds ${filled} bytes, ${size} were recorded`);
  }

  /** The first `bytes` bytes of `key`. */
  async head(key: string, bytes: number): Promise<Buffer> {
    const got = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=0-${bytes - 1}` }));
    if (!got.Body) throw new Error(`S3 answered ${key} without a body`);
    return Buffer.from(await got.Body.transformToByteArray()).subarray(0, bytes);
  }

  /** The size of the object at `key`; null when there is none. */
  async size(key: string): Promise<number | null> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (s3ErrorName(err) === 'NotFound' || s3ErrorName(err) === 'NoSuchKey') return null;
      throw err;
    }
  }

  /** Deletes `key` (nothing when it does not exist). */
  async remove(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** A URL the client PUTs part `number` to, valid for `expiresInSeconds`. */
  presignPart(key: string, uploadId: string, number: number, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.s3, new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: number }), {
      expiresIn: expiresInSeconds,
    });
  }
}

/** The S3 error's name (NoSuchUpload, InvalidPart, NotFound...), '' for anything else. */
export function s3ErrorName(err: unknown): string {
  return err instanceof Error ? err.name : '';
}
