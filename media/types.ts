// The shapes the media pipeline's parts share: what an upload is, what
// processing makes of it, and the limits both enforce. The media document
// itself (models/media.ts) is owned by MediaActor (actors/media.ts).
import { z } from 'zod';

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
