// Media processing measured side by side with the bare tools it wraps, in one
// run (`npm run bench:media`; see BENCHMARKS.md, "Media").
//
//   ladder   transcodeVideo (media/video.ts) on a 10 s 1280x720 H.264+AAC clip
//            (720/480/360 ladder, CMAF segments, HLS + DASH, progress parsed)
//            vs the bare ffmpeg command with the same arguments (ladderArgs),
//            no progress; wall time per run
//   image    processImageFile (media/image.ts) on a 24 MP JPEG photo-like texture (orientation 6):
//            4 widths x WebP/AVIF/JPEG vs bare sharp doing the same 12
//            resizes and encodes (same encoder settings), one pipeline per
//            variant from the file, one after another; variants per second
//
// Each pair runs in alternating rounds (bare, flock, flock, bare, ...), so load
// from outside the bench falls on both alike. Inputs are generated into a
// temporary directory with the real ffmpeg and sharp, removed at the end. No
// backing service is needed. Scenarios are a list: a new one is an entry in
// SCENARIOS; BENCH_MEDIA_SCENARIOS=ladder,image picks some.
//
// stdout: one JSON line per measured path and a final "targets" line.
// stderr: progress and the table.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { findMediaTools, type MediaTools } from '../devservices/ffmpeg.ts';
import { DEFAULT_IMAGE_WIDTHS, encoder, IMAGE_FORMATS, processImageFile } from '../media/image.ts';
import { chooseLadder } from '../media/ladder.ts';
import { probeVideo } from '../media/probe.ts';
import type { MediaLimits } from '../media/types.ts';
import { ladderArgs, transcodeVideo } from '../media/video.ts';
import { emit, intEnv, percentile, progress, round, runBenchmark } from './lib/run.ts';

const run = promisify(execFile);

// ---- parameters ----

const LADDER_ROUNDS = intEnv('BENCH_MEDIA_LADDER_ROUNDS', 8);
const IMAGE_ROUNDS = intEnv('BENCH_MEDIA_IMAGE_ROUNDS', 6);
const LIMITS: MediaLimits = {
  image: { maxBytes: 100 << 20, maxPixels: 100_000_000 },
  video: { maxBytes: 1 << 30, maxSeconds: 3600, maxPixels: 3840 * 2160 },
};

/** What every scenario gets: the tools, a directory of its own, the generated inputs. */
interface BenchContext {
  tools: MediaTools;
  dir: (name: string) => Promise<string>;
  inputs: { clip720: string; photo: string };
}

/** One measured path (the baseline or Flock's) of a scenario: a JSON line and a table row. */
interface PathResult {
  scenario: string;
  path: 'bare' | 'flock';
  runs: number;
  p50Ms: number;
  minMs: number;
  maxMs: number;
  /** Units of work per second at the p50 (variants, or clips). */
  perSec: number;
  unit: string;
  /** p50s of what the path measured about itself (ladder: ffmpegWallMs, ffmpegCpuMs, nodeCpuMs, aroundFfmpegMs). */
  extra: Record<string, number>;
}

interface Target {
  name: string;
  measured: number;
  target: number;
  /** 'max': measured must be at most target; 'min': at least. */
  bound: 'max' | 'min';
  met: boolean;
  says: string;
  /** Further figures for the targets line. */
  extra?: Record<string, number>;
}

interface Scenario {
  name: string;
  run: (ctx: BenchContext) => Promise<{ results: PathResult[]; targets: Target[] }>;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'ladder',
    run: async ({ tools, dir, inputs }) => {
      const probe = await probeVideo(inputs.clip720, { ffprobePath: tools.ffprobePath, container: 'mp4', limits: LIMITS.video });
      const ladder = chooseLadder(probe.width, probe.height);
      // Both paths run ffmpeg through the same timing wrapper, so what each adds around ffmpeg shows apart from ffmpeg's own (load-driven) variance.
      const ffmpeg = await timedFfmpeg(tools.ffmpegPath, await dir('ffmpeg-timer'));
      const samples = await alternate(LADDER_ROUNDS, {
        bare: async () => {
          const out = await dir('ladder-bare');
          return ffmpeg.measure(() => run(ffmpeg.path, ladderArgs(inputs.clip720, out, { container: 'mp4', probe, ladder }), { timeout: 600_000 }));
        },
        flock: async () => {
          const out = await dir('ladder-flock');
          return ffmpeg.measure(() => transcodeVideo(inputs.clip720, out, { ffmpegPath: ffmpeg.path, container: 'mp4', probe, onProgress: () => {} }));
        },
      });
      const [bare, flock] = [summarize('ladder', 'bare', samples.bare, 1, 'clips'), summarize('ladder', 'flock', samples.flock, 1, 'clips')];
      const ratio = round(flock.p50Ms / bare.p50Ms, 3);
      // The fastest runs are the least disturbed by load from outside: their ratio is printed beside the target's.
      const fastest = round(flock.minMs / bare.minMs, 3);
      const cpu = round((flock.extra.ffmpegCpuMs! + flock.extra.nodeCpuMs!) / (bare.extra.ffmpegCpuMs! + bare.extra.nodeCpuMs!), 3);
      return {
        results: [bare, flock],
        targets: [
          {
            name: 'ladderOverBareP50',
            measured: ratio,
            target: 1.05,
            bound: 'max',
            met: ratio <= 1.05,
            says: `transcodeVideo p50 <= 1.05x bare ffmpeg p50 (fastest runs: ${fastest}x; CPU, ffmpeg + node, p50s: ${cpu}x)`,
            extra: { minOverMin: fastest, cpuOverCpu: cpu },
          },
        ],
      };
    },
  },
  {
    name: 'image',
    run: async ({ dir, inputs }) => {
      const widths = DEFAULT_IMAGE_WIDTHS;
      const variants = widths.length * IMAGE_FORMATS.length;
      const samples = await alternate(IMAGE_ROUNDS, {
        bare: async () => {
          const out = await dir('image-bare');
          for (const width of widths)
            for (const format of IMAGE_FORMATS)
              await encoder(sharp(inputs.photo).rotate().resize({ width }), format).toFile(path.join(out, `${width}.${format}`));
        },
        flock: async () => {
          const out = await dir('image-flock');
          const made = await processImageFile(inputs.photo, out, { limits: LIMITS.image, widths });
          if (made.variants.length !== variants) throw new Error(`processImageFile made ${made.variants.length} variants, not ${variants}`);
        },
      });
      const [bare, flock] = [summarize('image', 'bare', samples.bare, variants, 'variants'), summarize('image', 'flock', samples.flock, variants, 'variants')];
      const ratio = round(flock.perSec / bare.perSec, 3);
      return {
        results: [bare, flock],
        targets: [
          { name: 'imageOverBareRate', measured: ratio, target: 0.9, bound: 'min', met: ratio >= 0.9, says: 'processImageFile variants/s >= 0.9x bare sharp' },
        ],
      };
    },
  },
];

let tmpDir: string | undefined;

async function main(): Promise<void> {
  const picked = process.env.BENCH_MEDIA_SCENARIOS?.split(',').map((s) => s.trim());
  const scenarios = SCENARIOS.filter((s) => !picked || picked.includes(s.name));
  if (scenarios.length === 0) throw new Error(`BENCH_MEDIA_SCENARIOS names none of ${SCENARIOS.map((s) => s.name).join(', ')}`);
  tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'flock-bench-media-'));
  const tools = await findMediaTools({ ffmpegPath: process.env.FFMPEG_PATH, ffprobePath: process.env.FFPROBE_PATH });
  progress(`tools: ${tools.description}`);
  const inputs = { clip720: path.join(tmpDir, 'clip720.mp4'), photo: path.join(tmpDir, 'photo.jpg') };
  progress('generating the inputs: 10 s 1280x720 H.264+AAC clip, 6000x4000 JPEG with orientation 6');
  await Promise.all([makeClip720(tools.ffmpegPath, inputs.clip720), makePhoto(inputs.photo)]);
  let n = 0;
  const root = tmpDir;
  const dir = async (name: string) => {
    const d = path.join(root, `${name}-${n++}`);
    await fs.mkdir(d);
    return d;
  };

  const results: PathResult[] = [];
  const targets: Target[] = [];
  for (const scenario of scenarios) {
    progress(`${scenario.name}: running`);
    const measured = await scenario.run({ tools, dir, inputs });
    for (const r of measured.results) emit(r);
    results.push(...measured.results);
    targets.push(...measured.targets);
  }
  emit({
    scenario: 'targets',
    ...Object.fromEntries(targets.map((t) => [t.name, { measured: t.measured, target: t.target, bound: t.bound, met: t.met, ...t.extra }])),
  });

  const lines = [
    '',
    `media processing on ${os.cpus().length} cores; bare = the tool alone with the same settings; alternating rounds`,
    'scenario  path    runs    p50 ms    min ms    max ms        per s',
    '--------  -----  -----  --------  --------  --------  -----------',
    ...results.map(
      (r) =>
        `${r.scenario.padEnd(8)}  ${r.path.padEnd(5)}  ${String(r.runs).padStart(5)}  ${fixed(r.p50Ms, 8)}  ${fixed(r.minMs, 8)}  ${fixed(r.maxMs, 8)}  ${`${r.perSec.toFixed(2)} ${r.unit}`.padStart(11)}`,
    ),
    ...results
      .filter((r) => Object.keys(r.extra).length > 0)
      .map(
        (r) =>
          `${r.scenario} ${r.path}: p50s ${Object.entries(r.extra)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
      ),
    ...targets.map((t) => `target ${t.says}: ${t.met ? 'MET' : 'MISSED'} (${t.measured}x)`),
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}

/** One run of a path: its wall time and whatever else the path measured about itself. */
interface Sample {
  wallMs: number;
  extra: Record<string, number>;
}

/** Runs bare and flock `rounds` times each, alternating and swapping which goes first each round. */
async function alternate(
  rounds: number,
  paths: Record<'bare' | 'flock', () => Promise<Record<string, number> | void>>,
): Promise<{ bare: Sample[]; flock: Sample[] }> {
  const samples = { bare: [] as Sample[], flock: [] as Sample[] };
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 === 0 ? (['bare', 'flock'] as const) : (['flock', 'bare'] as const)) {
      const started = performance.now();
      const extra = await paths[name]();
      samples[name].push({ wallMs: performance.now() - started, extra: extra ?? {} });
    }
    progress(`  round ${r + 1}/${rounds}: bare ${Math.round(samples.bare.at(-1)!.wallMs)} ms, flock ${Math.round(samples.flock.at(-1)!.wallMs)} ms`);
  }
  return samples;
}

function summarize(scenario: string, which: PathResult['path'], samples: Sample[], units: number, unit: string): PathResult {
  const p50 = (xs: number[]) =>
    percentile(
      [...xs].sort((a, b) => a - b),
      0.5,
    );
  const walls = samples.map((s) => s.wallMs).sort((a, b) => a - b);
  const wall = p50(walls);
  const names = [...new Set(samples.flatMap((s) => Object.keys(s.extra)))];
  const extra = Object.fromEntries(names.map((n) => [n, round(p50(samples.map((s) => s.extra[n] ?? Number.NaN)), 1)]));
  return {
    scenario,
    path: which,
    runs: samples.length,
    p50Ms: round(wall, 1),
    minMs: round(walls[0]!, 1),
    maxMs: round(walls.at(-1)!, 1),
    perSec: round(units / (wall / 1000), 2),
    unit,
    extra,
  };
}

const fixed = (x: number, width: number) => x.toFixed(1).padStart(width);

/**
 * ffmpeg behind a bash wrapper that records its wall time and CPU time
 * (`times`: the user and system time of the shell's children) per run:
 * `measure(fn)` runs `fn` (which runs `path` once) and returns those with the
 * bench process's own CPU time meanwhile and the wall time around ffmpeg.
 */
async function timedFfmpeg(ffmpegPath: string, dir: string) {
  const script = path.join(dir, 'ffmpeg');
  const record = path.join(dir, 'times');
  const quoted = `'${ffmpegPath.replaceAll("'", `'\\''`)}'`;
  await fs.writeFile(
    script,
    `#!/usr/bin/env bash\nstart=$EPOCHREALTIME\n${quoted} "$@"\nstatus=$?\nend=$EPOCHREALTIME\n{ echo "$start $end"; times; } > '${record}'\nexit $status\n`,
    { mode: 0o755 },
  );
  return {
    path: script,
    measure: async (fn: () => Promise<unknown>): Promise<Record<string, number>> => {
      await fs.rm(record, { force: true });
      const started = performance.now();
      const cpu = process.cpuUsage();
      await fn();
      const nodeCpu = process.cpuUsage(cpu);
      const wallMs = performance.now() - started;
      const [span = '', , children = ''] = (await fs.readFile(record, 'utf8')).split('\n');
      const [start, end] = span.split(' ').map(Number);
      const [user, system] = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60_000 + Number(m[2]) * 1000);
      const ffmpegWallMs = (end! - start!) * 1000;
      return { ffmpegWallMs, ffmpegCpuMs: user! + system!, nodeCpuMs: (nodeCpu.user + nodeCpu.system) / 1000, aroundFfmpegMs: wallMs - ffmpegWallMs };
    },
  };
}

// ---- inputs (the same as test/helpers/media-fixtures.ts makes; benchmarks do not import tests) ----

async function makeClip720(ffmpegPath: string, out: string): Promise<void> {
  await run(
    ffmpegPath,
    [
      ...['-nostdin', '-hide_banner', '-loglevel', 'error', '-y'],
      ...['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '10'],
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '128k', '-movflags', '+faststart', out],
    ],
    { timeout: 120_000 },
  );
}

async function makePhoto(out: string): Promise<void> {
  const red = await sharp({ create: { width: 600, height: 600, channels: 3, background: { r: 255, g: 0, b: 0 } } })
    .png()
    .toBuffer();
  // Softened noise: texture that costs the encoders what a photo does, not a flat colour they compress for free.
  const texture = await sharp({ create: { width: 6000, height: 4000, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 120, sigma: 40 } } })
    .blur(1.5)
    .png({ compressionLevel: 1 })
    .toBuffer();
  await sharp(texture)
    .composite([{ input: red, left: 0, top: 0 }])
    .jpeg({ quality: 85 })
    .withMetadata({ orientation: 6 })
    .toFile(out);
}

async function cleanup(): Promise<void> {
  if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
}

await runBenchmark(main, cleanup, progress);
