// The media side of the upload bench's server (bench/media/upload-server.ts):
// a small in-memory UploadLifecycle that accepts every upload and every head,
// and keeps the keys of completed objects so the bench can delete them
// between runs. A node's lifecycle (server/media.ts over MediaActor) also
// checks quotas in Redis and tells the owner's stream; that is not the
// transport the bench measures.
import { randomBytes } from 'node:crypto';
import type { UploadDeclaration, UploadLifecycle } from '../../media/upload-lifecycle.ts';

export class BenchLifecycle implements UploadLifecycle {
  private readonly uploading = new Map<string, string>();
  /** Keys of objects completed since the last takeCompleted(). */
  private completed: string[] = [];

  constructor(private readonly keyPrefix: string) {}

  async begin(_owner: string, _declared: UploadDeclaration): Promise<{ mediaId: string; key: string }> {
    const mediaId = `m_${randomBytes(12).toString('base64url')}`;
    const key = `${this.keyPrefix}/${mediaId}/original`;
    this.uploading.set(mediaId, key);
    return { mediaId, key };
  }

  async sniffed(): Promise<void> {}

  async complete(mediaId: string, object: { key: string; bytes: number }): Promise<void> {
    // Idempotent, as the interface asks: a second call finds nothing to move.
    if (!this.uploading.delete(mediaId)) return;
    this.completed.push(object.key);
  }

  async abandon(mediaId: string): Promise<void> {
    this.uploading.delete(mediaId);
  }

  takeCompleted(): string[] {
    const keys = this.completed;
    this.completed = [];
    return keys;
  }
}
