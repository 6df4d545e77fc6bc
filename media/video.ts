// Video processing on local files: the adaptive ladder in one ffmpeg run
// (H.264 + AAC in CMAF segments that a DASH MPD and an HLS master playlist
// share), then the poster, the storyboard sprite with its WebVTT cues and the
// blurhash. Knows nothing of S3 or jobs: the caller hands in a file and an
// output directory and uploads what comes back in `files`.
//
// Every ffmpeg run reads its input through inputArgs (media/probe.ts), has a
// timeout and dies with the AbortSignal. When a run fails or is aborted, the
// files it wrote into the output directory are removed again.
import { encode } from 'blurhash';
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { FlockError } from '../kernel/errors.ts';
import { chooseLadder, type Rung } from './ladder.ts';
import { inputArgs, probeVideo, runTool, type VideoContainer, type VideoProbe } from './probe.ts';
import { sniff, SNIFF_BYTES } from './sniff.ts';
import type { MediaLimits, MediaOutput, Rendition } from './types.ts';

export type VideoOutput = Extract<MediaOutput, { kind: 'video' }>;

export interface ProcessVideoOptions {
  ffmpegPath: string;
  ffprobePath: string;
  container: VideoContainer;
  limits: MediaLimits['video'];
  /** Whole percent, 0 to 100, never going back; 100 once everything is written. */
  onProgress?: ((percent: number) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * The whole video pipeline on a local file: checks the size and the sniffed
 * container, probes (probeVideo's refusals), transcodes the ladder, writes the
 * poster and the storyboard. Every path in the result is relative to `outDir`.
 */
export async function processVideoFile(input: string, outDir: string, options: ProcessVideoOptions): Promise<VideoOutput> {
  const { ffmpegPath, ffprobePath, container, limits, signal, onProgress } = options;
  await checkFile(input, container, limits.maxBytes);
  const probe = await probeVideo(input, { ffprobePath, container, limits, signal });
  const report = onProgress && monotonic(onProgress);
  // The ladder is most of the work; the poster and the storyboard are the last few percent.
  const ladder = await transcodeVideo(input, outDir, { ffmpegPath, container, probe, signal, onProgress: report && ((p) => report(Math.floor(p * 0.95))) });
  try {
    const stills = await posterAndStoryboard(input, outDir, { ffmpegPath, container, probe, signal });
    report?.(100);
    return {
      kind: 'video',
      width: probe.width,
      height: probe.height,
      durationMs: probe.durationMs,
      hasAudio: probe.hasAudio,
      hls: ladder.hls,
      dash: ladder.dash,
      renditions: ladder.renditions,
      poster: stills.poster,
      storyboard: stills.storyboard,
      blurhash: stills.blurhash,
      files: [...ladder.files, ...stills.files],
    };
  } catch (err) {
    await removeFiles(outDir, ladder.files);
    throw err;
  }
}

// ---- the ladder ----

/** Segment length, seconds: keyframes are forced on these boundaries, so every rendition switches at the same instants. */
export const SEGMENT_SECONDS = 4;

export interface TranscodeOptions {
  ffmpegPath: string;
  container: VideoContainer;
  probe: VideoProbe;
  onProgress?: ((percent: number) => void) | undefined;
  signal?: AbortSignal | undefined;
  /** Default: 2 minutes plus ten times the video's duration. */
  timeoutMs?: number | undefined;
}

export interface TranscodeResult {
  renditions: Rendition[];
  /** The HLS master playlist and the DASH MPD, relative to outDir. */
  hls: 'master.m3u8';
  dash: 'manifest.mpd';
  /** Every file ffmpeg wrote, relative to outDir. */
  files: string[];
}

/** Transcodes `input` into the ladder for its size, in `outDir` (created if missing). */
export async function transcodeVideo(input: string, outDir: string, options: TranscodeOptions): Promise<TranscodeResult> {
  const { probe } = options;
  const ladder = chooseLadder(probe.width, probe.height);
  await fs.mkdir(outDir, { recursive: true });
  // A retry starts from a clean slate: no segment of an earlier, interrupted run stays listed.
  await removeFiles(outDir, await ladderFiles(outDir));
  const progress = progressParser(probe.durationMs, options.onProgress);
  try {
    await runTool(options.ffmpegPath, [...ladderArgs(input, outDir, { container: options.container, probe, ladder }), '-progress', 'pipe:1', '-nostats'], {
      timeoutMs: options.timeoutMs ?? 120_000 + 10 * probe.durationMs,
      signal: options.signal,
      onStdout: progress.feed,
    });
  } catch (err) {
    await removeFiles(outDir, await ladderFiles(outDir));
    throw processingFailure(err, 'The video could not be transcoded', options.signal);
  }
  progress.end();
  return {
    renditions: ladder.map((rung, i) => ({ width: rung.width, height: rung.height, videoBitrate: rung.videoBitrate, playlist: `media_${i}.m3u8` })),
    hls: 'master.m3u8',
    dash: 'manifest.mpd',
    files: await ladderFiles(outDir),
  };
}

/**
 * The ffmpeg arguments of the ladder run, without progress reporting: one
 * decode, split and scaled per rung, libx264 veryfast with closed GOPs and a
 * keyframe forced every SEGMENT_SECONDS, AAC 128k stereo, written by the DASH
 * muxer as CMAF segments with an HLS playlist per stream and a master playlist.
 * Source metadata (location, device) is not copied.
 */
export function ladderArgs(input: string, outDir: string, options: { container: VideoContainer; probe: VideoProbe; ladder: Rung[] }): string[] {
  const { probe, ladder } = options;
  // Every rendition shows at the source's aspect ratio exactly (the DASH muxer insists), whatever rounding its size needed.
  const dar = `${probe.width}/${probe.height}`;
  const capFps = probe.frameRate > 60 ? 'fps=60,' : '';
  const graph = [
    `[0:v:0]${capFps}split=${ladder.length}${ladder.map((_, i) => `[s${i}]`).join('')}`,
    ...ladder.map((rung, i) => `[s${i}]scale=${rung.width}:${rung.height},setdar=${dar}[v${i}]`),
  ].join(';');
  const rates = ladder.flatMap((rung, i) => [
    `-b:v:${i}`,
    String(rung.videoBitrate),
    `-maxrate:v:${i}`,
    String(Math.round(rung.videoBitrate * 1.1)),
    `-bufsize:v:${i}`,
    String(rung.videoBitrate * 2),
  ]);
  const audio = probe.hasAudio ? ['-map', '0:a:0', '-c:a', 'aac', '-b:a', '128k', '-ac', '2'] : [];
  return [
    ...['-nostdin', '-hide_banner', '-loglevel', 'error', '-y'],
    ...inputArgs(input, options.container),
    ...['-filter_complex', graph, ...ladder.flatMap((_, i) => ['-map', `[v${i}]`])],
    ...['-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'high', '-pix_fmt', 'yuv420p', '-flags', '+cgop', '-sc_threshold', '0'],
    ...['-force_key_frames', `expr:gte(t,n_forced*${SEGMENT_SECONDS})`, ...rates],
    ...audio,
    ...['-map_metadata', '-1', '-map_chapters', '-1'],
    ...['-f', 'dash', '-seg_duration', String(SEGMENT_SECONDS), '-use_template', '1', '-use_timeline', '1'],
    ...['-adaptation_sets', probe.hasAudio ? 'id=0,streams=v id=1,streams=a' : 'id=0,streams=v'],
    ...['-init_seg_name', 'init-$RepresentationID$.m4s', '-media_seg_name', 'chunk-$RepresentationID$-$Number%05d$.m4s'],
    ...['-hls_playlist', '1', '-hls_master_name', 'master.m3u8'],
    path.join(outDir, 'manifest.mpd'),
  ];
}

/** ffmpeg's `-progress` lines (key=value) as whole percents of `durationMs`: monotonic, each at most once, 100 only from end(). */
function progressParser(durationMs: number, onProgress: ((percent: number) => void) | undefined) {
  let partial = '';
  const report = monotonic(onProgress ?? (() => {}));
  return {
    feed: (chunk: Buffer) => {
      const lines = (partial + chunk.toString('latin1')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const match = /^out_time_us=(\d+)/.exec(line);
        if (match && durationMs > 0) report(Math.min(99, Math.floor(Number(match[1]) / 10 / durationMs)));
      }
    },
    end: () => report(100),
  };
}

/** `onProgress` called only with percents above every earlier one. */
function monotonic(onProgress: (percent: number) => void): (percent: number) => void {
  let last = -1;
  return (percent) => {
    if (percent <= last) return;
    last = percent;
    onProgress(percent);
  };
}

// ---- poster, storyboard, blurhash ----

export const POSTER_MAX_WIDTH = 1280;
export const STORYBOARD_TILE_WIDTH = 160;
export const STORYBOARD_MAX_TILES = 100;
const STORYBOARD_MAX_COLUMNS = 10;

export interface StillsOptions {
  ffmpegPath: string;
  container: VideoContainer;
  probe: VideoProbe;
  signal?: AbortSignal | undefined;
}

export interface Stills {
  poster: 'poster.jpg';
  storyboard: VideoOutput['storyboard'];
  blurhash: string;
  files: string[];
}

/**
 * poster.jpg (the frame at a tenth of the duration, at display size capped to
 * POSTER_MAX_WIDTH wide), storyboard.jpg (one STORYBOARD_TILE_WIDTH-wide
 * thumbnail every `interval` whole seconds, at most STORYBOARD_MAX_TILES, in
 * rows of up to ten), storyboard.vtt (a cue per thumbnail, `storyboard.jpg#xywh=x,y,w,h`)
 * and the poster's blurhash (4x3 components).
 */
export async function posterAndStoryboard(input: string, outDir: string, options: StillsOptions): Promise<Stills> {
  await fs.mkdir(outDir, { recursive: true });
  const files = ['poster.jpg', 'storyboard.jpg', 'storyboard.vtt'];
  // The two ffmpeg runs go side by side; when one fails the other is stopped before the files go.
  const both = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, both.signal]) : both.signal;
  const stills = [writePoster(input, outDir, { ...options, signal }), writeStoryboard(input, outDir, { ...options, signal })] as const;
  try {
    const [blurhash, storyboard] = await Promise.all(stills);
    return { poster: 'poster.jpg', storyboard, blurhash, files };
  } catch (err) {
    both.abort();
    await Promise.allSettled(stills);
    await removeFiles(outDir, files);
    throw processingFailure(err, 'The poster or the storyboard could not be made', options.signal);
  }
}

/** Writes poster.jpg; returns its blurhash. */
async function writePoster(input: string, outDir: string, { ffmpegPath, container, probe, signal }: StillsOptions): Promise<string> {
  const width = Math.min(POSTER_MAX_WIDTH, probe.width);
  const height = Math.max(1, Math.round((width * probe.height) / probe.width));
  const grab = (seconds: number) =>
    rawFrames(ffmpegPath, ['-ss', seconds.toFixed(3), ...inputArgs(input, container)], `scale=${width}:${height},setsar=1`, width * height * 3, {
      signal,
      timeoutMs: 60_000,
    });
  // A tenth of the way in; a clip too short to have a frame there (a few frames long) shows its first.
  const frame = await grab((probe.durationMs / 1000) * 0.1).catch((err: unknown) => {
    if (signal?.aborted) throw err;
    return grab(0);
  });
  const raw = { raw: { width, height, channels: 3 } } as const;
  await sharp(frame, raw).jpeg({ quality: 82, progressive: true, mozjpeg: true }).toFile(path.join(outDir, 'poster.jpg'));
  const small = await sharp(frame, raw).resize(32, 32, { fit: 'inside' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return encode(new Uint8ClampedArray(small.data), small.info.width, small.info.height, 4, 3);
}

/** Writes storyboard.jpg and storyboard.vtt. */
async function writeStoryboard(input: string, outDir: string, { ffmpegPath, container, probe, signal }: StillsOptions): Promise<Stills['storyboard']> {
  const seconds = probe.durationMs / 1000;
  const interval = Math.max(1, Math.ceil(seconds / STORYBOARD_MAX_TILES));
  const tiles = Math.max(1, Math.ceil(seconds / interval));
  const columns = Math.min(STORYBOARD_MAX_COLUMNS, tiles);
  const rows = Math.ceil(tiles / columns);
  const w = STORYBOARD_TILE_WIDTH;
  const h = Math.max(2, 2 * Math.round((w * probe.height) / probe.width / 2));
  const [width, height] = [w * columns, h * rows];
  const sprite = await rawFrames(
    ffmpegPath,
    inputArgs(input, container),
    `fps=1/${interval}:eof_action=pass,scale=${w}:${h},setsar=1,tile=${columns}x${rows}`,
    width * height * 3,
    {
      signal,
      timeoutMs: 60_000 + 2 * probe.durationMs,
    },
  );
  await sharp(sprite, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 70, mozjpeg: true })
    .toFile(path.join(outDir, 'storyboard.jpg'));
  const cues = Array.from({ length: tiles }, (_, i) => {
    const [x, y] = [(i % columns) * w, Math.floor(i / columns) * h];
    return `${vttTime(i * interval)} --> ${vttTime(Math.min((i + 1) * interval, seconds))}\nstoryboard.jpg#xywh=${x},${y},${w},${h}\n`;
  });
  await fs.writeFile(path.join(outDir, 'storyboard.vtt'), `WEBVTT\n\n${cues.join('\n')}`);
  return { image: 'storyboard.jpg', vtt: 'storyboard.vtt', interval, columns, rows };
}

/** The first frame ffmpeg's `filter` makes of the input, as packed RGB of exactly `bytes` bytes. */
async function rawFrames(ffmpegPath: string, input: string[], filter: string, bytes: number, run: { signal?: AbortSignal | undefined; timeoutMs: number }) {
  const args = [
    '-nostdin',
    '-hide_banner',
    '-loglevel',
    'error',
    ...input,
    '-map',
    '0:v:0',
    '-vf',
    filter,
    '-frames:v',
    '1',
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    'pipe:1',
  ];
  const { stdout } = await runTool(ffmpegPath, args, { ...run, maxStdoutBytes: bytes });
  if (stdout.length !== bytes) throw new FlockError('MEDIA_PROCESSING_FAILED', `ffmpeg made ${stdout.length} bytes of a frame of ${bytes}`);
  return stdout;
}

function vttTime(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(Math.floor(ms / 3_600_000))}:${pad(Math.floor(ms / 60_000) % 60)}:${pad(Math.floor(ms / 1000) % 60)}.${pad(ms % 1000, 3)}`;
}

// ---- files ----

/** The size limit and the container, from the file itself (the caller's word for the container is checked, not trusted). */
async function checkFile(input: string, container: VideoContainer, maxBytes: number): Promise<void> {
  const handle = await fs.open(input, 'r');
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new FlockError('MEDIA_TOO_LARGE', `The video is larger than ${maxBytes} bytes`, { details: { limit: 'bytes', max: maxBytes } });
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(SNIFF_BYTES), 0, SNIFF_BYTES, 0);
    const sniffed = sniff(buffer.subarray(0, bytesRead));
    if (sniffed?.container !== container) throw new FlockError('MEDIA_UNSUPPORTED_TYPE', `The file is not a ${container} video`);
  } finally {
    await handle.close();
  }
}

/** The files of a ladder run in `dir`: the MPD, the playlists, the init and media segments. */
async function ladderFiles(dir: string): Promise<string[]> {
  const names = await fs.readdir(dir);
  return names.filter((f) => /^(manifest\.mpd|master\.m3u8|media_\d+\.m3u8|init-\d+\.m4s|chunk-\d+-\d+\.m4s)$/.test(f)).sort();
}

async function removeFiles(dir: string, files: string[]): Promise<void> {
  await Promise.all(files.map((f) => fs.rm(path.join(dir, f), { force: true })));
}

/** A FlockError or the abort stays as it is; anything else (a failed ffmpeg run, sharp) becomes MEDIA_PROCESSING_FAILED with it as the cause. */
function processingFailure(err: unknown, message: string, signal: AbortSignal | undefined): unknown {
  if (err instanceof FlockError || signal?.aborted) return err;
  return new FlockError('MEDIA_PROCESSING_FAILED', message, { cause: err });
}
