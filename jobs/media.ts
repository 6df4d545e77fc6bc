// The media jobs. mediaProcess turns an uploaded original into what clients
// play or show: it claims the media item (MediaActor) under an attempt id of
// its own, downloads the original to a local directory, runs the video or
// image pipeline (media/video.ts, media/image.ts), uploads the outputs under
// the attempt's prefix and tells the actor it finished; only an attempt that
// still holds the claim wins, and what any other attempt wrote is deleted.
// The claim is renewed while the run goes on; a node that dies mid-run lets
// it lapse, and Agenda runs the job again on another node once its lock
// lapses too (jobs/policy.ts). mediaPurge deletes objects.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MediaActor } from '../actors/contracts/media.ts';
import { FlockError, isFlockError } from '../kernel/errors.ts';
import { processImageFile } from '../media/image.ts';
import { deleteKeys, deletePrefix, downloadToFile, uploadFiles } from '../media/objects.ts';
import { processVideoFile } from '../media/video.ts';
import type { MediaOutput } from '../models/media.ts';
import type { JobHandler } from './context.ts';

/** Refusals that no retry changes: the media fails with the code. */
const FINAL_CODES = new Set(['MEDIA_UNSUPPORTED_TYPE', 'MEDIA_CODEC_UNSUPPORTED', 'MEDIA_TOO_LARGE', 'MEDIA_PROCESSING_FAILED']);

/** Progress is told to the actor (and so the owner) in steps of at least this many percent. */
const PROGRESS_STEP = 5;

export const mediaProcess: JobHandler<'mediaProcess'> = async ({ mediaId }, ctx) => {
  const { actors, bucket, limits, ffmpegPath, ffprobePath, attemptLeaseMs } = ctx.media;
  const media = actors.ref(MediaActor, mediaId);
  const attemptId = randomBytes(12).toString('base64url');
  let claim;
  try {
    claim = await media.ask('claim', { attemptId, leaseMs: attemptLeaseMs });
  } catch (err) {
    if (isFlockError(err) && err.code === 'MEDIA_NOT_FOUND') return; // deleted meanwhile
    throw err;
  }
  if (!claim.go) {
    // Done, failed or deleted: nothing to do. Held by a live attempt: try again once its lease may have lapsed.
    if (claim.state === 'processing') throw new FlockError('MEDIA_NOT_READY', 'another run holds the media', { details: { state: claim.state } });
    return;
  }
  const { container, sourceKey, outputPrefix } = claim;
  const log = ctx.log.child({ mediaId, attemptId });
  log.info({ container }, 'processing media');
  const work = await mkdtemp(path.join(ctx.media.workDir || os.tmpdir(), `flock-media-${mediaId}-`));
  // The run stops when the node shuts down, or when it learns it lost the claim.
  const abort = new AbortController();
  const onShutdown = () => abort.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onShutdown, { once: true });
  if (ctx.signal.aborted) onShutdown();
  const claimLost = () => new FlockError('MEDIA_NOT_READY', 'this run lost its claim on the media', { details: { state: 'processing' } });
  /** The media was deleted meanwhile: the run stops; anything else is logged and the next renewal tries again. */
  const gone = (what: string) => (err: unknown) => {
    if (isFlockError(err) && err.code === 'MEDIA_NOT_FOUND') abort.abort(err);
    else log.warn({ err }, what);
  };
  let told = 0;
  let finishing = false;
  let output: MediaOutput | undefined;
  let telling = Promise.resolve();
  const tell = (percent: number) => {
    if (percent < told + PROGRESS_STEP && percent < 100) return;
    told = percent;
    telling = telling
      .then(async () => {
        const { current } = await media.ask('progress', { attemptId, percent });
        if (!current) abort.abort(claimLost());
      })
      .catch(gone('progress not recorded'));
  };
  // Renew the claim and the job's lock while the run goes on.
  const renew = setInterval(
    () => {
      void media
        .ask('claim', { attemptId, leaseMs: attemptLeaseMs })
        .then((again) => {
          if (!again.go) abort.abort(claimLost());
        })
        .catch(gone('claim not renewed'));
      void ctx.progress(told).catch(() => {});
    },
    Math.max(1_000, Math.floor(attemptLeaseMs / 3)),
  );
  try {
    if (!container) throw new FlockError('MEDIA_UNSUPPORTED_TYPE', 'the content was never recognised');
    const source = path.join(work, 'source');
    const out = path.join(work, 'out');
    await mkdir(out);
    await downloadToFile(bucket, sourceKey, source, abort.signal);
    if (container === 'mp4' || container === 'matroska') {
      output = await processVideoFile(source, out, { ffmpegPath, ffprobePath, container, limits: limits.video, onProgress: tell, signal: abort.signal });
    } else {
      output = await processImageFile(source, out, { limits: limits.image, signal: abort.signal });
    }
    await telling;
    const made = output;
    await uploadFiles(bucket, outputPrefix, out, made.files, abort.signal);
    // From here the outputs may be the media's: a failure is retried (finish is idempotent), never cleaned up.
    finishing = true;
    const { won } = await media.ask('finish', { attemptId, output: made });
    // One set of outputs: the winner sweeps what other attempts wrote; a loser removes only its own.
    if (won) await deletePrefix(bucket, `media/${mediaId}/`, outputPrefix);
    else await deletePrefix(bucket, outputPrefix);
    log.info({ won, files: made.files.length }, 'media processed');
  } catch (err) {
    if (finishing && output) {
      // The answer to finish was lost, or what followed it failed: asking again says whether it won.
      const made = output;
      const again = await media.ask('finish', { attemptId, output: made }).catch(() => undefined);
      if (again?.won) return;
      // Lost for sure: its outputs go. Unknown (the actor did not answer): they stay for the retry to settle.
      if (again) await deletePrefix(bucket, outputPrefix).catch(() => 0);
      throw err;
    }
    if (isFlockError(err) && FINAL_CODES.has(err.code)) {
      await media.ask('fail', { attemptId, code: err.code, message: err.message.slice(0, 500) });
      log.info({ code: err.code }, 'media refused');
      return;
    }
    await deletePrefix(bucket, outputPrefix).catch(() => 0);
    if (ctx.lastTry) {
      // No run follows: the media fails instead of staying in processing.
      await media.ask('fail', { attemptId, code: 'MEDIA_PROCESSING_FAILED', message: 'processing failed on every try' });
      log.warn({ err }, 'media processing failed on its last try');
      return;
    }
    // Let go of the claim, so the retry claims at once instead of waiting for it to lapse.
    await media.ask('release', { attemptId }).catch(() => undefined);
    throw err;
  } finally {
    clearInterval(renew);
    ctx.signal.removeEventListener('abort', onShutdown);
    await rm(work, { recursive: true, force: true });
  }
};

export const mediaExpireUploads: JobHandler<'mediaExpireUploads'> = async (_data, ctx) => {
  const { expired } = await ctx.media.expireUploads(new Date());
  if (expired > 0) ctx.log.info({ expired }, 'expired uploads given up');
};

export const mediaPurge: JobHandler<'mediaPurge'> = async ({ keys, prefixes }, ctx) => {
  const { bucket } = ctx.media;
  await deleteKeys(bucket, keys);
  for (const prefix of prefixes) await deletePrefix(bucket, prefix);
};
