// Reading media documents (only MediaActor writes them): for views, and to
// check that a post or message carries only its author's own media.
import type { Connection } from 'mongoose';
import { FlockError } from '../kernel/errors.ts';
import { MEDIA_COLLECTION, mediaFields, type MediaFields } from '../models/media.ts';
import type { PlaybackSigner } from './playback.ts';
import { toMediaView, type MediaView } from './views.ts';

export class MediaReads {
  constructor(
    private readonly connection: Connection,
    readonly signer: PlaybackSigner,
  ) {}

  private get collection() {
    return this.connection.collection<{ _id: string }>(MEDIA_COLLECTION);
  }

  /** The media documents that exist among `ids` (deleted ones included). */
  async get(ids: readonly string[]): Promise<Map<string, MediaFields>> {
    const found = new Map<string, MediaFields>();
    if (ids.length === 0) return found;
    // Point reads: the embedded database answers `_id` lookups by index, not `$in` (see kernel/by-ids.ts).
    const docs = await Promise.all([...new Set(ids)].map((_id) => this.collection.findOne({ _id })));
    for (const doc of docs) {
      if (!doc) continue;
      const parsed = mediaFields.safeParse(doc);
      if (parsed.success) found.set(doc._id, parsed.data);
    }
    return found;
  }

  /**
   * Views for a viewer who may see these media (the caller checked), or only
   * those of `owner` when given, in the order asked; missing and deleted ones
   * left out.
   */
  async views(ids: readonly string[], owner?: string): Promise<MediaView[]> {
    const docs = await this.get(ids);
    const now = Date.now();
    return ids.flatMap((id) => {
      const doc = docs.get(id);
      return doc && doc.state !== 'deleted' && (owner === undefined || doc.owner === owner) ? [toMediaView(id, doc, this.signer, now)] : [];
    });
  }

  /** Throws MEDIA_NOT_FOUND unless every id is a media item of `owner` that is not deleted or failed (it may still be processing). */
  async assertUsable(owner: string, ids: readonly string[]): Promise<void> {
    const docs = await this.get(ids);
    for (const id of ids) {
      const doc = docs.get(id);
      if (!doc || doc.owner !== owner || doc.state === 'deleted' || doc.state === 'failed' || doc.state === 'uploading')
        throw new FlockError('MEDIA_NOT_FOUND', `${id} is not an uploaded media item of yours`, {
          details: { mediaId: id, state: doc?.owner === owner ? doc.state : null },
        });
    }
  }
}
