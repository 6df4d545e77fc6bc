// What clients see of a media item: its state and, once ready, what to show
// and play. Playback URLs are signed for the viewer the view is built for
// (media/playback.ts) and expire at `playback.expiresAt`; `media:get` gives
// fresh ones.
import { z } from 'zod';
import { MEDIA_STATES, type MediaFields } from '../models/media.ts';
import type { PlaybackSigner } from './playback.ts';
import { MEDIA_KINDS } from '../models/media.ts';

const playbackView = z.object({
  expiresAt: z.string().describe('ISO time after which these URLs stop working'),
  hls: z.string().optional().describe('HLS master playlist (CMAF)'),
  dash: z.string().optional().describe('DASH MPD over the same segments'),
  poster: z.string().optional(),
  storyboard: z.object({ image: z.string(), vtt: z.string() }).optional().describe('Sprite sheet and WebVTT cues for scrubbing previews'),
  renditions: z.array(z.object({ width: z.number().int(), height: z.number().int(), bitrate: z.number().int() })).optional(),
  variants: z
    .array(z.object({ url: z.string(), width: z.number().int(), height: z.number().int(), format: z.enum(['webp', 'avif', 'jpeg']) }))
    .optional()
    .describe('Image variants, smallest first; pick the first format the client decodes'),
});

export const mediaView = z.object({
  mediaId: z.string(),
  kind: z.enum(MEDIA_KINDS).nullable(),
  state: z.enum(MEDIA_STATES),
  percent: z.number().int().describe('Processing progress, 0-100'),
  width: z.number().int().optional(),
  height: z.number().int().optional(),
  durationMs: z.number().int().optional(),
  blurhash: z.string().optional().describe('A placeholder to show until the media loads'),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  playback: playbackView.nullable().describe('Only when ready'),
});
export type MediaView = z.output<typeof mediaView>;

export function toMediaView(mediaId: string, doc: MediaFields, signer: PlaybackSigner, now = Date.now()): MediaView {
  const base = { mediaId, kind: doc.kind, state: doc.state, percent: doc.percent, error: doc.error, playback: null };
  const out = doc.output;
  if (doc.state !== 'ready' || !out) return base;
  const { prefix, expiresAt } = signer.prefix(mediaId, now);
  const url = (file: string) => prefix + file;
  if (out.kind === 'image') {
    return {
      ...base,
      width: out.width,
      height: out.height,
      blurhash: out.blurhash,
      playback: {
        expiresAt: expiresAt.toISOString(),
        variants: out.variants.map((v) => ({ url: url(v.file), width: v.width, height: v.height, format: v.format })),
      },
    };
  }
  return {
    ...base,
    width: out.width,
    height: out.height,
    durationMs: out.durationMs,
    blurhash: out.blurhash,
    playback: {
      expiresAt: expiresAt.toISOString(),
      hls: url(out.hls),
      dash: url(out.dash),
      poster: url(out.poster),
      storyboard: { image: url(out.storyboard.image), vtt: url(out.storyboard.vtt) },
      renditions: out.renditions.map((r) => ({ width: r.width, height: r.height, bitrate: r.videoBitrate })),
    },
  };
}
