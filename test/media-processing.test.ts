// The media processing library on local files, with the real ffmpeg, ffprobe
// and sharp: what a video and a photo become (every rendition decodes, the
// stills have their sizes, no metadata survives), what is refused and how
// (by type, codec, size, pixels), that hostile files never make ffmpeg read
// another file, and that an aborted transcode leaves no process and no files.
import test from 'ava';
import { isBlurhashValid } from 'blurhash';
import { execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { FlockError } from '../kernel/errors.ts';
import { processImageFile, variantWidths } from '../media/image.ts';
import { chooseLadder } from '../media/ladder.ts';
import { inputArgs, probeVideo, type VideoProbe } from '../media/probe.ts';
import { sniff, SNIFF_BYTES } from '../media/sniff.ts';
import type { MediaLimits } from '../media/types.ts';
import { processVideoFile, transcodeVideo, type VideoOutput } from '../media/video.ts';
import { requireEnv, tempDir } from './helpers/env.ts';
import { CANARY_TEXT, exifGpsTags, makeMediaFixtures, type MediaFixtures } from './helpers/media-fixtures.ts';

const run = promisify(execFile);
const ffmpegPath = requireEnv('FFMPEG_PATH');
const ffprobePath = requireEnv('FFPROBE_PATH');
const limits: MediaLimits = {
  image: { maxBytes: 50 << 20, maxPixels: 40_000_000 },
  video: { maxBytes: 500 << 20, maxSeconds: 600, maxPixels: 3840 * 2160 },
};

let dir: string;
let fx: MediaFixtures;
/** The 720p clip through the whole pipeline, once, with every progress report. */
let clip: { out: VideoOutput; outDir: string; progress: number[] };

test.before(async () => {
  dir = await tempDir('media');
  fx = await makeMediaFixtures(ffmpegPath, path.join(dir, 'fixtures'));
  const outDir = path.join(dir, 'clip720');
  const progress: number[] = [];
  const out = await processVideoFile(fx.clip720, outDir, {
    ffmpegPath,
    ffprobePath,
    container: 'mp4',
    limits: limits.video,
    onProgress: (p) => progress.push(p),
  });
  clip = { out, outDir, progress };
});

test.after.always(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const head = async (file: string) => (await fs.readFile(file)).subarray(0, SNIFF_BYTES);
const outDirFor = (name: string) => path.join(dir, name);

/** Rejects with a FlockError of `code`; returns it. */
async function refused(t: { fail: (m: string) => void }, promise: Promise<unknown>, code: FlockError['code']): Promise<FlockError | undefined> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof FlockError && err.code === code) return err;
    t.fail(`expected ${code}, got ${err instanceof FlockError ? err.code : String(err)}`);
    return undefined;
  }
  t.fail(`expected ${code}, but it succeeded`);
  return undefined;
}

/** Every stream of a manifest (HLS master or DASH MPD) as ffprobe decodes it, frames counted. */
async function decodedStreams(manifest: string) {
  const { stdout } = await run(
    ffprobePath,
    ['-v', 'error', '-protocol_whitelist', 'file', '-count_frames', '-show_entries', 'stream=codec_type,width,height,nb_read_frames', '-of', 'json', manifest],
    { timeout: 60_000 },
  );
  const { streams } = JSON.parse(stdout) as { streams: { codec_type: string; width?: number; height?: number; nb_read_frames?: string }[] };
  return streams.map((s) => ({ type: s.codec_type, width: s.width, height: s.height, frames: Number(s.nb_read_frames ?? 0) }));
}

// ---- sniff and the ladder: tables ----

test('sniff decides the container from magic bytes and refuses everything else', async (t) => {
  const ftyp = (major: string, ...compatible: string[]) => {
    const box = Buffer.alloc(16 + 4 * compatible.length);
    box.writeUInt32BE(box.length, 0);
    box.write(`ftyp${major}`, 4, 'latin1');
    compatible.forEach((b, i) => box.write(b, 16 + 4 * i, 'latin1'));
    return box;
  };
  const cases: [string, Buffer, ReturnType<typeof sniff>][] = [
    ['JPEG', await head(fx.bigJpeg), { kind: 'image', container: 'jpeg' }],
    ['PNG', await head(fx.hugePng), { kind: 'image', container: 'png' }],
    ['WebP', Buffer.from('RIFF\x10\0\0\0WEBPVP8 ', 'latin1'), { kind: 'image', container: 'webp' }],
    ['GIF89a', Buffer.from('GIF89a\x01\0\x01\0', 'latin1'), { kind: 'image', container: 'gif' }],
    ['GIF87a', Buffer.from('GIF87a\x01\0\x01\0', 'latin1'), { kind: 'image', container: 'gif' }],
    ['HEIC', ftyp('heic', 'mif1', 'heic'), { kind: 'image', container: 'heif' }],
    ['AVIF', ftyp('avif', 'avif', 'mif1', 'miaf'), { kind: 'image', container: 'avif' }],
    ['AVIF with a generic major brand', ftyp('mif1', 'avif', 'miaf'), { kind: 'image', container: 'avif' }],
    ['MP4 (fixture)', await head(fx.clip720), { kind: 'video', container: 'mp4' }],
    ['MOV', ftyp('qt  ', 'qt  '), { kind: 'video', container: 'mp4' }],
    ['3GP', ftyp('3gp4', 'isom', '3gp4'), { kind: 'video', container: 'mp4' }],
    ['M4V', ftyp('M4V ', 'M4V ', 'M4A ', 'mp42', 'isom'), { kind: 'video', container: 'mp4' }],
    ['WebM (fixture)', await head(fx.webm), { kind: 'video', container: 'matroska' }],
    ['Matroska (fixture)', await head(fx.mjpegMkv), { kind: 'video', container: 'matroska' }],
    ['M4A audio', ftyp('M4A ', 'M4A ', 'mp42', 'isom'), null],
    ['unknown ftyp brand', ftyp('crx ', 'crx '), null],
    ['AVI carrying HLS', await head(fx.hlsAvi), null],
    ['HLS playlist named .mp4', await head(fx.playlistMp4), null],
    ['text named .mp4', await head(fx.textMp4), null],
    ['MPEG-TS', Buffer.from([0x47, 0x40, 0x00, 0x10, 0x00]), null],
    ['ffconcat', Buffer.from('ffconcat version 1.0\nfile /etc/passwd\n'), null],
    ['empty', Buffer.alloc(0), null],
    ['truncated JPEG magic', Buffer.from([0xff, 0xd8]), null],
  ];
  for (const [name, bytes, expected] of cases) t.deepEqual(sniff(bytes), expected, name);
});

test('the ladder never upscales, keeps the aspect ratio in even sizes, and treats portrait like landscape', (t) => {
  const sizes = (w: number, h: number) => chooseLadder(w, h).map((r) => `${r.width}x${r.height}@${r.videoBitrate / 1000}k`);
  t.deepEqual(sizes(1920, 1080), ['1920x1080@5000k', '1280x720@2800k', '854x480@1400k', '640x360@800k']);
  t.deepEqual(sizes(1280, 720), ['1280x720@2800k', '854x480@1400k', '640x360@800k']);
  t.deepEqual(sizes(1080, 1920), ['1080x1920@5000k', '720x1280@2800k', '480x854@1400k', '360x640@800k']);
  t.deepEqual(sizes(3840, 1600), ['2592x1080@5000k', '1728x720@2800k', '1152x480@1400k', '864x360@800k']);
  t.deepEqual(sizes(640, 480).slice(-1), ['480x360@800k']);
  t.is(chooseLadder(320, 240).length, 1, 'below 360: one rendition');
  t.like(chooseLadder(320, 240)[0], { width: 320, height: 240 });
  t.like(chooseLadder(301, 199)[0], { width: 300, height: 198 }, 'its own size rounded down to even');
  t.deepEqual(variantWidths(6000, [320, 640, 1080, 2048]), [320, 640, 1080, 2048]);
  t.deepEqual(variantWidths(700, [320, 640, 1080, 2048]), [320, 640]);
  t.deepEqual(variantWidths(200, [320, 640, 1080, 2048]), [200], 'narrower than every width: its own');
});

// ---- the 720p clip ----

test('the 720p clip gets a 720/480/360 ladder and every rendition of the HLS master and of the DASH MPD decodes', async (t) => {
  const { out, outDir } = clip;
  t.like(out, { kind: 'video', width: 1280, height: 720, durationMs: 10_000, hasAudio: true, hls: 'master.m3u8', dash: 'manifest.mpd' });
  t.deepEqual(
    out.renditions.map((r) => [r.width, r.height, r.playlist]),
    [
      [1280, 720, 'media_0.m3u8'],
      [854, 480, 'media_1.m3u8'],
      [640, 360, 'media_2.m3u8'],
    ],
  );
  const master = await fs.readFile(path.join(outDir, out.hls), 'utf8');
  for (const r of out.renditions) t.true(master.includes(`RESOLUTION=${r.width}x${r.height}`) && master.includes(r.playlist), `master lists ${r.playlist}`);
  for (const manifest of [out.hls, out.dash]) {
    const streams = await decodedStreams(path.join(outDir, manifest));
    const video = streams.filter((s) => s.type === 'video');
    t.deepEqual(
      video.map((s) => `${s.width}x${s.height}`),
      ['1280x720', '854x480', '640x360'],
      `${manifest}: one decodable video stream per rendition`,
    );
    for (const s of video) t.true(s.frames >= 290, `${manifest} ${s.width}x${s.height}: ${s.frames} of 300 frames decoded`);
    t.true(
      streams.some((s) => s.type === 'audio' && s.frames > 0),
      `${manifest}: the audio decodes`,
    );
  }
  // Each media playlist on its own too, as a player that picked one rendition reads it.
  for (const r of out.renditions) {
    const [stream] = await decodedStreams(path.join(outDir, r.playlist));
    t.like(stream, { type: 'video', width: r.width, height: r.height });
  }
});

test('keyframes fall on the segment boundaries in every rendition (closed GOPs, switchable)', async (t) => {
  for (const r of clip.out.renditions) {
    const { stdout } = await run(
      ffprobePath,
      [
        '-v',
        'error',
        '-protocol_whitelist',
        'file',
        '-select_streams',
        'v:0',
        '-skip_frame',
        'nokey',
        '-show_entries',
        'frame=pts_time',
        '-of',
        'csv=p=0',
        path.join(clip.outDir, r.playlist),
      ],
      { timeout: 30_000 },
    );
    // One line per keyframe ("4.000000", or "0.000000," when side data follows), blank lines between.
    const keyframes = [...stdout.matchAll(/^(\d+\.\d+)/gm)].map((m) => Number(m[1]));
    t.deepEqual(
      keyframes.map((s) => Math.round(s - keyframes[0]!)),
      [0, 4, 8],
      `${r.playlist}: keyframes at ${keyframes.join(', ')}`,
    );
  }
});

test('the poster, the storyboard and its cues have the right sizes and cover the whole clip; the blurhash is valid', async (t) => {
  const { out, outDir } = clip;
  const poster = await sharp(path.join(outDir, out.poster)).metadata();
  t.like(poster, { format: 'jpeg', width: 1280, height: 720 });
  t.like(out.storyboard, { image: 'storyboard.jpg', vtt: 'storyboard.vtt', interval: 1, columns: 10, rows: 1 });
  const sprite = await sharp(path.join(outDir, out.storyboard.image)).metadata();
  t.like(sprite, { format: 'jpeg', width: 160 * 10, height: 90 });
  const vtt = await fs.readFile(path.join(outDir, out.storyboard.vtt), 'utf8');
  t.true(vtt.startsWith('WEBVTT\n'));
  const cues = [...vtt.matchAll(/(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\nstoryboard\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)/g)].map((m) => {
    const n = m.slice(1).map(Number);
    return { start: n[0]! * 3600 + n[1]! * 60 + n[2]! + n[3]! / 1000, end: n[4]! * 3600 + n[5]! * 60 + n[6]! + n[7]! / 1000, xywh: n.slice(8) };
  });
  t.is(cues.length, 10);
  t.is(cues[0]!.start, 0);
  t.is(cues.at(-1)!.end, 10, 'the last cue ends with the clip');
  cues.forEach((cue, i) => {
    if (i > 0) t.is(cue.start, cues[i - 1]!.end, `cue ${i} follows cue ${i - 1} without a gap`);
    const [x, y, w, h] = cue.xywh;
    t.true(x! + w! <= sprite.width && y! + h! <= sprite.height && w === 160 && h === 90, `cue ${i} lies inside the sprite`);
  });
  t.true(isBlurhashValid(out.blurhash).result, out.blurhash);
  t.is(out.blurhash.length, 4 + 2 * 4 * 3, '4x3 components');
});

test('progress reports are whole percents, strictly increasing, ending at 100', (t) => {
  const { progress } = clip;
  t.true(progress.length >= 3, `${progress.length} reports`);
  t.true(
    progress.every((p, i) => Number.isInteger(p) && p >= 0 && p <= 100 && (i === 0 || p > progress[i - 1]!)),
    progress.join(','),
  );
  t.is(progress.at(-1), 100);
});

test('the files list names exactly what was written', async (t) => {
  const written = (await fs.readdir(clip.outDir)).sort();
  t.deepEqual([...clip.out.files].sort(), written);
  for (const required of ['master.m3u8', 'manifest.mpd', 'poster.jpg', 'storyboard.jpg', 'storyboard.vtt', 'media_0.m3u8', 'init-0.m4s'])
    t.true(written.includes(required), required);
});

test('a rotated phone video probes at its display size: portrait, rotation known', async (t) => {
  const probe = await probeVideo(fx.clipRotated, { ffprobePath, container: 'mp4', limits: limits.video });
  t.like(probe, { width: 720, height: 1280, durationMs: 10_000, videoCodec: 'h264', audioCodec: 'aac', hasAudio: true, frameRate: 30 });
  t.true(probe.rotation === 90 || probe.rotation === 270, `rotation ${probe.rotation}`);
});

test('a small VP9 WebM without audio becomes one rendition at its own size, video only', async (t) => {
  const outDir = outDirFor('webm');
  const out = await processVideoFile(fx.webm, outDir, { ffmpegPath, ffprobePath, container: 'matroska', limits: limits.video });
  t.like(out, { width: 320, height: 240, durationMs: 2000, hasAudio: false });
  t.deepEqual(
    out.renditions.map((r) => [r.width, r.height]),
    [[320, 240]],
  );
  const streams = await decodedStreams(path.join(outDir, out.dash));
  t.deepEqual(
    streams.map((s) => s.type),
    ['video'],
  );
  t.like(await sharp(path.join(outDir, out.poster)).metadata(), { width: 320, height: 240 });
  t.like(out.storyboard, { interval: 1, columns: 2, rows: 1 });
  t.like(await sharp(path.join(outDir, out.storyboard.image)).metadata(), { width: 320, height: 120 });
});

test('a clip of three frames, shorter than one storyboard interval, still gets its poster and a one-tile storyboard', async (t) => {
  const outDir = outDirFor('blip');
  const out = await processVideoFile(fx.blip, outDir, { ffmpegPath, ffprobePath, container: 'mp4', limits: limits.video });
  t.like(out, { width: 640, height: 360, durationMs: 100, hasAudio: false });
  t.like(out.storyboard, { interval: 1, columns: 1, rows: 1 });
  t.like(await sharp(path.join(outDir, out.poster)).metadata(), { width: 640, height: 360 });
  t.regex(await fs.readFile(path.join(outDir, out.storyboard.vtt), 'utf8'), /00:00:00\.000 --> 00:00:00\.100\nstoryboard\.jpg#xywh=0,0,160,90/);
});

// ---- what is refused ----

test('a video over the duration, pixel or byte limit is refused with MEDIA_TOO_LARGE naming the limit', async (t) => {
  const seconds = await refused(t, probeVideo(fx.clip720, { ffprobePath, container: 'mp4', limits: { ...limits.video, maxSeconds: 5 } }), 'MEDIA_TOO_LARGE');
  t.deepEqual(seconds?.details, { limit: 'seconds', max: 5 });
  const pixels = await refused(
    t,
    probeVideo(fx.clip720, { ffprobePath, container: 'mp4', limits: { ...limits.video, maxPixels: 640 * 360 } }),
    'MEDIA_TOO_LARGE',
  );
  t.deepEqual(pixels?.details, { limit: 'pixels', max: 640 * 360 });
  const outDir = outDirFor('too-many-bytes');
  const bytes = await refused(
    t,
    processVideoFile(fx.clip720, outDir, { ffmpegPath, ffprobePath, container: 'mp4', limits: { ...limits.video, maxBytes: 1000 } }),
    'MEDIA_TOO_LARGE',
  );
  t.deepEqual(bytes?.details, { limit: 'bytes', max: 1000 });
});

test('a codec outside the allow-list is refused with MEDIA_CODEC_UNSUPPORTED', async (t) => {
  const err = await refused(t, probeVideo(fx.mjpegMkv, { ffprobePath, container: 'matroska', limits: limits.video }), 'MEDIA_CODEC_UNSUPPORTED');
  t.deepEqual(err?.details, { codec: 'mjpeg' });
});

test('text named x.mp4 is refused by sniff, and by both pipelines with MEDIA_UNSUPPORTED_TYPE', async (t) => {
  t.is(sniff(await head(fx.textMp4)), null);
  await refused(
    t,
    processVideoFile(fx.textMp4, outDirFor('text-video'), { ffmpegPath, ffprobePath, container: 'mp4', limits: limits.video }),
    'MEDIA_UNSUPPORTED_TYPE',
  );
  await refused(t, processImageFile(fx.textMp4, outDirFor('text-image'), { limits: limits.image }), 'MEDIA_UNSUPPORTED_TYPE');
  await refused(t, probeVideo(fx.textMp4, { ffprobePath, container: 'mp4', limits: limits.video }), 'MEDIA_UNSUPPORTED_TYPE');
});

// ---- hostile files ----

const readsOf = (log: string) => log.split('\n').filter((l) => /Opening '.*(passwd|canary)/.test(l));

test('the HLS-in-AVI file is refused by sniff, and forced through probe and transcode it reads no other file', async (t) => {
  t.is(sniff(await head(fx.hlsAvi)), null, 'sniff refuses AVI');
  await refused(
    t,
    processVideoFile(fx.hlsAvi, outDirFor('avi-process'), { ffmpegPath, ffprobePath, container: 'mp4', limits: limits.video }),
    'MEDIA_UNSUPPORTED_TYPE',
  );
  for (const container of ['mp4', 'matroska'] as const) {
    await refused(t, probeVideo(fx.hlsAvi, { ffprobePath, container, limits: limits.video }), 'MEDIA_UNSUPPORTED_TYPE');
    // The transcode trusts the probe it is given: hand it a plausible one, as a confused caller might.
    const probe: VideoProbe = { durationMs: 4000, width: 224, height: 160, rotation: 0, videoCodec: 'h264', audioCodec: null, frameRate: 25, hasAudio: false };
    const outDir = outDirFor(`avi-transcode-${container}`);
    await refused(t, transcodeVideo(fx.hlsAvi, outDir, { ffmpegPath, container, probe }), 'MEDIA_PROCESSING_FAILED');
    const left = await fs.readdir(outDir);
    for (const file of left) {
      const text = await fs.readFile(path.join(outDir, file), 'latin1');
      t.false(text.includes('root:'), `${file} holds no /etc/passwd line`);
      t.false(text.includes(CANARY_TEXT), `${file} holds no canary`);
    }
    // What ffmpeg itself says it opens, at debug level, with exactly the input arguments the pipeline uses.
    const log = await ffprobeLog([...inputArgs(fx.hlsAvi, container)]);
    t.deepEqual(readsOf(log), [], `${container}: nothing but the file is opened`);
  }
});

test('a bare HLS playlist named .mp4, which unhardened ffprobe follows to a local file, is refused without opening it', async (t) => {
  // The attack is live against this ffmpeg: probing without the hardening opens the listed file.
  const unhardened = await ffprobeLog(['-i', fx.playlistMp4]);
  t.true(
    readsOf(unhardened).some((l) => l.includes('canary.ts')),
    'unhardened ffprobe opens the canary (the fixture is a real attack)',
  );
  t.is(sniff(await head(fx.playlistMp4)), null);
  for (const container of ['mp4', 'matroska'] as const) {
    await refused(t, probeVideo(fx.playlistMp4, { ffprobePath, container, limits: limits.video }), 'MEDIA_UNSUPPORTED_TYPE');
    t.deepEqual(readsOf(await ffprobeLog(inputArgs(fx.playlistMp4, container))), [], `${container}: the canary is never opened`);
  }
  // The format whitelist alone stops the nested demuxer even if a demuxer were not forced.
  const whitelistOnly = await ffprobeLog(['-protocol_whitelist', 'file', '-format_whitelist', 'mov', '-i', fx.playlistMp4]);
  t.deepEqual(readsOf(whitelistOnly), []);
  t.regex(whitelistOnly, /not on whitelist/);
});

/** ffprobe's debug log for `args` (which name the input); it fails on these files, which is fine. */
async function ffprobeLog(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(ffprobePath, ['-hide_banner', '-loglevel', 'debug', ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
    let log = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (log += s));
    child.on('close', () => resolve(log));
  });
}

// ---- abort ----

test('aborting a transcode kills ffmpeg at once, rejects, and leaves no file behind', async (t) => {
  const outDir = outDirFor('aborted');
  const controller = new AbortController();
  const probe = await probeVideo(fx.clip720, { ffprobePath, container: 'mp4', limits: limits.video });
  let abortedAt = 0;
  const transcode = transcodeVideo(fx.clip720, outDir, {
    ffmpegPath,
    container: 'mp4',
    probe,
    signal: controller.signal,
    onProgress: (p) => {
      if (p >= 1 && !abortedAt) {
        abortedAt = performance.now();
        t.true(ffmpegRunningOn(outDir).length > 0, 'ffmpeg is running when the abort comes');
        controller.abort();
      }
    },
  });
  const err = await t.throwsAsync(transcode);
  t.is(err?.name, 'AbortError');
  t.true(abortedAt > 0, 'progress arrived before the abort');
  t.true(performance.now() - abortedAt < 2000, 'rejected promptly');
  t.deepEqual(ffmpegRunningOn(outDir), [], 'no ffmpeg left writing there');
  t.deepEqual(await fs.readdir(outDir), [], 'the partial segments are removed');
  // A signal aborted before the call starts nothing.
  await t.throwsAsync(transcodeVideo(fx.clip720, outDir, { ffmpegPath, container: 'mp4', probe, signal: AbortSignal.abort() }), { name: 'AbortError' });
});

/** Pids of the ffmpeg processes whose command line names `outDir` (Linux /proc). */
function ffmpegRunningOn(outDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    if (cmdline.includes('ffmpeg') && cmdline.includes(outDir)) pids.push(Number(entry));
  }
  return pids;
}

// ---- images ----

test('the 24 MP photo becomes upright WebP, AVIF and JPEG variants without any EXIF, GPS or orientation tag', async (t) => {
  const source = await sharp(fx.bigJpeg).metadata();
  t.like(source, { width: 6000, height: 4000, orientation: 6 }, 'the fixture is stored landscape with orientation 6');
  t.true(exifGpsTags(source.exif).includes(2), 'the fixture carries a GPS latitude');

  const outDir = outDirFor('photo');
  const out = await processImageFile(fx.bigJpeg, outDir, { limits: limits.image });
  t.like(out, { kind: 'image', width: 4000, height: 6000 });
  t.deepEqual(
    out.variants.map((v) => `${v.width}x${v.height}.${v.format}`),
    [320, 640, 1080, 2048].flatMap((w) => ['webp', 'avif', 'jpeg'].map((f) => `${w}x${w * 1.5}.${f}`)),
  );
  t.deepEqual([...out.files].sort(), (await fs.readdir(outDir)).sort());
  for (const v of out.variants) {
    const file = path.join(outDir, v.file);
    const meta = await sharp(file).metadata();
    t.like(meta, { width: v.width, height: v.height, format: v.format === 'avif' ? 'heif' : v.format }, v.file);
    t.is(meta.exif, undefined, `${v.file} has no EXIF`);
    t.is(meta.orientation, undefined, `${v.file} has no orientation tag`);
    t.is(meta.xmp, undefined, `${v.file} has no XMP`);
    t.true(meta.height > meta.width, `${v.file} is portrait`);
    t.is((await fs.stat(file)).size, v.bytes);
    // Orientation 6 turns the stored top-left corner (red) to the top-right.
    const { data, info } = await sharp(file).resize(8, 12, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const pixel = (x: number, y: number) => [...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3)];
    const [r, g, b] = pixel(info.width - 1, 0);
    t.true(r! > 200 && g! < 60 && b! < 60, `${v.file}: top-right is red (${r},${g},${b})`);
    const [r2] = pixel(0, 0);
    t.true(r2! < 150, `${v.file}: top-left is not red`);
  }
  t.true(isBlurhashValid(out.blurhash).result);
});

test('a PNG declaring 100,000 x 100,000 pixels is refused with MEDIA_TOO_LARGE at once, without allocating', async (t) => {
  // In a process of its own, so its peak memory is its own: decoding would need 30 GB.
  const script = `
    import { processImageFile } from ${JSON.stringify(new URL('../media/image.ts', import.meta.url).href)};
    const started = performance.now();
    const result = await processImageFile(${JSON.stringify(fx.hugePng)}, ${JSON.stringify(outDirFor('huge'))}, { limits: ${JSON.stringify(limits.image)} })
      .then(() => ({ ok: true }), (err) => ({ code: err.code, details: err.details }));
    console.log(JSON.stringify({ ...result, ms: performance.now() - started, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
  `;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { timeout: 60_000 });
  const result = JSON.parse(stdout) as { code?: string; details?: unknown; ms: number; maxRssMb: number };
  t.is(result.code, 'MEDIA_TOO_LARGE');
  t.deepEqual(result.details, { limit: 'pixels', max: limits.image.maxPixels });
  t.true(result.ms < 2000, `refused in ${Math.round(result.ms)} ms`);
  t.true(result.maxRssMb < 400, `peak memory ${Math.round(result.maxRssMb)} MB`);
  t.deepEqual(await fs.readdir(outDirFor('huge')).catch(() => []), []);
});

test('a damaged JPEG is refused with MEDIA_PROCESSING_FAILED and leaves no file; a small image gets one variant at its own width', async (t) => {
  const truncated = path.join(dir, 'truncated.jpg');
  await fs.writeFile(truncated, (await fs.readFile(fx.bigJpeg)).subarray(0, 30_000));
  const outDir = outDirFor('truncated');
  await refused(t, processImageFile(truncated, outDir, { limits: limits.image }), 'MEDIA_PROCESSING_FAILED');
  t.deepEqual(await fs.readdir(outDir).catch(() => []), []);

  const small = path.join(dir, 'small.png');
  await sharp({ create: { width: 200, height: 100, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
    .png()
    .toFile(small);
  const out = await processImageFile(small, outDirFor('small'), { limits: limits.image });
  t.deepEqual(
    out.variants.map((v) => `${v.width}x${v.height}.${v.format}`),
    ['200x100.webp', '200x100.avif', '200x100.jpeg'],
  );
  const { data } = await sharp(path.join(outDirFor('small'), '200.jpg'))
    .raw()
    .toBuffer({ resolveWithObject: true });
  t.true(data[0]! > 240, 'transparency becomes white in the JPEG fallback');
  const pixels = await refused(t, processImageFile(small, outDirFor('small-limited'), { limits: { ...limits.image, maxPixels: 10_000 } }), 'MEDIA_TOO_LARGE');
  t.deepEqual(pixels?.details, { limit: 'pixels', max: 10_000 });
});
