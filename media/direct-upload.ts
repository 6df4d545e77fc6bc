// Direct uploads: the client PUTs the parts of an S3 multipart upload itself,
// to presigned URLs, and no byte passes through a node. The state lives in
// `media_uploads` beside tus uploads (mode 'direct'). Creating one begins the
// media item and presigns every part; completing it assembles the object,
// checks its size against the declared length, shows its head to
// lifecycle.sniffed and calls lifecycle.complete once, whichever of the
// client's complete call and the storage webhook (routes/storage-webhook.ts)
// gets there first; the other finds it done. A node that dies between S3's
// complete and lifecycle.complete is relieved by the webhook or by the
// client calling complete again.
import { z } from 'zod';
import { FlockError, isFlockError } from '../kernel/errors.ts';
import { mediaIdInput } from '../kernel/ids.ts';
import { SNIFF_BYTES, isContentRefusal } from './part-writer.ts';
import { MEDIA_KINDS } from './types.ts';
import { LOCK_LEASE_MS } from './upload-lock.ts';
import { s3ErrorName } from './upload-objects.ts';
import type { UploadRecord } from './upload-records.ts';
import { DEFAULT_PART_SIZE, MIN_PART_SIZE, type UploadStore } from './upload-store.ts';
import { randomUUID } from 'node:crypto';

/** How long the presigned part URLs are valid. */
export const PRESIGN_EXPIRY_SECONDS = 3600;
/** S3's limits: parts per upload, bytes per part. */
export const MAX_PARTS = 10_000;
export const MAX_PART_SIZE = 5 * 1024 ** 3;
/** After the URLs expire, complete may still be called this long. */
const COMPLETE_GRACE_MS = 15 * 60_000;
/** The default part size keeps an upload at or under this many parts (and URLs). */
const DEFAULT_PART_COUNT = 1_000;
/** How long a complete call waits for the webhook (or another call) that is completing the same upload. */
const SETTLE_WAIT_MS = 10_000;

export const createDirectUploadInput = z.object({
  length: z.number().int().positive(),
  kind: z.enum(MEDIA_KINDS).optional(),
  filename: z.string().min(1).max(255).optional(),
  partSize: z.number().int().min(MIN_PART_SIZE).max(MAX_PART_SIZE).optional(),
});
export type CreateDirectUploadInput = z.input<typeof createDirectUploadInput>;

export const completeDirectUploadInput = z.object({
  mediaId: mediaIdInput,
  parts: z
    .array(z.object({ number: z.number().int().min(1).max(MAX_PARTS), etag: z.string().min(1).max(128) }))
    .min(1)
    .max(MAX_PARTS),
});
export type DirectUploadPart = z.output<typeof completeDirectUploadInput>['parts'][number];

export interface DirectUploadTicket {
  mediaId: string;
  /** The S3 multipart upload id. */
  uploadId: string;
  /** Every part is this size but the last. */
  partSize: number;
  /** PUT part `number`'s bytes to `url`; keep the ETag header of each answer for complete. */
  parts: { number: number; url: string }[];
  /** When the URLs stop working, epoch ms. */
  expiresAt: number;
}

export class DirectUploads {
  constructor(private readonly store: UploadStore) {}

  /** Begins the media item, starts its multipart upload and presigns every part (MEDIA_UPLOAD_INVALID when the part size cannot cover the length in 10,000 parts). */
  async createDirectUpload(owner: string, request: CreateDirectUploadInput): Promise<DirectUploadTicket> {
    const parsed = createDirectUploadInput.safeParse(request);
    if (!parsed.success) throw new FlockError('MEDIA_UPLOAD_INVALID', parsed.error.issues[0]?.message);
    const { length, kind, filename } = parsed.data;
    const partSize = parsed.data.partSize ?? defaultPartSize(length);
    const count = Math.ceil(length / partSize);
    if (count > MAX_PARTS)
      throw new FlockError('MEDIA_UPLOAD_INVALID', `${partSize}-byte parts make ${count} parts; S3 takes ${MAX_PARTS}`, {
        details: { minPartSize: Math.ceil(length / MAX_PARTS) },
      });
    const expiresAt = Date.now() + PRESIGN_EXPIRY_SECONDS * 1000;
    const record = await this.store.open(owner, {
      length,
      metadata: { ...(kind && { kind }), ...(filename && { filename }) },
      mode: 'direct',
      partSize,
      expiresAt: new Date(expiresAt + COMPLETE_GRACE_MS),
    });
    const numbers = Array.from({ length: count }, (_, i) => i + 1);
    const parts = await Promise.all(
      numbers.map(async (number) => ({ number, url: await this.store.objects.presignPart(record.key, record.s3UploadId, number, PRESIGN_EXPIRY_SECONDS) })),
    );
    return { mediaId: record._id, uploadId: record.s3UploadId, partSize, parts, expiresAt };
  }

  /**
   * Assembles the object from the client's parts (every part, by number and
   * ETag), then checks and hands it over (see settle). Idempotent: a call
   * for an upload already complete, by an earlier call or the webhook,
   * returns as the first did.
   */
  async completeDirectUpload(owner: string, mediaId: string, parts: readonly DirectUploadPart[]): Promise<{ mediaId: string; bytes: number }> {
    const parsed = completeDirectUploadInput.safeParse({ mediaId, parts });
    if (!parsed.success) throw new FlockError('MEDIA_UPLOAD_INVALID', parsed.error.issues[0]?.message);
    const record = await this.store.visible(owner, mediaId, 'direct');
    const done = { mediaId, bytes: record.length };
    if (record.state === 'completed') return done;
    const expected = Math.ceil(record.length / record.partSize);
    const numbers = new Set(parsed.data.parts.map((p) => p.number));
    if (parsed.data.parts.length !== expected || numbers.size !== expected || [...numbers].some((n) => n > expected))
      throw new FlockError('MEDIA_UPLOAD_INVALID', `Send every part, 1 to ${expected}, once`, { details: { parts: expected } });
    await this.settle(record, true, async () => {
      try {
        await this.store.objects.completeMultipart(record.key, record.s3UploadId, parsed.data.parts, record.length);
      } catch (err) {
        const name = s3ErrorName(err);
        if (['InvalidPart', 'InvalidPartOrder', 'EntityTooSmall', 'NoSuchUpload', 'MalformedXML'].includes(name))
          throw new FlockError('MEDIA_UPLOAD_INVALID', `S3 refused the parts (${name})`, { cause: err });
        throw err;
      }
    });
    return done;
  }

  /** Drops an unfinished direct upload: the multipart upload is aborted and the media item abandoned. */
  async abortDirectUpload(owner: string, mediaId: string): Promise<void> {
    await this.store.terminate(owner, mediaId, 'direct');
  }

  /**
   * The storage webhook's news that an object was created at `key`:
   * `settled` when it finished a direct upload, `ignored` for any other key
   * or an upload already settled (or being settled), `refused` when the
   * object was not acceptable (the upload is then terminated).
   */
  async objectCreated(key: string): Promise<'settled' | 'ignored' | 'refused'> {
    const record = await this.store.records.byKey(key, 'direct');
    if (!record || record.state !== 'uploading' || record.expiresAt.getTime() <= Date.now()) return 'ignored';
    try {
      return (await this.settle(record, false)) ? 'settled' : 'ignored';
    } catch (err) {
      if (!isFlockError(err) || !err.code.startsWith('MEDIA_')) throw err;
      // Refused (and terminated), or not whole in S3 after all (a notification for another object at the key).
      return (await this.store.records.get(record._id))?.state === 'terminated' ? 'refused' : 'ignored';
    }
  }

  /**
   * Under the upload's lock, so that of the client's call and the webhook one
   * does it while the other waits for it (`wait`, up to SETTLE_WAIT_MS) or
   * leaves it: `assemble` (S3's complete, on the client's call), then the
   * object's size must be the declared length (else it is deleted,
   * MEDIA_UPLOAD_INVALID), its head goes to lifecycle.sniffed, and
   * lifecycle.complete is called. True when this call did it.
   */
  private async settle(record: UploadRecord, wait: boolean, assemble?: () => Promise<void>): Promise<boolean> {
    const { store } = this;
    const mediaId = record._id;
    const holder = `direct/${randomUUID()}`;
    const giveUpAt = Date.now() + SETTLE_WAIT_MS;
    while (!(await store.records.lock(mediaId, holder, { now: new Date(), leaseMs: LOCK_LEASE_MS, states: ['uploading'] }))) {
      const now = await store.records.get(mediaId);
      if (!now) throw new FlockError('MEDIA_NOT_FOUND');
      if (now.state === 'completed') return false;
      if (now.state === 'terminated') throw new FlockError('MEDIA_UPLOAD_EXPIRED', 'The upload was refused or terminated');
      if (!wait) return false;
      if (Date.now() > giveUpAt) throw new FlockError('MEDIA_UPLOAD_CONFLICT', 'Another request is completing this upload; call complete again');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    try {
      await assemble?.();
      const size = await store.objects.size(record.key);
      if (size === null) throw new FlockError('MEDIA_UPLOAD_INVALID', 'The object is not in storage: complete its multipart upload first');
      if (size !== record.length) {
        await store.refuse(record, 'uploading');
        throw new FlockError('MEDIA_UPLOAD_INVALID', `The object has ${size} bytes, ${record.length} were declared`, {
          details: { declared: record.length, stored: size },
        });
      }
      if (!record.sniffed) {
        const head = await store.objects.head(record.key, Math.min(SNIFF_BYTES, record.length));
        try {
          await store.lifecycle.sniffed(record.owner, mediaId, head);
        } catch (err) {
          if (isContentRefusal(err)) await store.refuse(record, 'uploading');
          throw err;
        }
        await store.records.change(mediaId, holder, 'uploading', { sniffed: true });
      }
      await store.lifecycle.complete(mediaId, { key: record.key, bytes: record.length });
      await store.records.change(mediaId, holder, 'uploading', { state: 'completed', offset: record.length });
      return true;
    } finally {
      await store.records.release(mediaId, holder).catch(() => undefined);
    }
  }
}

/** At least 8 MiB, and large enough for DEFAULT_PART_COUNT parts, in whole MiB. */
function defaultPartSize(length: number): number {
  const mib = 1024 * 1024;
  return Math.max(DEFAULT_PART_SIZE, Math.ceil(length / DEFAULT_PART_COUNT / mib) * mib);
}
