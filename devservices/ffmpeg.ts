// Finds ffmpeg and ffprobe: FFMPEG_PATH/FFPROBE_PATH, then PATH, then the
// binaries shipped in the @ffmpeg-installer/@ffprobe-installer npm packages.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { FlockError } from '../kernel/errors.ts';
import { z } from 'zod';

const run = promisify(execFile);
const require = createRequire(import.meta.url);

export interface MediaTools {
  ffmpegPath: string;
  ffprobePath: string;
  description: string;
}

export async function findMediaTools(configured: { ffmpegPath?: string | undefined; ffprobePath?: string | undefined }): Promise<MediaTools> {
  const ffmpeg = await locate('ffmpeg', configured.ffmpegPath, '@ffmpeg-installer/ffmpeg');
  const ffprobe = await locate('ffprobe', configured.ffprobePath, '@ffprobe-installer/ffprobe');
  return {
    ffmpegPath: ffmpeg.path,
    ffprobePath: ffprobe.path,
    description: `ffmpeg ${ffmpeg.version} (${ffmpeg.source}), ffprobe ${ffprobe.version} (${ffprobe.source})`,
  };
}

async function locate(tool: 'ffmpeg' | 'ffprobe', configured: string | undefined, npmPackage: string) {
  const candidates: { path: string; source: string }[] = [];
  if (configured) candidates.push({ path: configured, source: `${tool.toUpperCase()}_PATH` });
  else {
    candidates.push({ path: tool, source: 'PATH' });
    try {
      const { path: shipped } = z.object({ path: z.string() }).parse(require(npmPackage));
      candidates.push({ path: shipped, source: npmPackage });
    } catch {
      // Package or its platform binary not installed: PATH is the only option.
    }
  }
  for (const candidate of candidates) {
    try {
      const { stdout } = await run(candidate.path, ['-version'], { timeout: 10_000 });
      const version = /version (\S+)/.exec(stdout)?.[1] ?? 'unknown';
      return { ...candidate, version };
    } catch {
      // Try the next candidate.
    }
  }
  throw new FlockError(
    'DEVSERVICES_UNAVAILABLE',
    `${tool} not found (tried ${candidates.map((c) => c.path).join(', ')}). Install ffmpeg or set ${tool.toUpperCase()}_PATH.`,
  );
}
