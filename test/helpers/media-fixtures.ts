// Inputs for the media processing tests and benchmark, generated into a
// directory with the real ffmpeg and sharp: ordinary videos and a photo as
// phones send them, and hostile files as attackers send them (a tiny PNG
// declaring ten billion pixels, an AVI carrying an HLS playlist that points at
// local files, a bare playlist named .mp4, text named .mp4).
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import sharp from 'sharp';

const run = promisify(execFile);

/** What the hostile playlists try to leak besides /etc/passwd: a file with an extension ffmpeg's HLS demuxer accepts as a segment. */
export const CANARY_TEXT = 'root:x:0:0:flock-canary-secret';

export interface MediaFixtures {
  dir: string;
  /** 10 s, 1280x720 at 30 fps, H.264 + AAC (sine 440 Hz), MP4. */
  clip720: string;
  /** The same clip with a display matrix turning it to portrait (720x1280 on screen), stream-copied. */
  clipRotated: string;
  /** 2 s, 320x240, VP9 without audio, WebM. */
  webm: string;
  /** Three frames (0.1 s) of 640x360 H.264: shorter than a storyboard interval. */
  blip: string;
  /** 1 s of Motion JPEG in Matroska: a codec Flock does not take. */
  mjpegMkv: string;
  /** 6000x4000 JPEG with EXIF orientation 6 (shows as 4000x6000 portrait) and GPS tags; a red square in the stored top-left corner. */
  bigJpeg: string;
  /** A few hundred bytes of PNG whose IHDR declares 100,000 x 100,000 pixels. */
  hugePng: string;
  /** An AVI whose GAB2 subtitle packet is an HLS playlist listing file:///etc/passwd and the canary. */
  hlsAvi: string;
  /** A bare HLS playlist named .mp4 listing the canary: what current ffmpeg still follows when it probes. */
  playlistMp4: string;
  /** CANARY_TEXT, named .ts so the HLS demuxer would open it. */
  canary: string;
  /** Plain text named x.mp4. */
  textMp4: string;
}

/** Generates every fixture into `dir` (about 3 s of CPU, most of it the 720p clip). */
export async function makeMediaFixtures(ffmpegPath: string, dir: string): Promise<MediaFixtures> {
  const file = (name: string) => path.join(dir, name);
  const f: MediaFixtures = {
    dir,
    clip720: file('clip720.mp4'),
    clipRotated: file('clip-rotated.mp4'),
    webm: file('clip.webm'),
    blip: file('blip.mp4'),
    mjpegMkv: file('mjpeg.mkv'),
    bigJpeg: file('photo.jpg'),
    hugePng: file('huge.png'),
    hlsAvi: file('hls.avi'),
    playlistMp4: file('playlist.mp4'),
    canary: file('canary.ts'),
    textMp4: file('x.mp4'),
  };
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(f.canary, `${CANARY_TEXT}\n`);
  await fs.writeFile(f.textMp4, 'This is not a video, whatever its name says.\n');
  await fs.writeFile(f.hugePng, hugePng(100_000, 100_000));
  await fs.writeFile(f.hlsAvi, hlsInAvi(['file:///etc/passwd', `file://${f.canary}`]));
  await fs.writeFile(f.playlistMp4, hlsPlaylist([`file://${f.canary}`]));
  await Promise.all([
    makeClip720(ffmpegPath, f.clip720).then(() => rotate(ffmpegPath, f.clip720, f.clipRotated)),
    ffmpeg(ffmpegPath, [
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x240:rate=24',
      '-t',
      '2',
      '-c:v',
      'libvpx-vp9',
      '-deadline',
      'realtime',
      '-cpu-used',
      '8',
      '-b:v',
      '300k',
      f.webm,
    ]),
    ffmpeg(ffmpegPath, ['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-frames:v', '3', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', f.blip]),
    ffmpeg(ffmpegPath, ['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10', '-t', '1', '-c:v', 'mjpeg', f.mjpegMkv]),
    makeBigJpeg(f.bigJpeg),
  ]);
  return f;
}

/** The 10 s 720p H.264 + AAC clip (also the benchmark's input). */
export async function makeClip720(ffmpegPath: string, out: string): Promise<void> {
  await ffmpeg(ffmpegPath, [
    ...['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '10'],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', '-movflags', '+faststart', out],
  ]);
}

async function rotate(ffmpegPath: string, input: string, out: string): Promise<void> {
  await ffmpeg(ffmpegPath, ['-i', input, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', out]);
}

async function ffmpeg(ffmpegPath: string, args: string[]): Promise<void> {
  await run(ffmpegPath, ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...args], { timeout: 120_000 });
}

// ---- the photo ----

/** Where the fixture photo's GPS tags put it (the Eiffel Tower). */
export const PHOTO_GPS = { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2988/100', GPSLongitudeRef: 'E', GPSLongitude: '2/1 17/1 4020/100' };

/** 6000x4000 (24 MP) stored, orientation 6 (turn 90° clockwise to show), GPS in its EXIF; the stored top-left 600x600 is red. */
export async function makeBigJpeg(out: string, size = { width: 6000, height: 4000 }): Promise<void> {
  const red = await sharp({ create: { width: 600, height: 600, channels: 3, background: { r: 255, g: 0, b: 0 } } })
    .png()
    .toBuffer();
  await sharp({ create: { ...size, channels: 3, background: { r: 90, g: 110, b: 130 } } })
    .composite([{ input: red, left: 0, top: 0 }])
    .jpeg({ quality: 85 })
    .withExif({ IFD0: { Make: 'Flock', Model: 'Fixture' }, IFD3: PHOTO_GPS })
    // sharp writes the orientation tag itself, from this (an Orientation in withExif is overwritten).
    .withMetadata({ orientation: 6 })
    .toFile(out);
}

/**
 * The tags of the GPS IFD of an EXIF block (as sharp's metadata().exif gives
 * it: "Exif\0\0" and a TIFF structure), by number; empty when there is none.
 * Enough TIFF reading to show the fixture really carries a position.
 */
export function exifGpsTags(exif: Buffer | undefined): number[] {
  if (!exif) return [];
  const tiff = exif.subarray(exif.toString('latin1', 0, 6) === 'Exif\0\0' ? 6 : 0);
  const little = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (at: number) => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at));
  const u32 = (at: number) => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at));
  const entries = (at: number) => Array.from({ length: u16(at) }, (_, i) => ({ tag: u16(at + 2 + i * 12), value: u32(at + 10 + i * 12) }));
  const gps = entries(u32(4)).find((e) => e.tag === 0x8825);
  return gps ? entries(gps.value).map((e) => e.tag) : [];
}

// ---- hand-made hostile files ----

/** A valid PNG (signature, IHDR, one IDAT, IEND, every CRC right) that declares `width` x `height` RGB pixels and holds almost none. */
export function hugePng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  const firstRows = zlib.deflateSync(Buffer.alloc(2 * (1 + width * 3)));
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), pngChunk('IHDR', ihdr), pngChunk('IDAT', firstRows), pngChunk('IEND', Buffer.alloc(0))]);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/** A VOD HLS playlist with one segment per URL. */
export function hlsPlaylist(urls: string[]): string {
  return ['#EXTM3U', '#EXT-X-MEDIA-SEQUENCE:0', ...urls.flatMap((u) => ['#EXTINF:1,', u]), '#EXT-X-ENDLIST', ''].join('\n');
}

/**
 * The shape of the 2017 "HLS inside AVI" local file disclosure against video
 * pipelines: an AVI with one text stream ('txts') whose first packet is a
 * GAB2 subtitle block, whose payload is an HLS playlist. ffmpeg's AVI demuxer
 * probed that payload and opened it with the HLS demuxer, which fetched the
 * listed "segments" (local files) into the output. (ffmpeg since 3.3.2 only
 * accepts SRT and ASS inside GAB2; Flock refuses AVI before any of that, and
 * never lets ffmpeg pick a demuxer.)
 */
export function hlsInAvi(urls: string[]): Buffer {
  const avih = Buffer.alloc(56);
  avih.writeUInt32LE(40_000, 0); // µs per frame
  avih.writeUInt32LE(0x10, 12); // AVIF_HASINDEX
  avih.writeUInt32LE(100, 16); // total frames
  avih.writeUInt32LE(1, 24); // streams
  avih.writeUInt32LE(224, 32);
  avih.writeUInt32LE(160, 36);
  const strh = Buffer.alloc(56);
  strh.write('txts', 0, 'latin1'); // a subtitle stream
  strh.writeUInt32LE(1, 20); // scale
  strh.writeUInt32LE(25, 24); // rate
  strh.writeUInt32LE(100, 32); // length
  const playlist = Buffer.from(hlsPlaylist(urls), 'latin1');
  // "GAB2", 0, version 2, then a name length of 0, flags and a size: the playlist follows.
  const gab2 = Buffer.concat([Buffer.from('GAB2\0', 'latin1'), Buffer.from([2, 0]), Buffer.alloc(10), playlist]);
  const packets = [riffChunk('00tx', gab2), ...Array.from({ length: 100 }, () => riffChunk('00dc', Buffer.alloc(3)))];
  const headerList = riffList('hdrl', [riffChunk('avih', avih), riffList('strl', [riffChunk('strh', strh), riffChunk('strf', Buffer.alloc(40))])]);
  return riffChunk('RIFF', Buffer.concat([Buffer.from('AVI ', 'latin1'), headerList, riffList('movi', packets)]));
}

function riffChunk(id: string, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.write(id, 0, 'latin1');
  header.writeUInt32LE(data.length, 4);
  return Buffer.concat([header, data, Buffer.alloc(data.length % 2)]);
}

function riffList(type: string, chunks: Buffer[]): Buffer {
  return riffChunk('LIST', Buffer.concat([Buffer.from(type, 'latin1'), ...chunks]));
}
