// Media items: one document per upload, owned and written only by its
// MediaActor (actors/media.ts), fenced by the actor's activation epoch.
//
// States: uploading -> uploaded -> processing -> ready | failed, and deleted
// from any of them. `attempt` names the processing run that may write the
// outputs (a job that crashed leaves it to expire, and the next run takes
// over with a new id under a new output prefix, so one set of outputs wins).
//
// Access path: a media item by id (posts, messages, playback), `_id`; no
// other query reads the collection, so it has no other index.
import { z } from 'zod';

export const MEDIA_COLLECTION = 'media';

export const MEDIA_KINDS = ['image', 'video'] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

/** Containers Flock accepts, decided from the file's first bytes (media/sniff.ts), never from its name or Content-Type. */
export const CONTAINERS = ['jpeg', 'png', 'webp', 'gif', 'heif', 'avif', 'mp4', 'matroska'] as const;
export type Container = (typeof CONTAINERS)[number];

/** Per-kind limits (from configuration). */
export interface MediaLimits {
  image: { maxBytes: number; maxPixels: number };
  video: { maxBytes: number; maxSeconds: number; maxPixels: number };
}

/** One rendition of a video's adaptive ladder. */
export const renditionSchema = z.object({
  height: z.number().int().positive(),
  width: z.number().int().positive(),
  /** Target video bit rate, bits per second. */
  videoBitrate: z.number().int().positive(),
  /** Its HLS media playlist, relative to the output prefix. */
  playlist: z.string(),
});
export type Rendition = z.output<typeof renditionSchema>;

/** One image variant (a width in one format). */
export const variantSchema = z.object({
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  format: z.enum(['webp', 'avif', 'jpeg']),
  /** Relative to the output prefix. */
  file: z.string(),
  bytes: z.number().int().nonnegative(),
});
export type Variant = z.output<typeof variantSchema>;

/** What processing produced, every path relative to the output prefix in S3. */
export const mediaOutputSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('video'),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    durationMs: z.number().int().nonnegative(),
    hasAudio: z.boolean(),
    /** HLS master playlist and DASH MPD over the same CMAF segments. */
    hls: z.string(),
    dash: z.string(),
    renditions: z.array(renditionSchema),
    poster: z.string(),
    /** Sprite sheet and its WebVTT cues (`sprite.jpg#xywh=x,y,w,h`). */
    storyboard: z.object({ image: z.string(), vtt: z.string(), interval: z.number().positive(), columns: z.number().int(), rows: z.number().int() }),
    blurhash: z.string(),
    /** Every object written, for deletion. */
    files: z.array(z.string()),
  }),
  z.object({
    kind: z.literal('image'),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    variants: z.array(variantSchema),
    blurhash: z.string(),
    files: z.array(z.string()),
  }),
]);
export type MediaOutput = z.output<typeof mediaOutputSchema>;

export const MEDIA_STATES = ['uploading', 'uploaded', 'processing', 'ready', 'failed', 'deleted'] as const;
export type MediaState = (typeof MEDIA_STATES)[number];

export const mediaFields = z.object({
  owner: z.string(),
  /** What the client declared, until the content decides (sniffed). */
  kind: z.enum(MEDIA_KINDS).nullable(),
  container: z.enum(CONTAINERS).nullable(),
  state: z.enum(MEDIA_STATES),
  filename: z.string().nullable(),
  /** Upload-Length as declared; `bytes` once the whole object is stored. */
  declaredBytes: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative().nullable(),
  /** The uploaded original in S3. */
  sourceKey: z.string(),
  /** Processing progress, 0-100, only ever grows within an attempt. */
  percent: z.number().int().min(0).max(100),
  attempt: z.object({ id: z.string(), until: z.date() }).nullable(),
  /** Where the outputs of the winning attempt are (S3 key prefix, ending in '/'). */
  outputPrefix: z.string().nullable(),
  output: mediaOutputSchema.nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
  deletedAt: z.date().nullable(),
});
export type MediaFields = z.output<typeof mediaFields>;
