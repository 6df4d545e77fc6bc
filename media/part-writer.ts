// One PATCH body into S3, by the holder of the upload's lock, in memory that
// does not grow with the file: two part-sized buffers, one filling from the
// body (after the incomplete part the last request left, read back from S3)
// while the other is stored as a part (UploadPart), so the client is not
// held up while S3 takes a part. Each part is recorded as soon as S3 has it,
// in order; the file's head goes to lifecycle.sniffed as soon as it is here;
// at the body's end (or the client's going away) the bytes after the last
// part are stored as the incomplete part, or, when they are the file's last,
// become the last part and the upload turns `completing` for the store to
// finish.
//
// Part n always holds bytes [(n-1)·partSize, n·partSize) of the file, so a
// request that lost its lock to another (a pause past the lease) can only
// ever write the same bytes as its successor into the same part.
import { FlockError, isFlockError, toFlockError } from '../kernel/errors.ts';
import type { UploadLifecycle } from './upload-lifecycle.ts';
import { lostLock, type Lease } from './upload-lock.ts';
import type { UploadObjects } from './upload-objects.ts';
import type { UploadRecord, UploadRecords, UploadState } from './upload-records.ts';

/** How much of the file's head lifecycle.sniffed sees (all of a smaller file). */
export const SNIFF_BYTES = 4096;

/** A request body as it arrives (routes/define.ts BodyStream). */
export interface BodyChunks extends AsyncIterable<Buffer> {
  /** Content-Length, when the client sent one. */
  readonly declaredLength: number | null;
}

/** What the writer needs of the upload store. */
export interface PartWriterDeps {
  objects: UploadObjects;
  records: UploadRecords;
  lifecycle: UploadLifecycle;
  /** Terminates an upload whose head lifecycle.sniffed refused and deletes what S3 holds of it. */
  refuse(record: UploadRecord, from: UploadState): Promise<void>;
}

/** Writes `body` from the record's offset on; the offset stored after, and whether the file is whole (the upload is then `completing`). */
export async function writeParts(
  deps: PartWriterDeps,
  record: UploadRecord,
  holder: string,
  lease: Lease,
  body: BodyChunks,
): Promise<{ offset: number; completed: boolean }> {
  const { objects, records, lifecycle } = deps;
  const { _id: mediaId, key, length, partSize } = record;
  /** Where the buffer being filled starts in the file. */
  let bufferStart = record.parts.length * partSize;
  if (bufferStart + record.pendingSize !== record.offset) throw new FlockError('SERVER_INTERNAL', `upload ${mediaId} has parts and an offset that disagree`);
  let buffer: Buffer = Buffer.allocUnsafe(Math.min(partSize, length - bufferStart));
  /** The buffer of the part in flight, filled again once that part is recorded. */
  let spare: Buffer | undefined;
  let inFlight: Promise<void> | undefined;
  let fill = record.pendingSize;
  await objects.readInto(record.pendingKey, buffer, fill);
  const pendingAtStart = fill;
  let nextPart = record.parts.length + 1;
  let sniffed = record.sniffed;

  const held = (changed: boolean) => {
    if (!changed) throw lostLock();
  };
  const sniff = async () => {
    const head = Buffer.from(buffer.subarray(0, Math.min(SNIFF_BYTES, length)));
    try {
      await lifecycle.sniffed(record.owner, mediaId, head);
    } catch (err) {
      // The content was refused: the upload is over. Anything else (a service away) leaves it to be resumed.
      if (isContentRefusal(err)) await deps.refuse(record, 'uploading');
      throw err;
    }
    held(await records.change(mediaId, holder, 'uploading', { sniffed: true }));
    sniffed = true;
  };
  const send = async (part: Buffer, number: number, start: number, last: boolean) => {
    if (lease.lost) throw lostLock();
    const etag = await objects.uploadPart(key, record.s3UploadId, number, part);
    const end = start + part.length;
    const change = last ? { offset: length, pendingSize: 0, state: 'completing' as const } : { offset: end, pendingSize: 0 };
    held(await records.change(mediaId, holder, 'uploading', change, { number, etag, size: part.length }));
  };
  /** Waits for the part in flight to be stored and recorded (its failure is thrown here). */
  const landed = async () => {
    const flying = inFlight;
    inFlight = undefined;
    await flying;
  };
  /** Sends the buffer as the next part while the next one fills: one part in flight at a time, recorded in order. */
  const storePart = async (size: number, last: boolean) => {
    await landed();
    inFlight = send(size === buffer.length ? buffer : buffer.subarray(0, size), nextPart, bufferStart, last);
    inFlight.catch(() => undefined); // observed by landed()
    nextPart++;
    bufferStart += size;
    fill = 0;
    if (!last) [buffer, spare] = [spare ?? Buffer.allocUnsafe(Math.min(partSize, length - bufferStart)), buffer];
  };

  const chunks = body[Symbol.asyncIterator]();
  let bodyError: unknown;
  let whole = false;
  while (!whole) {
    let next: IteratorResult<Buffer>;
    try {
      next = await chunks.next();
    } catch (err) {
      bodyError = err;
      break;
    }
    if (next.done) break;
    const chunk = next.value;
    for (let at = 0; at < chunk.length && !whole;) {
      // Bytes past Upload-Length are not read (tusd does the same).
      const n = Math.min(buffer.length - fill, length - bufferStart - fill, chunk.length - at);
      chunk.copy(buffer, fill, at, at + n);
      fill += n;
      at += n;
      if (!sniffed && bufferStart === 0 && fill >= Math.min(SNIFF_BYTES, length)) await sniff();
      if (bufferStart + fill === length) whole = true;
      else if (fill === buffer.length) await storePart(fill, false);
    }
  }
  if (whole) {
    await chunks.return?.();
    await storePart(fill, true);
    await landed();
    return { offset: length, completed: true };
  }
  await landed();
  const grew = nextPart > record.parts.length + 1 ? fill > 0 : fill > pendingAtStart;
  if (grew) {
    // Always the bytes from bufferStart on: a node that died before recording this left a longer object whose head is still right.
    await objects.put(record.pendingKey, buffer.subarray(0, fill));
    held(await records.change(mediaId, holder, 'uploading', { offset: bufferStart + fill, pendingSize: fill }));
  }
  if (bodyError !== undefined) throw toFlockError(bodyError);
  return { offset: bufferStart + fill, completed: false };
}

/** What lifecycle.sniffed throws when the content itself is refused (not a passing failure). */
export function isContentRefusal(err: unknown): boolean {
  return isFlockError(err) && (err.code === 'MEDIA_UNSUPPORTED_TYPE' || err.code === 'MEDIA_TOO_LARGE');
}
