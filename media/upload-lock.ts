// The write lock of one upload as its holder keeps it: renewed while the
// request works, and the conflicts a request meets when it cannot have it.
import { FlockError } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import type { UploadRecords } from './upload-records.ts';

/** How long a write lock holds without renewal: a dead node's upload is free again after this. */
export const LOCK_LEASE_MS = 30_000;

/** Keeps a write lock from lapsing while its request works (renewed every third of LOCK_LEASE_MS); `lost` once another request took it over. */
export class Lease {
  lost = false;
  private readonly timer: NodeJS.Timeout;

  constructor(records: UploadRecords, mediaId: string, holder: string, log: Logger) {
    this.timer = setInterval(() => {
      records.renew(mediaId, holder, new Date(Date.now() + LOCK_LEASE_MS)).then(
        (held) => {
          if (!held) this.lost = true;
        },
        (err: unknown) => log.warn({ err, mediaId }, 'upload lock not renewed'),
      );
    }, LOCK_LEASE_MS / 3);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export function offsetConflict(offset: number): FlockError {
  return new FlockError('MEDIA_UPLOAD_CONFLICT', `Upload-Offset does not match the ${offset} bytes stored`, { details: { offset } });
}

export function lostLock(): FlockError {
  return new FlockError('MEDIA_UPLOAD_CONFLICT', 'Another request took over this upload');
}
