// The IPC of the upload scenario of bench/media.ts: what the bench asks its
// two child processes (bench/media/upload-server.ts, the tus routes on an
// HTTP engine; bench/media/upload-client.ts, the uploader) and what they
// answer, as schemas both sides parse with. Every request carries an id and
// gets one reply with the same id (bench/lib/ipc.ts `call`); `error` on a
// reply is the failure's message.
import { z } from 'zod';

/** The one access token the bench server accepts, and whose session it is. */
export const BENCH_TOKEN = 'bench-media-token';
export const BENCH_USER = 'u_bench_media';

const id = z.number().int();

/** `{n, ms}` per S3 command or MongoDB command shape: how many, and their total time as the client saw it. */
export const tallySchema = z.record(z.string(), z.object({ n: z.number(), ms: z.number() }));
export type Tally = z.infer<typeof tallySchema>;

export const serverRequestSchema = z.discriminatedUnion('op', [
  /** Starts a measured upload: zeroes the S3 and MongoDB tallies and the CPU mark. */
  z.object({ id, op: z.literal('reset') }),
  /** The tallies since `reset`, the server's CPU time meanwhile, and how much of the time it had an S3 or MongoDB command in flight. */
  z.object({ id, op: z.literal('take') }),
  /** Collects garbage, then takes the RSS baseline and restarts the peaks (the sampled ones and the kernel's VmHWM). */
  z.object({ id, op: z.literal('rss-start') }),
  /** The peaks since `rss-start`. */
  z.object({ id, op: z.literal('rss-stop') }),
  /** Deletes the objects of the uploads completed so far (outside any timed span: s3rver's disk is not endless). */
  z.object({ id, op: z.literal('clean') }),
]);
export type ServerRequest = z.infer<typeof serverRequestSchema>;

export const serverReadySchema = z.object({ ready: z.literal(true), port: z.number().int(), engine: z.string() });

/** windowMs: since `reset`; busyMs: how much of it some S3 or MongoDB command was in flight. */
export const takeReplySchema = z.object({ id, s3: tallySchema, db: tallySchema, cpuMs: z.number(), windowMs: z.number(), busyMs: z.number() });

/** Bytes, all of them: RSS from process.memoryUsage() every 50 ms; hwm from /proc/self/status VmHWM (0 where there is none). */
export const rssReplySchema = z.object({
  id,
  baselineRss: z.number(),
  peakRss: z.number(),
  endRss: z.number(),
  baselineHwm: z.number(),
  peakHwm: z.number(),
  baselineHeapUsed: z.number(),
  peakHeapUsed: z.number(),
  baselineExternal: z.number(),
  peakExternal: z.number(),
  baselineArrayBuffers: z.number(),
  peakArrayBuffers: z.number(),
  samples: z.number(),
  gc: z.boolean(),
});
export type RssReply = z.infer<typeof rssReplySchema>;

export const clientRequestSchema = z.discriminatedUnion('op', [
  /** A tus upload of `bytes` through the server at `base`: POST /uploads, then PATCHes of `patchBytes`. */
  z.object({ id, op: z.literal('tus'), base: z.string(), token: z.string(), bytes: z.number().int(), patchBytes: z.number().int() }),
  /** One PutObject of `bytes` to `key`, straight to S3. */
  z.object({ id, op: z.literal('put'), key: z.string(), bytes: z.number().int() }),
  /** CreateMultipartUpload, UploadPart of `partSize` one after another, CompleteMultipartUpload, straight to S3. */
  z.object({ id, op: z.literal('multipart'), key: z.string(), bytes: z.number().int(), partSize: z.number().int() }),
  /** Deletes these objects. */
  z.object({ id, op: z.literal('remove'), keys: z.array(z.string()) }),
]);
export type ClientRequest = z.infer<typeof clientRequestSchema>;

export const clientReadySchema = z.object({ ready: z.literal(true), sourceBytes: z.number().int() });

/** One upload as the client timed it: the whole of it, and its steps (ms). */
export const uploadReplySchema = z.object({ id, wallMs: z.number(), steps: z.record(z.string(), z.number()) });
export type UploadReply = z.infer<typeof uploadReplySchema>;

export const doneReplySchema = z.object({ id });
