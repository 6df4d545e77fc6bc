// Image processing on local files: the responsive variants of an uploaded
// image (WebP, AVIF and a JPEG fallback per width) and its blurhash. Knows
// nothing of S3 or jobs.
//
// Hostile input: the type comes from the bytes (sniff), the pixel count from
// the header before anything is decoded (a PNG that declares 100,000 x 100,000
// pixels in a few hundred bytes is refused without allocating), and sharp's
// own limitInputPixels stands behind that check. Outputs carry no metadata at
// all (sharp writes none unless asked: no EXIF, so no GPS position and no
// orientation tag; the orientation is applied to the pixels instead).
import { encode } from 'blurhash';
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { FlockError } from '../kernel/errors.ts';
import { abortError } from './probe.ts';
import { sniff, SNIFF_BYTES } from './sniff.ts';
import type { Container, MediaLimits, MediaOutput, Variant } from './types.ts';

export type ImageOutput = Extract<MediaOutput, { kind: 'image' }>;

export const DEFAULT_IMAGE_WIDTHS: readonly number[] = [320, 640, 1080, 2048];
export const IMAGE_FORMATS = ['webp', 'avif', 'jpeg'] as const satisfies readonly Variant['format'][];

export interface ProcessImageOptions {
  limits: MediaLimits['image'];
  /** Variant widths; those above the image's width are skipped. Default DEFAULT_IMAGE_WIDTHS. */
  widths?: readonly number[] | undefined;
  /** Checked between encodes (sharp cannot stop one midway). */
  signal?: AbortSignal | undefined;
}

/**
 * The variants of the image in `input`, written to `outDir` as
 * `<width>.webp`, `<width>.avif` and `<width>.jpg`, upright (EXIF orientation
 * applied) and without metadata. A source narrower than the smallest width
 * gets one variant per format at its own width. Throws a FlockError:
 * MEDIA_TOO_LARGE (details.limit 'bytes' or 'pixels'), MEDIA_UNSUPPORTED_TYPE
 * (not an image Flock accepts), MEDIA_CODEC_UNSUPPORTED (a HEIF whose codec
 * this build cannot decode), MEDIA_PROCESSING_FAILED (damaged).
 */
export async function processImageFile(input: string, outDir: string, options: ProcessImageOptions): Promise<ImageOutput> {
  const { limits, signal } = options;
  const container = await checkFile(input, limits.maxBytes);
  // The header only: no pixel is decoded here, so no limit is needed yet.
  const meta = await sharp(input, { limitInputPixels: false })
    .metadata()
    .catch((err: unknown) => {
      throw decodeFailure(err, container, limits.maxPixels);
    });
  if (meta.width * meta.height > limits.maxPixels)
    throw new FlockError('MEDIA_TOO_LARGE', `The image has more than ${limits.maxPixels} pixels`, { details: { limit: 'pixels', max: limits.maxPixels } });
  const { width, height } = meta.autoOrient;
  const widths = variantWidths(width, options.widths ?? DEFAULT_IMAGE_WIDTHS);

  await fs.mkdir(outDir, { recursive: true });
  const files: string[] = [];
  try {
    // One decode, at the largest width needed (JPEG and WebP shrink on load); every variant is made from it.
    const largest = Math.max(...widths);
    const base = await decoded(input, limits.maxPixels)
      .resize({ width: largest, withoutEnlargement: true })
      .raw()
      .toBuffer({ resolveWithObject: true })
      .catch((err: unknown) => {
        throw decodeFailure(err, container, limits.maxPixels);
      });
    const raw = { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } };
    const variants: Variant[] = [];
    for (const w of widths) {
      for (const format of IMAGE_FORMATS) {
        if (signal?.aborted) throw abortError(signal);
        const file = `${w}.${format === 'jpeg' ? 'jpg' : format}`;
        files.push(file);
        const info = await encoder(sharp(base.data, raw).resize({ width: w, withoutEnlargement: true }), format).toFile(path.join(outDir, file));
        variants.push({ width: info.width, height: info.height, format, file, bytes: info.size });
      }
    }
    if (signal?.aborted) throw abortError(signal);
    return { kind: 'image', width, height, variants, blurhash: await blurhashOf(base.data, raw), files };
  } catch (err) {
    await Promise.all(files.map((f) => fs.rm(path.join(outDir, f), { force: true })));
    throw err instanceof FlockError || signal?.aborted ? err : new FlockError('MEDIA_PROCESSING_FAILED', 'The image could not be processed', { cause: err });
  }
}

/** The widths to make for a source `sourceWidth` wide: those it covers, or its own width when it covers none. */
export function variantWidths(sourceWidth: number, widths: readonly number[]): number[] {
  const covered = [...new Set(widths)].filter((w) => w <= sourceWidth).sort((a, b) => a - b);
  return covered.length > 0 ? covered : [sourceWidth];
}

/** The image decoded upright, refused past `maxPixels` by sharp itself too. Animated images: the first frame. */
function decoded(input: string, maxPixels: number): Sharp {
  return sharp(input, { limitInputPixels: maxPixels, failOn: 'warning' }).rotate();
}

/** One output format's settings; sharp writes no metadata with any of them. */
export function encoder(image: Sharp, format: Variant['format']): Sharp {
  switch (format) {
    case 'webp':
      return image.webp({ quality: 80 });
    case 'avif':
      return image.avif({ quality: 50, effort: 2 });
    case 'jpeg':
      // JPEG has no alpha: transparent areas become white rather than black.
      return image.flatten({ background: '#ffffff' }).jpeg({ quality: 82, progressive: true, mozjpeg: true });
  }
}

async function blurhashOf(data: Buffer, raw: { raw: { width: number; height: number; channels: 1 | 2 | 3 | 4 } }): Promise<string> {
  const small = await sharp(data, raw).resize(32, 32, { fit: 'inside' }).toColourspace('srgb').ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return encode(new Uint8ClampedArray(small.data), small.info.width, small.info.height, 4, 3);
}

/** The size limit, then the type from the first bytes; returns the container. */
async function checkFile(input: string, maxBytes: number): Promise<Container> {
  const handle = await fs.open(input, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new FlockError('MEDIA_TOO_LARGE', `The image is larger than ${maxBytes} bytes`, { details: { limit: 'bytes', max: maxBytes } });
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(SNIFF_BYTES), 0, SNIFF_BYTES, 0);
    const sniffed = sniff(buffer.subarray(0, bytesRead));
    if (sniffed?.kind !== 'image') throw new FlockError('MEDIA_UNSUPPORTED_TYPE', 'The file is not an image of a supported type');
    return sniffed.container;
  } finally {
    await handle.close();
  }
}

/** What a sharp failure to read the input means for the uploader. */
function decodeFailure(err: unknown, container: Container, maxPixels: number): FlockError {
  const message = err instanceof Error ? err.message : String(err);
  if (/exceeds pixel limit/i.test(message))
    return new FlockError('MEDIA_TOO_LARGE', 'The image has too many pixels', { cause: err, details: { limit: 'pixels', max: maxPixels } });
  if (/unsupported image format/i.test(message)) return new FlockError('MEDIA_UNSUPPORTED_TYPE', undefined, { cause: err });
  // Prebuilt sharp reads AVIF but not HEVC-coded HEIF (HEIC).
  if ((container === 'heif' || container === 'avif') && /codec|compression format|decoding plugin|not been built/i.test(message))
    return new FlockError('MEDIA_CODEC_UNSUPPORTED', 'This HEIF image uses a codec Flock cannot decode', { cause: err });
  return new FlockError('MEDIA_PROCESSING_FAILED', 'The image is damaged or could not be decoded', { cause: err });
}
