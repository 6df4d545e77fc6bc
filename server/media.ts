// The media pipeline put together: what MediaActor's effects do (tell the
// owner, schedule processing, purge objects), the upload lifecycle the
// transports report to (quota, size limits, the content decides the kind),
// the upload store and direct uploads over S3, and what the jobs use.
import { randomBytes } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Connection } from 'mongoose';
import type { Db } from 'mongodb';
import { MediaActor } from '../actors/contracts/media.ts';
import type { ActorSystem } from '../actors/ref.ts';
import type { MediaEffects } from '../actors/services.ts';
import type { JobRunner } from '../jobs/agenda.ts';
import type { MediaJobServices } from '../jobs/context.ts';
import { FlockError } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import type { Redis } from '../kernel/redis.ts';
import { DirectUploads } from '../media/direct-upload.ts';
import { createPlaybackSigner } from '../media/playback.ts';
import { PlaybackFiles } from '../media/playback-files.ts';
import { createUploadQuota } from '../media/quota.ts';
import { MediaReads } from '../media/reads.ts';
import { sniff } from '../media/sniff.ts';
import type { UploadLifecycle } from '../media/upload-lifecycle.ts';
import { UploadStore } from '../media/upload-store.ts';
import { toMediaView } from '../media/views.ts';
import type { MediaLimits } from '../models/media.ts';
import type { StreamDelivery } from '../streams/catalogue.ts';
import type { Config } from './config.ts';

/** A processing run's claim lasts this long without renewal (renewed every third of it); below the job's lock lifetime. */
const ATTEMPT_LEASE_MS = 20_000;

export interface MediaParts {
  effects: MediaEffects;
  reads: MediaReads;
  lifecycle: UploadLifecycle;
  uploads: UploadStore;
  direct: DirectUploads;
  playback: PlaybackFiles;
  jobs: () => MediaJobServices;
}

export interface MediaWiring {
  config: Config['media'];
  secret: string | Uint8Array;
  connection: Connection;
  db: Db;
  redis: Redis;
  prefix: string;
  s3: S3Client;
  bucket: string;
  nodeId: string;
  ffmpegPath: string;
  ffprobePath: string;
  jobs: Pick<JobRunner, 'now'>;
  /** Resolved once the runtime and delivery exist (they start after the effects are handed to the runtime). */
  actors: () => ActorSystem;
  deliver: StreamDelivery['deliver'];
  log: Logger;
}

export async function createMedia(w: MediaWiring): Promise<MediaParts> {
  const limits: MediaLimits = w.config.limits;
  const signer = createPlaybackSigner({ secret: w.secret, ttlSeconds: w.config.urlTtlSeconds, baseUrl: w.config.publicUrl });
  const reads = new MediaReads(w.connection, signer);
  const quota = createUploadQuota({
    redis: w.redis,
    prefix: w.prefix,
    settings: { bytesPerDay: w.config.bytesPerDay, concurrent: w.config.concurrentUploads, uploadTtlMs: w.config.uploadExpirySeconds * 1000 },
  });
  const media = (id: string) => w.actors().ref(MediaActor, id);
  const maxBytes = Math.max(limits.image.maxBytes, limits.video.maxBytes);

  const effects: MediaEffects = {
    async notify(mediaId, doc, event) {
      switch (event) {
        case 'uploaded':
          return w.deliver(doc.owner, 'media:uploaded', { mediaId, kind: doc.kind, bytes: doc.bytes ?? doc.declaredBytes });
        case 'processing':
          return w.deliver(doc.owner, 'media:processing', { mediaId, percent: doc.percent });
        case 'ready':
          return w.deliver(doc.owner, 'media:ready', { media: toMediaView(mediaId, doc, signer) });
        case 'failed':
          return w.deliver(doc.owner, 'media:failed', { mediaId, error: doc.error ?? { code: 'MEDIA_PROCESSING_FAILED', message: 'failed' } });
      }
    },
    async process(mediaId) {
      await w.jobs.now('mediaProcess', { mediaId });
    },
    async purge(mediaId, keys, prefixes) {
      await w.jobs.now('mediaPurge', { mediaId, keys: [...keys], prefixes: [...prefixes] });
    },
  };

  const lifecycle: UploadLifecycle = {
    async begin(owner, declared) {
      const limit = declared.kind ? limits[declared.kind].maxBytes : maxBytes;
      if (declared.length > limit) throw new FlockError('MEDIA_TOO_LARGE', `at most ${limit} bytes`, { details: { limit: 'bytes', max: limit } });
      const mediaId = `m_${randomBytes(16).toString('base64url')}`;
      const key = `uploads/${mediaId}`;
      await quota.charge(owner, mediaId, declared.length);
      try {
        await media(mediaId).ask('create', {
          owner,
          declaredBytes: declared.length,
          kind: declared.kind ?? null,
          filename: declared.filename?.slice(0, 255) ?? null,
          sourceKey: key,
        });
      } catch (err) {
        await quota.release(owner, mediaId, declared.length).catch(() => {});
        throw err;
      }
      return { mediaId, key };
    },
    async sniffed(owner, mediaId, head) {
      const found = sniff(head);
      const refuse = async (err: FlockError): Promise<never> => {
        const { owner: holder } = await media(mediaId).ask('fail', { attemptId: null, code: err.code, message: err.message.slice(0, 500) });
        // Nothing of a refused file is kept: its whole declared length goes back to the owner's daily bytes.
        const [refused] = [...(await reads.get([mediaId])).values()];
        await quota.release(holder, mediaId, refused?.declaredBytes ?? 0);
        throw err;
      };
      if (!found) return refuse(new FlockError('MEDIA_UNSUPPORTED_TYPE'));
      const [doc] = [...(await reads.get([mediaId])).values()];
      if (!doc || doc.owner !== owner) throw new FlockError('MEDIA_NOT_FOUND');
      const max = limits[found.kind].maxBytes;
      if (doc.declaredBytes > max)
        return refuse(new FlockError('MEDIA_TOO_LARGE', `a ${found.kind} may have at most ${max} bytes`, { details: { limit: 'bytes', max } }));
      await media(mediaId).ask('sniffed', { kind: found.kind, container: found.container });
    },
    async complete(mediaId, object) {
      const { owner } = await media(mediaId).ask('uploaded', { bytes: object.bytes });
      await quota.release(owner, mediaId, 0);
    },
    async abandon(mediaId) {
      try {
        const { owner } = await media(mediaId).ask('remove', { userId: null });
        const [doc] = [...(await reads.get([mediaId])).values()];
        // Idempotent: only the first release of an upload in progress frees its slot and returns its bytes.
        await quota.release(owner, mediaId, doc?.bytes === null ? (doc?.declaredBytes ?? 0) : 0);
      } catch (err) {
        if (!(err instanceof FlockError && err.code === 'MEDIA_NOT_FOUND')) throw err;
      }
    },
  };

  const uploads = new UploadStore({
    db: w.db,
    s3: w.s3,
    bucket: w.bucket,
    lifecycle,
    nodeId: w.nodeId,
    log: w.log,
    maxLength: maxBytes,
    expiryMs: w.config.uploadExpirySeconds * 1000,
  });
  await uploads.init();
  const direct = new DirectUploads(uploads);
  const jobServices = (): MediaJobServices => ({
    actors: w.actors(),
    bucket: { s3: w.s3, name: w.bucket },
    ffmpegPath: w.ffmpegPath,
    ffprobePath: w.ffprobePath,
    limits,
    workDir: w.config.workDir ?? '',
    attemptLeaseMs: ATTEMPT_LEASE_MS,
    expireUploads: (now) => uploads.expireUploads(now),
  });
  const playback = new PlaybackFiles(reads, signer, w.s3, w.bucket);
  return { effects, reads, lifecycle, uploads, direct, playback, jobs: jobServices };
}
