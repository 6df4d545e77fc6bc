// Media processing and uploads measured side by side with the bare tools they
// wrap, in one run (`npm run bench:media`; see BENCHMARKS.md, "Media").
//
//   ladder   transcodeVideo (media/video.ts) on a 10 s 1280x720 H.264+AAC clip
//            (720/480/360 ladder, CMAF segments, HLS + DASH, progress parsed)
//            vs the bare ffmpeg command with the same arguments (ladderArgs),
//            no progress; wall time per run
//   image    processImageFile (media/image.ts) on a 24 MP JPEG photo-like texture (orientation 6):
//            4 widths x WebP/AVIF/JPEG vs bare sharp doing the same 12
//            resizes and encodes (same encoder settings), one pipeline per
//            variant from the file, one after another; variants per second
//   upload   a 256 MiB tus upload (routes/uploads.ts over media/upload-store.ts
//            on the engine a node picks; PATCHes of 64 MiB) vs one PutObject
//            of the same bytes straight to S3 (bare) and vs an SDK multipart
//            upload with the store's part size, parts one after another, straight
//            to S3 (multipart: the floor of any multipart path); MiB per second.
//            Then the server's peak RSS growth over its GC'd baseline during a
//            1 GiB tus upload (sampled every 50 ms, and the kernel's VmHWM)
//
// The paths of a scenario run in alternating rounds (bare, flock, flock, bare,
// ...; three paths rotate), so load from outside the bench falls on all alike.
// Inputs are generated into a temporary directory with the real ffmpeg and
// sharp, removed at the end. Only the upload scenario needs backing services:
// the environment's, or FerretDB and s3rver started through the dev-services
// module as `npm test` does (Redis external), with the tus server and the
// uploader in child processes of their own (bench/media/upload-rig.ts).
// Scenarios are a list: a new one is an entry in SCENARIOS;
// BENCH_MEDIA_SCENARIOS=ladder,image picks some.
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
import { UPLOADS_COLLECTION } from '../media/upload-records.ts';
import { DEFAULT_PART_SIZE } from '../media/upload-store.ts';
import { ladderArgs, transcodeVideo } from '../media/video.ts';
import { emit, intEnv, percentile, progress, round, runBenchmark } from './lib/run.ts';
import type { RssReply, Tally } from './media/upload-protocol.ts';
import { startUploadRig, type RigProcess, type UploadRig } from './media/upload-rig.ts';

const run = promisify(execFile);

// ---- parameters ----

const LADDER_ROUNDS = intEnv('BENCH_MEDIA_LADDER_ROUNDS', 8);
const IMAGE_ROUNDS = intEnv('BENCH_MEDIA_IMAGE_ROUNDS', 6);
const UPLOAD_ROUNDS = intEnv('BENCH_MEDIA_UPLOAD_ROUNDS', 3);
const MiB = 1024 * 1024;
const UPLOAD_BYTES = intEnv('BENCH_MEDIA_UPLOAD_MIB', 256) * MiB;
/** uWS refuses a Content-Length of 10^9 or more: a large file goes in several PATCHes, as a tus client's chunkSize makes it. */
const PATCH_BYTES = intEnv('BENCH_MEDIA_PATCH_MIB', 64) * MiB;
const RSS_UPLOAD_BYTES = intEnv('BENCH_MEDIA_RSS_UPLOAD_MIB', 1024) * MiB;
const MB = 1e6;
const LIMITS: MediaLimits = {
  image: { maxBytes: 100 << 20, maxPixels: 100_000_000 },
  video: { maxBytes: 1 << 30, maxSeconds: 3600, maxPixels: 3840 * 2160 },
};

/** What every scenario gets: the tools, a directory of its own, and what is made on first use: the generated inputs, the upload rig. */
interface BenchContext {
  tools: MediaTools;
  dir: (name: string) => Promise<string>;
  inputs: () => Promise<{ clip720: string; photo: string }>;
  uploadRig: () => Promise<UploadRig>;
}

/** The paths of a scenario: the baseline (bare), a second baseline where there is one, and Flock's. */
type PathName = 'bare' | 'multipart' | 'flock';

/** One measured path (a baseline or Flock's) of a scenario: a JSON line and a table row. */
interface PathResult {
  scenario: string;
  path: PathName;
  runs: number;
  p50Ms: number;
  minMs: number;
  maxMs: number;
  /** Units of work per second at the p50 (variants, clips, MiB). */
  perSec: number;
  unit: string;
  /** p50s of what the path measured about itself (ladder: ffmpegWallMs, ffmpegCpuMs, nodeCpuMs, aroundFfmpegMs; upload: its steps, the server's S3 and MongoDB time). */
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
  /** What `measured` is in, for the table ('x', a ratio, unless set). */
  unit?: string;
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
      const { clip720 } = await inputs();
      const probe = await probeVideo(clip720, { ffprobePath: tools.ffprobePath, container: 'mp4', limits: LIMITS.video });
      const ladder = chooseLadder(probe.width, probe.height);
      // Both paths run ffmpeg through the same timing wrapper, so what each adds around ffmpeg shows apart from ffmpeg's own (load-driven) variance.
      const ffmpeg = await timedFfmpeg(tools.ffmpegPath, await dir('ffmpeg-timer'));
      const samples = await alternate(LADDER_ROUNDS, {
        bare: async () => {
          const out = await dir('ladder-bare');
          return { extra: await ffmpeg.measure(() => run(ffmpeg.path, ladderArgs(clip720, out, { container: 'mp4', probe, ladder }), { timeout: 600_000 })) };
        },
        flock: async () => {
          const out = await dir('ladder-flock');
          return {
            extra: await ffmpeg.measure(() => transcodeVideo(clip720, out, { ffmpegPath: ffmpeg.path, container: 'mp4', probe, onProgress: () => {} })),
          };
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
      const { photo } = await inputs();
      const widths = DEFAULT_IMAGE_WIDTHS;
      const variants = widths.length * IMAGE_FORMATS.length;
      const samples = await alternate(IMAGE_ROUNDS, {
        bare: async () => {
          const out = await dir('image-bare');
          for (const width of widths)
            for (const format of IMAGE_FORMATS) await encoder(sharp(photo).rotate().resize({ width }), format).toFile(path.join(out, `${width}.${format}`));
        },
        flock: async () => {
          const out = await dir('image-flock');
          const made = await processImageFile(photo, out, { limits: LIMITS.image, widths });
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
  {
    name: 'upload',
    run: async ({ uploadRig }) => {
      const rig = await uploadRig();
      const partSize = DEFAULT_PART_SIZE;
      progress(
        `upload: tus routes on ${rig.engine}; ${UPLOAD_BYTES / MiB} MiB per upload, PATCHes of ${PATCH_BYTES / MiB} MiB, parts of ${partSize / MiB} MiB`,
      );
      let n = 0;
      let lastWork: ServerWork | undefined;
      const paths = (bytes: number) => ({
        bare: withCpu(rig, async () => {
          const key = rig.key(`put-${n++}`);
          const sent = await rig.put(key, bytes);
          return { wallMs: sent.wallMs, after: () => rig.clean([key]) };
        }),
        multipart: withCpu(rig, async () => {
          const key = rig.key(`multipart-${n++}`);
          const sent = await rig.multipart(key, bytes, partSize);
          return { wallMs: sent.wallMs, extra: sent.steps, after: () => rig.clean([key]) };
        }),
        flock: withCpu(rig, async () => {
          await rig.resetServerWork();
          const sent = await rig.tus(bytes, PATCH_BYTES);
          lastWork = await rig.serverWork();
          return { wallMs: sent.wallMs, extra: { ...sent.steps, ...serverFigures(lastWork) }, after: () => rig.clean([]) };
        }),
      });
      // Warm-up, not counted: connections, the JIT, the services' first writes.
      const warmUp = Math.min(PATCH_BYTES, UPLOAD_BYTES);
      for (const [name, once] of Object.entries(paths(warmUp))) {
        const ran = await once();
        await ran.after?.();
        progress(`  warm-up ${name}, ${warmUp / MiB} MiB: ${Math.round(ran.wallMs ?? 0)} ms`);
      }
      const samples = await alternate(UPLOAD_ROUNDS, paths(UPLOAD_BYTES));
      const mib = UPLOAD_BYTES / MiB;
      const [bare, multipart, flock] = [
        summarize('upload', 'bare', samples.bare, mib, 'MiB'),
        summarize('upload', 'multipart', samples.multipart, mib, 'MiB'),
        summarize('upload', 'flock', samples.flock, mib, 'MiB'),
      ];
      if (lastWork) progress(`  the server's last tus upload: ${describeWork(lastWork)}`);

      progress(`upload: the server's RSS during a ${RSS_UPLOAD_BYTES / MiB} MiB tus upload, over its baseline after GC`);
      await rig.resetServerWork();
      await rig.rssStart();
      const cpuBefore = await rig.cpu();
      const big = await rig.tus(RSS_UPLOAD_BYTES, PATCH_BYTES);
      const memory = await rig.rssStop();
      const bigWork = await rig.serverWork();
      const bigCpu = cpuSpent(cpuBefore, await rig.cpu());
      await rig.clean([]);
      progress(`  the server's work: ${describeWork(bigWork)}`);
      const figures = memoryFigures(memory);
      const wall = round(big.wallMs, 1);
      const rss: PathResult = {
        scenario: 'upload-rss',
        path: 'flock',
        runs: 1,
        p50Ms: wall,
        minMs: wall,
        maxMs: wall,
        perSec: round(RSS_UPLOAD_BYTES / MiB / (big.wallMs / 1000), 2),
        unit: 'MiB',
        extra: { ...figures, ...Object.fromEntries(Object.entries({ ...big.steps, ...serverFigures(bigWork), ...bigCpu }).map(([k, v]) => [k, round(v, 1)])) },
      };

      const overPut = round(flock.perSec / bare.perSec, 3);
      const overMultipart = round(flock.perSec / multipart.perSec, 3);
      const growth = figures.growthMB!;
      return {
        results: [bare, multipart, flock, rss],
        targets: [
          {
            name: 'uploadTusOverPutObject',
            measured: overPut,
            target: 0.8,
            bound: 'min',
            met: overPut >= 0.8,
            says: `tus MiB/s >= 0.8x one PutObject of the same bytes straight to S3 (${flock.perSec} vs ${bare.perSec} MiB/s)`,
          },
          {
            name: 'uploadTusOverMultipart',
            measured: overMultipart,
            target: 0.8,
            bound: 'min',
            met: overMultipart >= 0.8,
            says: `the same bound against an SDK multipart upload with ${partSize / MiB} MiB parts straight to S3, the floor of any multipart path (${flock.perSec} vs ${multipart.perSec} MiB/s)`,
          },
          {
            name: 'uploadPeakRssGrowth',
            measured: growth,
            target: 64,
            bound: 'max',
            met: growth < 64,
            unit: ' MB',
            says: `server peak RSS growth during a ${RSS_UPLOAD_BYTES / MiB} MiB tus upload < 64 MB (process.memoryUsage() every 50 ms over the baseline after GC; the kernel's VmHWM: ${figures.hwmGrowthMB} MB)`,
            extra: { hwmGrowthMB: figures.hwmGrowthMB!, baselineMB: figures.baselineMB! },
          },
        ],
      };
    },
  },
];

let tmpDir: string | undefined;
let rigStarted: Promise<UploadRig> | undefined;

async function main(): Promise<void> {
  const loadAtStart = os.loadavg();
  const picked = process.env.BENCH_MEDIA_SCENARIOS?.split(',').map((s) => s.trim());
  const scenarios = SCENARIOS.filter((s) => !picked || picked.includes(s.name));
  if (scenarios.length === 0) throw new Error(`BENCH_MEDIA_SCENARIOS names none of ${SCENARIOS.map((s) => s.name).join(', ')}`);
  tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'flock-bench-media-'));
  const tools = await findMediaTools({ ffmpegPath: process.env.FFMPEG_PATH, ffprobePath: process.env.FFPROBE_PATH });
  progress(`tools: ${tools.description}`);
  const files = { clip720: path.join(tmpDir, 'clip720.mp4'), photo: path.join(tmpDir, 'photo.jpg') };
  let generated: Promise<typeof files> | undefined;
  const inputs = () =>
    (generated ??= (async () => {
      progress('generating the inputs: 10 s 1280x720 H.264+AAC clip, 6000x4000 JPEG with orientation 6');
      await Promise.all([makeClip720(tools.ffmpegPath, files.clip720), makePhoto(files.photo)]);
      return files;
    })());
  const uploadRig = () => (rigStarted ??= startUploadRig({ sourceBytes: UPLOAD_BYTES, progress }));
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
    const measured = await scenario.run({ tools, dir, inputs, uploadRig });
    for (const r of measured.results) emit(r);
    results.push(...measured.results);
    targets.push(...measured.targets);
  }
  emit({
    scenario: 'targets',
    ...Object.fromEntries(targets.map((t) => [t.name, { measured: t.measured, target: t.target, bound: t.bound, met: t.met, ...t.extra }])),
  });

  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  const lines = [
    '',
    `media on ${os.cpus().length} cores, load average ${load(loadAtStart)} at the start, ${load(os.loadavg())} at the end; alternating rounds`,
    'bare = the tool alone with the same settings (upload: one PutObject straight to S3); multipart = SDK multipart straight to S3',
    'scenario    path        runs    p50 ms    min ms    max ms         per s',
    '----------  ---------  -----  --------  --------  --------  ------------',
    ...results.map(
      (r) =>
        `${r.scenario.padEnd(10)}  ${r.path.padEnd(9)}  ${String(r.runs).padStart(5)}  ${fixed(r.p50Ms, 8)}  ${fixed(r.minMs, 8)}  ${fixed(r.maxMs, 8)}  ${`${r.perSec.toFixed(2)} ${r.unit}`.padStart(12)}`,
    ),
    ...results
      .filter((r) => Object.keys(r.extra).length > 0)
      .map(
        (r) =>
          `${r.scenario} ${r.path}: p50s ${Object.entries(r.extra)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
      ),
    ...targets.map((t) => `target ${t.says}: ${t.met ? 'MET' : 'MISSED'} (${t.measured}${t.unit ?? 'x'})`),
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}

/** One run of a path: its wall time and whatever else the path measured about itself. */
interface Sample {
  wallMs: number;
  extra: Record<string, number>;
}

/** What one run of a path reports: its wall time when it timed itself (else the time around it is taken), what else it measured, and what to do after it, untimed. */
interface PathRun {
  wallMs?: number;
  extra?: Record<string, number>;
  after?: () => Promise<void>;
}

const PATH_NAMES: readonly PathName[] = ['bare', 'multipart', 'flock'];

/** Runs each path `rounds` times, in rounds that rotate which goes first (two paths: bare, flock, then flock, bare, ...). */
async function alternate<K extends PathName>(rounds: number, paths: Record<K, () => Promise<PathRun | void>>): Promise<Record<K, Sample[]>> {
  const names = PATH_NAMES.filter((name): name is K => name in paths);
  const samples = Object.fromEntries(names.map((name) => [name, [] as Sample[]])) as Record<K, Sample[]>;
  for (let r = 0; r < rounds; r++) {
    const first = r % names.length;
    for (const name of [...names.slice(first), ...names.slice(0, first)]) {
      const started = performance.now();
      const ran = (await paths[name]()) ?? {};
      const wallMs = ran.wallMs ?? performance.now() - started;
      await ran.after?.();
      samples[name].push({ wallMs, extra: ran.extra ?? {} });
    }
    progress(`  round ${r + 1}/${rounds}: ${names.map((name) => `${name} ${Math.round(samples[name].at(-1)!.wallMs)} ms`).join(', ')}`);
  }
  return samples;
}

function summarize(scenario: string, which: PathName, samples: Sample[], units: number, unit: string): PathResult {
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

// ---- the upload server's own figures ----

/** The path with the CPU time each process of the rig spent during it (cpuClientMs, cpuServerMs, cpuS3Ms, cpuDbMs) and their sum, in its extra. */
function withCpu(rig: UploadRig, path: () => Promise<PathRun>): () => Promise<PathRun> {
  return async () => {
    const before = await rig.cpu();
    const ran = await path();
    return { ...ran, extra: { ...ran.extra, ...cpuSpent(before, await rig.cpu()) } };
  };
}

type CpuTimes = Partial<Record<RigProcess, number>>;

/** The CPU ms each process spent between two readings, and their sum. */
function cpuSpent(before: CpuTimes, after: CpuTimes): Record<string, number> {
  const spent = Object.entries(after).map(([name, ms]) => [`cpu${name[0]!.toUpperCase()}${name.slice(1)}Ms`, ms - (before[name as RigProcess] ?? 0)] as const);
  return { ...Object.fromEntries(spent), cpuTotalMs: spent.reduce((sum, [, ms]) => sum + ms, 0) };
}

/** What the upload server did during one upload: its S3 commands and MongoDB commands (count and total ms each), its CPU time, how long some command was in flight. */
interface ServerWork {
  s3: Tally;
  db: Tally;
  cpuMs: number;
  windowMs: number;
  busyMs: number;
}

/**
 * Where the server's time went, from its tallies. A part is stored with
 * UploadPart and then recorded (the locked update that pushes it onto the
 * upload's document) before the next part may go, while the client's next
 * part arrives; the complete assembles the object. serverWaitingMs is the
 * time no S3 or MongoDB command was in flight: bytes arriving that no part in
 * flight overlapped (a PATCH's first part), and the turns between PATCHes.
 */
function serverFigures(work: ServerWork): Record<string, number> {
  const total = (tally: Tally, pick: (name: string) => boolean) =>
    Object.entries(tally)
      .filter(([name]) => pick(name))
      .reduce((sum, [, { n, ms }]) => ({ n: sum.n + n, ms: sum.ms + ms }), { n: 0, ms: 0 });
  const parts = total(work.s3, (name) => name === 'UploadPartCommand');
  const complete = total(work.s3, (name) => name === 'CompleteMultipartUploadCommand');
  const otherS3 = total(work.s3, (name) => name !== 'UploadPartCommand' && name !== 'CompleteMultipartUploadCommand');
  const db = total(work.db, () => true);
  // UploadRecords.change: the updates under the lock, one per part (with the part pushed) and a few for the states.
  const changes = total(work.db, (shape) => shape.startsWith(`update ${UPLOADS_COLLECTION} {_id,lock.holder,state}`));
  return {
    serverUploadPartMs: parts.ms,
    serverParts: parts.n,
    serverCompleteMs: complete.ms,
    serverOtherS3Ms: otherS3.ms,
    serverDbMs: db.ms,
    serverDbCommands: db.n,
    serverPartRecordMs: changes.ms,
    serverWaitingMs: work.windowMs - work.busyMs,
    serverCpuMs: work.cpuMs,
  };
}

function describeWork(work: ServerWork): string {
  const list = (tally: Tally) =>
    Object.entries(tally)
      .sort(([, a], [, b]) => b.ms - a.ms)
      .map(([name, { n, ms }]) => `${name} ${n}x ${Math.round(ms)} ms`)
      .join('; ');
  return `${Math.round(work.windowMs)} ms, some S3 or MongoDB command in flight for ${Math.round(work.busyMs)} ms; CPU ${Math.round(work.cpuMs)} ms; S3: ${list(work.s3)}; MongoDB: ${list(work.db)}`;
}

/** The server's memory during the big upload, in MB (10^6 bytes, as the target is). */
function memoryFigures(m: RssReply): Record<string, number> {
  const mb = (bytes: number) => round(bytes / MB, 1);
  return {
    baselineMB: mb(m.baselineRss),
    peakMB: mb(m.peakRss),
    growthMB: mb(m.peakRss - m.baselineRss),
    hwmGrowthMB: m.peakHwm > 0 ? mb(m.peakHwm - m.baselineHwm) : Number.NaN,
    endMB: mb(m.endRss),
    // The peaks of V8's heap and of the memory outside it (Buffers: arrayBuffers, within external), over their baselines.
    heapUsedGrowthMB: mb(m.peakHeapUsed - m.baselineHeapUsed),
    externalGrowthMB: mb(m.peakExternal - m.baselineExternal),
    arrayBuffersGrowthMB: mb(m.peakArrayBuffers - m.baselineArrayBuffers),
    rssSamples: m.samples,
  };
}

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
  // A rig that failed to start has stopped what it started.
  const rig = await rigStarted?.catch(() => undefined);
  await rig?.stop();
  if (tmpDir) await fs.rm(tmpDir, { recursive: true, force: true });
}

await runBenchmark(main, cleanup, progress);
