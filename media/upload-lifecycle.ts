// What the upload transports (tus, routes/uploads.ts; direct presigned multipart,
// media/direct-upload.ts; the storage webhook, routes/storage-webhook.ts) ask of the media side. The
// node implements it over MediaActor (server/media.ts); the transports only
// move bytes into S3 and say when an object is whole.
import type { MediaKind } from './types.ts';

export interface UploadDeclaration {
  /** Upload-Length: the whole file's size in bytes. */
  length: number;
  /** The kind the client says it uploads, if it says; the content decides. */
  kind?: MediaKind | undefined;
  /** The client's file name, kept for display only. */
  filename?: string | undefined;
}

export interface UploadLifecycle {
  /**
   * A new upload by `owner`: checks the size limits and the owner's quotas
   * (bytes per day, concurrent uploads) and creates the media item in state
   * `uploading`. Throws a FlockError (MEDIA_TOO_LARGE, MEDIA_QUOTA_EXCEEDED,
   * MEDIA_UPLOAD_INVALID) and creates nothing otherwise.
   */
  begin(owner: string, declared: UploadDeclaration): Promise<{ mediaId: string; key: string }>;
  /**
   * The first bytes of the file are stored (at least 4 KiB, or the whole
   * file if smaller): the content decides the type. Throws
   * MEDIA_UNSUPPORTED_TYPE when it is not media; the transport then deletes
   * what it stored and the upload is over.
   */
  sniffed(owner: string, mediaId: string, head: Buffer): Promise<void>;
  /**
   * The whole object is in S3 at `key` with `bytes` bytes: the media item
   * becomes `uploaded` and processing is scheduled, once however often this
   * is called (tus completion, a direct upload's complete call, the storage
   * webhook).
   */
  complete(mediaId: string, object: { key: string; bytes: number }): Promise<void>;
  /** The upload was terminated or expired: the media item is removed and its quota share returned. Idempotent. */
  abandon(mediaId: string): Promise<void>;
}
