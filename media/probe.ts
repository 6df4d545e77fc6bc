// How Flock runs ffprobe and ffmpeg on an uploaded file, and what it learns
// from ffprobe before spending any encoding time on it.
//
// Security: an uploaded file is hostile. ffmpeg's demuxers can open other
// files and URLs on a file's behalf (an HLS playlist, a concat list, an MOV
// data reference, a GAB2 subtitle in an AVI that is itself a playlist...), which
// has leaked local files and reached internal hosts through video pipelines.
// So every run reads its input through `inputArgs`: the demuxer is forced from
// the sniffed container (no probing of what the bytes claim to be), only that
// demuxer may be opened at all (`-format_whitelist` applies to nested opens
// too), and only the `file` protocol may be used. Every child process has a
// timeout and dies with the caller's AbortSignal.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { types } from 'node:util';
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import type { Container, MediaLimits } from './types.ts';

export type VideoContainer = Extract<Container, 'mp4' | 'matroska'>;

/** Codecs Flock decodes; anything else is refused before transcoding. */
export const VIDEO_CODECS: ReadonlySet<string> = new Set(['h264', 'hevc', 'vp8', 'vp9', 'av1', 'mpeg4']);
export const AUDIO_CODECS: ReadonlySet<string> = new Set(['aac', 'mp3', 'opus', 'vorbis', 'flac']);

export interface VideoProbe {
  durationMs: number;
  /** Display size: after the sample aspect ratio and the rotation are applied. */
  width: number;
  height: number;
  /** Clockwise degrees a player turns the coded frames (0, 90, 180, 270); ffmpeg applies it when transcoding. */
  rotation: number;
  videoCodec: string;
  audioCodec: string | null;
  /** Frames per second, 0 when the file does not say. */
  frameRate: number;
  hasAudio: boolean;
}

export interface ProbeOptions {
  ffprobePath: string;
  /** The container sniff() found; decides the demuxer. */
  container: VideoContainer;
  limits: MediaLimits['video'];
  signal?: AbortSignal | undefined;
  /** Default 30 s. */
  timeoutMs?: number | undefined;
}

/**
 * What the video in `file` is. Throws a FlockError: MEDIA_UNSUPPORTED_TYPE
 * (not readable as its container, no video stream, no duration),
 * MEDIA_CODEC_UNSUPPORTED (a codec outside VIDEO_CODECS / AUDIO_CODECS),
 * MEDIA_TOO_LARGE (details.limit 'seconds' or 'pixels', details.max).
 */
export async function probeVideo(file: string, options: ProbeOptions): Promise<VideoProbe> {
  const args = ['-v', 'error', ...inputArgs(file, options.container), '-print_format', 'json', '-show_format', '-show_streams'];
  let stdout: Buffer;
  try {
    ({ stdout } = await runTool(options.ffprobePath, args, { timeoutMs: options.timeoutMs ?? 30_000, signal: options.signal, maxStdoutBytes: 4 << 20 }));
  } catch (err) {
    if (err instanceof ToolExit) throw new FlockError('MEDIA_UNSUPPORTED_TYPE', `The file is not a readable ${options.container} file`, { cause: err });
    throw err;
  }
  const parsed = ffprobeSchema.safeParse(parseJson(stdout));
  if (!parsed.success) throw new FlockError('MEDIA_PROCESSING_FAILED', 'ffprobe answered in an unexpected shape', { cause: parsed.error });
  return describe(parsed.data, options.limits);
}

/**
 * The input half of every ffprobe and ffmpeg command line for an uploaded
 * file: only the `file` protocol, only the demuxer of the sniffed container,
 * forced (mov's external data references off besides).
 */
export function inputArgs(file: string, container: VideoContainer): string[] {
  const demuxer = DEMUXERS[container];
  const extra = container === 'mp4' ? ['-enable_drefs', '0'] : [];
  // `file:` and an absolute path: a name like `concat:a|b` or `subfile,,...` stays a name.
  return ['-protocol_whitelist', 'file', '-format_whitelist', demuxer, '-f', demuxer, ...extra, '-i', `file:${path.resolve(file)}`];
}

const DEMUXERS = { mp4: 'mov', matroska: 'matroska' } as const satisfies Record<VideoContainer, string>;

// ---- ffprobe's answer ----

const streamSchema = z.object({
  codec_type: z.string().optional(),
  codec_name: z.string().optional(),
  width: z.number().int().optional(),
  height: z.number().int().optional(),
  sample_aspect_ratio: z.string().optional(),
  avg_frame_rate: z.string().optional(),
  r_frame_rate: z.string().optional(),
  duration: z.string().optional(),
  disposition: z.object({ attached_pic: z.number().optional() }).optional(),
  tags: z.object({ rotate: z.string().optional() }).optional(),
  side_data_list: z.array(z.object({ side_data_type: z.string().optional(), rotation: z.number().optional() })).optional(),
});
type ProbedStream = z.output<typeof streamSchema>;

const ffprobeSchema = z.object({
  streams: z.array(streamSchema).default([]),
  format: z.object({ duration: z.string().optional() }).default({}),
});

function describe(probed: z.output<typeof ffprobeSchema>, limits: MediaLimits['video']): VideoProbe {
  // Cover art in an MP4 is a video stream too: it is not the video.
  const video = probed.streams.find((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1);
  if (!video?.codec_name || !video.width || !video.height) throw new FlockError('MEDIA_UNSUPPORTED_TYPE', 'The file has no video stream');
  const audio = probed.streams.find((s) => s.codec_type === 'audio');
  if (!VIDEO_CODECS.has(video.codec_name))
    throw new FlockError('MEDIA_CODEC_UNSUPPORTED', `Video codec ${video.codec_name} is not supported`, { details: { codec: video.codec_name } });
  if (audio && !(audio.codec_name && AUDIO_CODECS.has(audio.codec_name)))
    throw new FlockError('MEDIA_CODEC_UNSUPPORTED', `Audio codec ${audio.codec_name ?? 'unknown'} is not supported`, {
      details: { codec: audio.codec_name ?? null },
    });

  const seconds = positive(probed.format.duration) ?? positive(video.duration);
  if (seconds === undefined) throw new FlockError('MEDIA_UNSUPPORTED_TYPE', 'The file does not say how long it is');
  if (seconds > limits.maxSeconds)
    throw new FlockError('MEDIA_TOO_LARGE', `The video is longer than ${limits.maxSeconds} s`, { details: { limit: 'seconds', max: limits.maxSeconds } });
  if (video.width * video.height > limits.maxPixels)
    throw new FlockError('MEDIA_TOO_LARGE', `The video has more than ${limits.maxPixels} pixels per frame`, {
      details: { limit: 'pixels', max: limits.maxPixels },
    });

  const rotation = rotationOf(video);
  const sar = ratio(video.sample_aspect_ratio);
  const shownWidth = sar && sar !== 1 ? Math.max(2, Math.round(video.width * sar)) : video.width;
  const [width, height] = rotation % 180 === 0 ? [shownWidth, video.height] : [video.height, shownWidth];
  return {
    durationMs: Math.round(seconds * 1000),
    width,
    height,
    rotation,
    videoCodec: video.codec_name,
    audioCodec: audio?.codec_name ?? null,
    frameRate: ratio(video.avg_frame_rate) ?? ratio(video.r_frame_rate) ?? 0,
    hasAudio: audio !== undefined,
  };
}

/** Clockwise degrees, a multiple of 90: the display matrix (counter-clockwise) or the older `rotate` tag (clockwise). */
function rotationOf(stream: ProbedStream): number {
  const matrix = stream.side_data_list?.find((d) => d.rotation !== undefined)?.rotation;
  const degrees = matrix !== undefined ? -matrix : Number(stream.tags?.rotate ?? 0);
  if (!Number.isFinite(degrees)) return 0;
  return (((Math.round(degrees / 90) * 90) % 360) + 360) % 360;
}

/** "30000/1001" -> 29.97; undefined for "0/0", "N/A" and the like. */
function ratio(text: string | undefined): number | undefined {
  const match = /^(\d+)[/:](\d+)$/.exec(text ?? '');
  if (!match) return undefined;
  const [num, den] = [Number(match[1]), Number(match[2])];
  return num > 0 && den > 0 ? num / den : undefined;
}

function positive(text: string | undefined): number | undefined {
  const n = Number(text);
  return text !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new FlockError('MEDIA_PROCESSING_FAILED', 'ffprobe did not answer JSON', { cause: err });
  }
}

// ---- running ffmpeg and ffprobe ----

export interface RunOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Called with each chunk of stdout instead of collecting it. */
  onStdout?: ((chunk: Buffer) => void) | undefined;
  /** Collected stdout beyond this kills the process (default 1 MiB). */
  maxStdoutBytes?: number | undefined;
}

/** A tool exited with a failure status; `stderr` holds the end of what it said. */
export class ToolExit extends Error {
  override readonly name = 'ToolExit';
  constructor(
    readonly tool: string,
    readonly status: number | null,
    readonly stderr: string,
  ) {
    super(`${path.basename(tool)} exited with ${status ?? 'a signal'}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
  }
}

const STDERR_KEEP = 8 * 1024;

/**
 * Runs `tool` with `args` (no shell), resolving with its stdout when it exits
 * with 0. Rejects with ToolExit on a failure status, with the signal's reason
 * when `signal` aborts, with MEDIA_PROCESSING_FAILED on the timeout or too
 * much output; in the last three cases the process is killed (SIGKILL) first.
 */
export function runTool(tool: string, args: readonly string[], options: RunOptions): Promise<{ stdout: Buffer; stderr: string }> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stdoutBytes = 0;
    let stderr = '';
    let failure: Error | undefined;
    const fail = (err: Error) => {
      failure ??= err;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(
      () => fail(new FlockError('MEDIA_PROCESSING_FAILED', `${path.basename(tool)} took longer than ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    const onAbort = () => fail(abortError(signal));
    signal?.addEventListener('abort', onAbort, { once: true });
    const maxStdout = options.maxStdoutBytes ?? 1 << 20;
    child.stdout.on('data', (chunk: Buffer) => {
      if (options.onStdout) {
        // A throwing callback (a progress reporter) ends the run instead of the process.
        try {
          return options.onStdout(chunk);
        } catch (err) {
          return fail(err instanceof Error ? err : new Error('onStdout threw', { cause: err }));
        }
      }
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) return fail(new FlockError('MEDIA_PROCESSING_FAILED', `${path.basename(tool)} wrote more than ${maxStdout} bytes`));
      chunks.push(chunk);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderr = (stderr + text).slice(-STDERR_KEEP);
    });
    child.on('error', fail);
    child.on('close', (status) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (failure) reject(failure);
      else if (status !== 0) reject(new ToolExit(tool, status, stderr));
      else resolve({ stdout: Buffer.concat(chunks), stderr });
    });
  });
}

/**
 * The error an aborted run rejects with: the signal's reason when it is an
 * ordinary Error, else (the DOMException AbortController makes) an Error of
 * the same name ('AbortError', 'TimeoutError') with the reason as its cause.
 */
export function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (types.isNativeError(reason)) return reason;
  const err = new Error('The operation was aborted', { cause: reason });
  err.name = reason instanceof DOMException ? reason.name : 'AbortError';
  return err;
}
