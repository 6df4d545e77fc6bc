// Resumable uploads: their state in `media_uploads` (media/upload-records.ts),
// their bytes in an S3 multipart upload (media/upload-objects.ts), and what
// tus (routes/uploads.ts) and direct uploads (media/direct-upload.ts) do with them:
// open, look up, write a PATCH body (media/part-writer.ts), finish, terminate,
// and expire.
//
// Crash windows. A node that dies mid-PATCH loses at most the part it was
// sending and the bytes after it: each part is recorded as soon as S3 has it,
// the lock lapses after LOCK_LEASE_MS, and the client resumes from HEAD's
// offset on any node. One that dies while finishing leaves the upload
// `completing` with offset == length; the next HEAD, PATCH or expiry sweep
// finishes it (S3's complete and lifecycle.complete are both idempotent).
// One that dies terminating leaves a tombstone whose S3 state the sweep
// cleans at expiry.
import { randomUUID } from 'node:crypto';
import type { Db } from 'mongodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { FlockError, isFlockError, SERVICE_RETRY_AFTER_MS } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import { writeParts, type BodyChunks } from './part-writer.ts';
import { Lease, LOCK_LEASE_MS, lostLock, offsetConflict } from './upload-lock.ts';
import { UploadObjects } from './upload-objects.ts';
import { UploadRecords, type UploadMetadata, type UploadMode, type UploadRecord, type UploadState } from './upload-records.ts';
import type { UploadLifecycle } from './upload-lifecycle.ts';

/** S3's smallest part but the last. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
/** MEDIA_UPLOAD_EXPIRY's default: a day from creation. */
export const DEFAULT_UPLOAD_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** How long an expired upload answers MEDIA_UPLOAD_EXPIRED before its document goes. */
export const TOMBSTONE_MS = 24 * 60 * 60 * 1000;

export interface UploadStoreOptions {
  db: Db;
  s3: S3Client;
  bucket: string;
  lifecycle: UploadLifecycle;
  /** Names this node in lock holders. */
  nodeId: string;
  log: Logger;
  /** The largest Upload-Length accepted, in bytes (Tus-Max-Size). */
  maxLength: number;
  /** MEDIA_UPLOAD_EXPIRY: how long after its creation an unfinished upload is given up (default 24 h). */
  expiryMs?: number;
  /** The size of every part but the last (default 8 MiB, at least 5 MiB); a PATCH holds two in memory. */
  partSize?: number;
  /** PATCH bodies this node writes at once (default 16; beyond, SERVICE_UNAVAILABLE): at most 2 × partSize × this in part buffers. */
  maxActiveWrites?: number;
}

/** An upload as HEAD shows it. */
export interface UploadStatus {
  mediaId: string;
  length: number;
  offset: number;
  state: UploadState;
  expiresAt: Date;
  metadata: UploadMetadata;
}

export interface WriteResult {
  offset: number;
  length: number;
  completed: boolean;
  expiresAt: Date;
}

export class UploadStore {
  readonly records: UploadRecords;
  readonly objects: UploadObjects;
  readonly lifecycle: UploadLifecycle;
  readonly log: Logger;
  readonly maxLength: number;
  readonly expiryMs: number;
  readonly partSize: number;
  private readonly nodeId: string;
  private readonly maxActiveWrites: number;
  private activeWrites = 0;

  constructor(options: UploadStoreOptions) {
    this.records = new UploadRecords(options.db);
    this.objects = new UploadObjects(options.s3, options.bucket);
    this.lifecycle = options.lifecycle;
    this.log = options.log;
    this.nodeId = options.nodeId;
    this.maxLength = options.maxLength;
    this.expiryMs = options.expiryMs ?? DEFAULT_UPLOAD_EXPIRY_MS;
    this.partSize = options.partSize ?? DEFAULT_PART_SIZE;
    this.maxActiveWrites = options.maxActiveWrites ?? 16;
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART_SIZE) throw new Error(`partSize must be at least ${MIN_PART_SIZE} bytes`);
    if (!Number.isSafeInteger(this.maxLength) || this.maxLength < 1) throw new Error('maxLength must be a positive integer');
    if (!(this.expiryMs > 0)) throw new Error('expiryMs must be positive');
  }

  async init(): Promise<void> {
    await this.records.init();
  }

  /** A new tus upload of `length` bytes by `owner`: the media item (lifecycle.begin) and its multipart upload. */
  async create(owner: string, declared: { length: number; metadata: UploadMetadata }): Promise<{ mediaId: string; expiresAt: Date }> {
    const record = await this.open(owner, { ...declared, mode: 'tus', partSize: this.partSize, expiresAt: new Date(Date.now() + this.expiryMs) });
    return { mediaId: record._id, expiresAt: record.expiresAt };
  }

  /** Begins the media item, starts its multipart upload and records both; undoes what it did when a step fails. */
  async open(owner: string, options: { length: number; metadata: UploadMetadata; mode: UploadMode; partSize: number; expiresAt: Date }): Promise<UploadRecord> {
    const { length, metadata } = options;
    if (!Number.isSafeInteger(length) || length < 1) throw new FlockError('MEDIA_UPLOAD_INVALID', 'Upload-Length must be a positive number of bytes');
    if (length > this.maxLength)
      throw new FlockError('MEDIA_TOO_LARGE', `Uploads are limited to ${this.maxLength} bytes`, { details: { limit: 'bytes', value: this.maxLength } });
    const { mediaId, key } = await this.lifecycle.begin(owner, { length, kind: metadata.kind, filename: metadata.filename });
    let uploadId: string | undefined;
    try {
      uploadId = await this.objects.createMultipart(key);
      const record: UploadRecord = {
        _id: mediaId,
        mode: options.mode,
        owner,
        key,
        length,
        offset: 0,
        s3UploadId: uploadId,
        partSize: options.partSize,
        parts: [],
        pendingKey: `${key}.part`,
        pendingSize: 0,
        metadata,
        sniffed: false,
        state: 'uploading',
        cleaned: false,
        createdAt: new Date(),
        expiresAt: options.expiresAt,
        lock: null,
      };
      await this.records.insert(record);
      return record;
    } catch (err) {
      if (uploadId !== undefined)
        await this.objects.abortMultipart(key, uploadId).catch((e: unknown) => this.log.warn({ err: e, mediaId }, 'multipart not aborted'));
      await this.lifecycle.abandon(mediaId).catch((e: unknown) => this.log.warn({ err: e, mediaId }, 'upload not abandoned'));
      throw err;
    }
  }

  /** The upload as its owner sees it; an upload left `completing` by a dead node is finished first. */
  async status(owner: string, mediaId: string): Promise<UploadStatus> {
    let record = await this.visible(owner, mediaId, 'tus');
    if (record.state === 'completing') record = (await this.recover(record)) ?? record;
    return { mediaId, length: record.length, offset: record.offset, state: record.state, expiresAt: record.expiresAt, metadata: record.metadata };
  }

  /**
   * Writes a PATCH body that starts at `offset`: takes the upload's lock
   * (MEDIA_UPLOAD_CONFLICT when another request holds it or the offset is not
   * the stored one), stores the body part by part, and finishes the upload
   * when its last byte arrives. What arrived before the client went away is
   * kept; the body's error is thrown after that.
   */
  async write(owner: string, mediaId: string, offset: number, body: BodyChunks): Promise<WriteResult> {
    const seen = await this.visible(owner, mediaId, 'tus');
    if (offset !== seen.offset) throw offsetConflict(seen.offset);
    const result = (record: UploadRecord, at: number): WriteResult => ({
      offset: at,
      length: record.length,
      completed: at === record.length,
      expiresAt: record.expiresAt,
    });
    if (seen.state !== 'uploading') {
      // offset == length: done, or done but for the finishing a dead node left.
      if (seen.state === 'completing') await this.recover(seen);
      return result(seen, seen.offset);
    }
    if (body.declaredLength !== null && offset + body.declaredLength > seen.length)
      throw new FlockError('REQUEST_TOO_LARGE', `The body goes past Upload-Length (${seen.length} bytes)`, { details: { maxBytes: seen.length - offset } });
    if (this.activeWrites >= this.maxActiveWrites)
      throw new FlockError('SERVICE_UNAVAILABLE', 'This node writes as many uploads as it may at once', { details: { retryAfterMs: SERVICE_RETRY_AFTER_MS } });
    this.activeWrites++;
    const holder = this.holder();
    try {
      if (!(await this.records.lock(mediaId, holder, { now: new Date(), leaseMs: LOCK_LEASE_MS, states: ['uploading'], offset })))
        throw await this.whyNotLocked(mediaId, offset);
      const lease = new Lease(this.records, mediaId, holder, this.log);
      try {
        const record = await this.records.get(mediaId);
        if (!record || record.lock?.holder !== holder) throw lostLock();
        const written = await writeParts(this, record, holder, lease, body);
        if (written.completed) await this.finish(mediaId, holder);
        return result(record, written.offset);
      } finally {
        lease.stop();
      }
    } finally {
      this.activeWrites--;
      await this.records.release(mediaId, holder).catch((err: unknown) => this.log.warn({ err, mediaId }, 'upload lock not released'));
    }
  }

  /**
   * The holder of a `completing` upload's lock assembles the object, tells
   * the media side, and marks it completed. Safe to repeat.
   */
  async finish(mediaId: string, holder: string): Promise<void> {
    const record = await this.records.get(mediaId);
    if (!record || record.lock?.holder !== holder || record.state !== 'completing') throw lostLock();
    await this.objects.completeMultipart(record.key, record.s3UploadId, record.parts, record.length);
    await this.lifecycle.complete(mediaId, { key: record.key, bytes: record.length });
    if (!(await this.records.change(mediaId, holder, 'completing', { state: 'completed', offset: record.length }))) throw lostLock();
    await this.objects.remove(record.pendingKey).catch((err: unknown) => this.log.warn({ err, mediaId }, 'incomplete part not deleted'));
  }

  /** Ends an upload its owner no longer wants: the multipart upload and the incomplete part go, the media item is abandoned. */
  async terminate(owner: string, mediaId: string, mode: UploadMode): Promise<void> {
    const record = await this.visible(owner, mediaId, mode);
    if (record.state !== 'uploading' || !(await this.records.terminate(mediaId, owner, ['uploading']))) {
      const now = await this.visible(owner, mediaId, mode);
      throw new FlockError('MEDIA_NOT_READY', 'The upload is complete; delete the media instead', { details: { state: now.state } });
    }
    await this.release(record);
  }

  /**
   * A refused upload (its head is not media, its object has the wrong size):
   * terminated, its S3 state deleted, the media item abandoned. `from` is the
   * state the caller found it in.
   */
  async refuse(record: UploadRecord, from: UploadState): Promise<void> {
    await this.records.terminate(record._id, record.owner, [from]);
    await this.release(record, true);
  }

  /**
   * Aborts a terminated upload's multipart upload, deletes its incomplete
   * part (and the object, when it was assembled), abandons the media item.
   * Failures are logged: the expiry sweep tries again.
   */
  private async release(record: UploadRecord, removeObject = false): Promise<void> {
    const mediaId = record._id;
    try {
      await this.objects.abortMultipart(record.key, record.s3UploadId);
      await this.objects.remove(record.pendingKey);
      if (removeObject) await this.objects.remove(record.key);
      await this.records.markCleaned(mediaId);
    } catch (err) {
      this.log.warn({ err, mediaId }, 'terminated upload not cleaned from S3; the expiry sweep retries');
    }
    await this.lifecycle.abandon(mediaId).catch((err: unknown) => this.log.warn({ err, mediaId }, 'terminated upload not abandoned; the expiry sweep retries'));
  }

  /**
   * Gives up every upload whose expiry is at or before `now`: unfinished ones
   * have their multipart upload aborted, their incomplete part deleted and
   * their media item abandoned, and stay as tombstones for TOMBSTONE_MS;
   * finished ones and tombstones go. One node at a time takes each document
   * (its lock); a failure leaves it for the next sweep. The count of uploads
   * given up or removed.
   */
  async expireUploads(now: Date): Promise<{ expired: number }> {
    let expired = 0;
    const skipped = new Set<string>();
    for (;;) {
      const batch = (await this.records.expired(now, 50 + skipped.size)).filter((r) => !skipped.has(r._id));
      if (batch.length === 0) return { expired };
      for (const record of batch) {
        const holder = this.holder('sweep');
        if (
          (await this.records.lock(record._id, holder, {
            now,
            leaseMs: LOCK_LEASE_MS,
            states: ['uploading', 'completing', 'completed', 'terminated'],
            expired: true,
          })) &&
          (await this.expire(record, holder, now))
        ) {
          expired++;
        } else {
          skipped.add(record._id);
        }
      }
      if (skipped.size > 1_000) return { expired };
    }
  }

  private async expire(record: UploadRecord, holder: string, now: Date): Promise<boolean> {
    const mediaId = record._id;
    try {
      let finished = record.state === 'completed';
      if (record.state === 'completing') {
        // Every byte is stored: finish it. Given up only when its media is gone; a passing failure waits for the next sweep
        // (the whole object may already be the media's original).
        const outcome = await this.finish(mediaId, holder).then(
          () => 'finished' as const,
          (err: unknown) => (isFlockError(err) && err.code === 'MEDIA_NOT_FOUND' ? ('gone' as const) : err),
        );
        if (outcome !== 'finished' && outcome !== 'gone') {
          this.log.warn({ err: outcome, mediaId }, 'expired upload could not be finished yet; the next sweep tries again');
          await this.records.release(mediaId, holder).catch(() => undefined);
          return false;
        }
        finished = outcome === 'finished';
      }
      if (finished) {
        await this.objects.remove(record.pendingKey);
      } else {
        if (!record.cleaned) {
          await this.objects.abortMultipart(record.key, record.s3UploadId);
          await this.objects.remove(record.key);
        }
        // Even when cleaned: a PATCH still running at its termination may have stored its incomplete part after.
        await this.objects.remove(record.pendingKey);
        await this.lifecycle.abandon(mediaId);
        if (record.state !== 'terminated') {
          // A tombstone, so that its client hears MEDIA_UPLOAD_EXPIRED (410) rather than MEDIA_NOT_FOUND for a while.
          await this.records.entomb(mediaId, holder, new Date(now.getTime() + TOMBSTONE_MS));
          return true;
        }
      }
      await this.records.remove(mediaId, holder);
      return true;
    } catch (err) {
      this.log.warn({ err, mediaId }, 'expired upload not removed; the next sweep retries');
      await this.records.release(mediaId, holder).catch(() => undefined);
      return false;
    }
  }

  /** The upload `owner` may see in `mode`: MEDIA_NOT_FOUND for anyone else's or none, MEDIA_UPLOAD_EXPIRED once terminated or expired. */
  async visible(owner: string, mediaId: string, mode: UploadMode): Promise<UploadRecord> {
    const record = await this.records.get(mediaId);
    if (!record || record.owner !== owner || record.mode !== mode) throw new FlockError('MEDIA_NOT_FOUND');
    if (record.state === 'terminated') throw new FlockError('MEDIA_UPLOAD_EXPIRED');
    if (record.state !== 'completed' && record.expiresAt.getTime() <= Date.now()) throw new FlockError('MEDIA_UPLOAD_EXPIRED');
    return record;
  }

  /** Finishes an upload a dead node left `completing`, when its lock has lapsed; the record after, or undefined when another request holds it. */
  private async recover(record: UploadRecord): Promise<UploadRecord | undefined> {
    const holder = this.holder();
    if (!(await this.records.lock(record._id, holder, { now: new Date(), leaseMs: LOCK_LEASE_MS, states: ['completing'] }))) return undefined;
    try {
      await this.finish(record._id, holder);
    } catch (err) {
      this.log.warn({ err, mediaId: record._id }, 'upload left completing not finished');
    } finally {
      await this.records.release(record._id, holder).catch(() => undefined);
    }
    return (await this.records.get(record._id)) ?? undefined;
  }

  private async whyNotLocked(mediaId: string, offset: number): Promise<FlockError> {
    const record = await this.records.get(mediaId);
    if (!record) return new FlockError('MEDIA_NOT_FOUND');
    if (record.state === 'terminated' || record.expiresAt.getTime() <= Date.now()) return new FlockError('MEDIA_UPLOAD_EXPIRED');
    if (record.offset !== offset) return offsetConflict(record.offset);
    return new FlockError('MEDIA_UPLOAD_CONFLICT', 'Another request is writing this upload', { details: { offset: record.offset } });
  }

  private holder(role = 'write'): string {
    return `${this.nodeId}/${role}/${randomUUID()}`;
  }
}
