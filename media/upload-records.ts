// The `media_uploads` collection: one document per upload in progress (tus or
// direct), and the single-document conditional updates that move it on. The
// embedded database is FerretDB v1 (no transactions, change streams or TTL
// indexes), so every change names what it expects in its filter: a write lock
// held by one request (`lock.holder`), the state, the offset. Two nodes racing
// on one upload cannot both advance it: the loser's update matches nothing.
// Stored keys are fixed names (no client-chosen keys, none with '.' or '$'),
// and `parts` is an array of objects, never of arrays.
import type { Collection, Db, Filter } from 'mongodb';
import type { MediaKind } from './types.ts';

export const UPLOADS_COLLECTION = 'media_uploads';

/** tus: bytes come through this node (routes/uploads.ts); direct: the client puts parts to S3 itself (media/direct-upload.ts). */
export type UploadMode = 'tus' | 'direct';

/**
 * uploading: bytes are arriving. completing: every byte is in S3 and the
 * object is being assembled (a node that died here is relieved by the next
 * request). completed: the media side has it. terminated: deleted, expired or
 * refused; the document stays as a tombstone (410) until it expires.
 */
export type UploadState = 'uploading' | 'completing' | 'completed' | 'terminated';

/** One part of the S3 multipart upload, recorded as soon as S3 has it. */
export interface StoredPart {
  number: number;
  etag: string;
  size: number;
}

/** What the client said about the file (Upload-Metadata, or the direct-upload request); fixed names only. */
export interface UploadMetadata {
  filename?: string;
  filetype?: string;
  kind?: MediaKind;
}

export interface UploadRecord {
  /** The media id lifecycle.begin gave. */
  _id: string;
  mode: UploadMode;
  owner: string;
  /** The S3 object key lifecycle.begin gave; the object exists once the multipart upload is complete. */
  key: string;
  /** Upload-Length. */
  length: number;
  /** Bytes stored: every part's size plus pendingSize (tus); 0 until complete (direct). */
  offset: number;
  s3UploadId: string;
  /** Size of every part but the last. */
  partSize: number;
  parts: StoredPart[];
  /** An object holding the bytes after the last part (fewer than partSize), read back by the next PATCH. */
  pendingKey: string;
  /** How many of pendingKey's bytes count (a node that died after writing it but before saying so left more). */
  pendingSize: number;
  metadata: UploadMetadata;
  /** lifecycle.sniffed accepted the head of the file. */
  sniffed: boolean;
  state: UploadState;
  /** S3 holds nothing of a terminated upload any more (its multipart upload aborted, its pending object deleted). */
  cleaned: boolean;
  createdAt: Date;
  expiresAt: Date;
  /** The request writing the upload, until `until` (renewed while it works; a dead node's lock lapses). */
  lock: { holder: string; until: Date } | null;
}

/** What a holder of the lock may change in one update. */
export type LockedChange = Partial<Pick<UploadRecord, 'offset' | 'pendingSize' | 'sniffed' | 'state' | 'cleaned'>>;

export class UploadRecords {
  readonly collection: Collection<UploadRecord>;

  constructor(db: Db) {
    this.collection = db.collection<UploadRecord>(UPLOADS_COLLECTION);
  }

  /** The indexes the storage webhook (by key) and the expiry sweep (by expiresAt) look documents up with. */
  async init(): Promise<void> {
    await this.collection.createIndex({ key: 1 });
    await this.collection.createIndex({ expiresAt: 1 });
  }

  async insert(record: UploadRecord): Promise<void> {
    await this.collection.insertOne(record);
  }

  get(id: string): Promise<UploadRecord | null> {
    return this.collection.findOne({ _id: id });
  }

  /** The direct upload whose object is stored at `key`, if one is still on record. */
  byKey(key: string, mode: UploadMode): Promise<UploadRecord | null> {
    return this.collection.findOne({ key, mode });
  }

  /**
   * Takes the write lock of an upload in one of `states` whose lock is free or
   * lapsed, and (when given) at `offset`, not yet expired unless `expired` is
   * set (the sweep). False when another request holds it or the upload moved on.
   */
  async lock(
    id: string,
    holder: string,
    options: { now: Date; leaseMs: number; states: readonly UploadState[]; offset?: number; expired?: boolean },
  ): Promise<boolean> {
    const { now } = options;
    const filter: Filter<UploadRecord> = {
      _id: id,
      state: { $in: [...options.states] },
      expiresAt: options.expired ? { $lte: now } : { $gt: now },
      $or: [{ lock: null }, { 'lock.until': { $lte: now } }],
      ...(options.offset !== undefined && { offset: options.offset }),
    };
    const taken = await this.collection.updateOne(filter, { $set: { lock: { holder, until: new Date(now.getTime() + options.leaseMs) } } });
    return taken.modifiedCount === 1;
  }

  /** Pushes the lock's end further while its holder works; false when the holder lost it. */
  async renew(id: string, holder: string, until: Date): Promise<boolean> {
    const renewed = await this.collection.updateOne({ _id: id, 'lock.holder': holder }, { $set: { 'lock.until': until } });
    return renewed.matchedCount === 1;
  }

  async release(id: string, holder: string): Promise<void> {
    await this.collection.updateOne({ _id: id, 'lock.holder': holder }, { $set: { lock: null } });
  }

  /** A change by the lock's holder while the upload is in `state`, with a part S3 now holds if one is given; false when the lock or the state was lost. */
  async change(id: string, holder: string, state: UploadState, change: LockedChange, part?: StoredPart): Promise<boolean> {
    const changed = await this.collection.updateOne(
      { _id: id, 'lock.holder': holder, state },
      part === undefined ? { $set: change } : { $set: change, $push: { parts: part } },
    );
    return changed.matchedCount === 1;
  }

  /** Ends an upload in `from` (whoever holds its lock): the caller then cleans S3. False when it was not in `from`. */
  async terminate(id: string, owner: string, from: readonly UploadState[]): Promise<boolean> {
    const ended = await this.collection.updateOne({ _id: id, owner, state: { $in: [...from] } }, { $set: { state: 'terminated', lock: null } });
    return ended.modifiedCount === 1;
  }

  async markCleaned(id: string): Promise<void> {
    await this.collection.updateOne({ _id: id }, { $set: { cleaned: true } });
  }

  /** Up to `limit` uploads expired at `now`, oldest first. */
  expired(now: Date, limit: number): Promise<UploadRecord[]> {
    return this.collection
      .find({ expiresAt: { $lte: now } })
      .sort({ expiresAt: 1 })
      .limit(limit)
      .toArray();
  }

  /** Turns an expired upload `holder` holds into a tombstone (cleaned) until `until`. */
  async entomb(id: string, holder: string, until: Date): Promise<void> {
    await this.collection.updateOne({ _id: id, 'lock.holder': holder }, { $set: { state: 'terminated', cleaned: true, expiresAt: until, lock: null } });
  }

  /** Deletes the document if `holder` still holds its lock. */
  async remove(id: string, holder: string): Promise<void> {
    await this.collection.deleteOne({ _id: id, 'lock.holder': holder });
  }
}
