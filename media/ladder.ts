// The adaptive bit-rate ladder a video is transcoded into: which heights, at
// which sizes and bit rates. Never taller than the source (upscaling spends
// bits on nothing), every dimension even (H.264 4:2:0 needs it).

/** The rungs, tallest first, with their target video bit rates (bits per second). */
export const LADDER = [
  { height: 1080, videoBitrate: 5_000_000 },
  { height: 720, videoBitrate: 2_800_000 },
  { height: 480, videoBitrate: 1_400_000 },
  { height: 360, videoBitrate: 800_000 },
] as const;

export interface Rung {
  width: number;
  height: number;
  /** Target video bit rate, bits per second. */
  videoBitrate: number;
}

/**
 * The renditions for a source of `width` x `height` display pixels, highest
 * first: every rung no larger than the source, or one rendition at the
 * source's own size (rounded down to even) when it is smaller than the lowest
 * rung. A rung bounds the frame's shorter side, so a portrait phone video
 * (1080x1920) gets the same four rungs as its landscape twin (1920x1080),
 * at 1080x1920, 720x1280, 480x854 and 360x640. The other side keeps the
 * aspect ratio, rounded to even.
 */
export function chooseLadder(width: number, height: number): Rung[] {
  if (!(width >= 2 && height >= 2)) throw new RangeError(`no ladder for a ${width}x${height} source`);
  const short = Math.min(width, height);
  const portrait = height > width;
  const scaled = (rungShort: number, videoBitrate: number): Rung => {
    const long = even((Math.max(width, height) * rungShort) / short);
    return portrait ? { width: rungShort, height: long, videoBitrate } : { width: long, height: rungShort, videoBitrate };
  };
  const rungs = LADDER.filter((r) => r.height <= short).map((r) => scaled(r.height, r.videoBitrate));
  if (rungs.length > 0) return rungs;
  const lowest = LADDER[LADDER.length - 1]!;
  const own = Math.max(2, even(short, Math.floor));
  // Below the lowest rung: its own size, at the lowest rung's bit rate scaled by area.
  return [scaled(own, Math.max(100_000, Math.round((lowest.videoBitrate * own * own) / (lowest.height * lowest.height))))];
}

/** `x` rounded to an even integer (nearest by default), at least 2. */
function even(x: number, round: (n: number) => number = Math.round): number {
  return Math.max(2, 2 * round(x / 2));
}
