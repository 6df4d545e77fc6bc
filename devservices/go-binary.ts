// Builds a Go program once and caches the binary outside the repo, keyed by
// everything that determines it (module, version, source hash, Go version),
// so every clone, test worker and node on the machine shares one build. A lock
// directory makes concurrent builders wait for the first one instead of racing.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { FlockError } from '../server/errors.ts';

const run = promisify(execFile);

export type GoBuild =
  /** `go install module@version` */
  | { kind: 'install'; name: string; module: string; version: string }
  /** `go build` of a main package in a folder of this repo (its go.mod pins the deps). */
  | { kind: 'source'; name: string; dir: string };

export interface GoBinaryOptions {
  cacheDir: string;
  /** Called once when a build actually starts (it can take a minute). */
  onBuild?: (message: string) => void;
}

const LOCK_STALE_MS = 15 * 60_000;

export async function ensureGoBinary(build: GoBuild, options: GoBinaryOptions): Promise<string> {
  const goVersion = await goVersionOrThrow(build.name);
  const key = await buildKey(build, goVersion);
  const binDir = path.join(options.cacheDir, 'bin');
  const target = path.join(binDir, `${build.name}-${key}`);
  if (await isExecutable(target)) return target;

  await fs.mkdir(binDir, { recursive: true });
  const lock = `${target}.lock`;
  await acquireLock(lock);
  try {
    if (await isExecutable(target)) return target;
    options.onBuild?.(`building ${build.name} with ${goVersion} (cached at ${target})`);
    const tmpOut = `${target}.tmp-${process.pid}`;
    const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-trimpath -buildvcs=false' };
    try {
      if (build.kind === 'install') {
        const gobin = `${tmpOut}.d`;
        await fs.mkdir(gobin, { recursive: true });
        await run('go', ['install', `${build.module}@${build.version}`], {
          env: { ...env, GOBIN: gobin },
          maxBuffer: 16 * 1024 * 1024,
        });
        const produced = path.join(gobin, path.basename(build.module));
        await fs.rename(produced, target);
        await fs.rm(gobin, { recursive: true, force: true });
      } else {
        await run('go', ['build', '-o', tmpOut, '.'], { cwd: build.dir, env, maxBuffer: 16 * 1024 * 1024 });
        await fs.rename(tmpOut, target);
      }
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new FlockError('DEVSERVICES_START_FAILED', `go build of ${build.name} failed: ${stderr.slice(-2000) || String(err)}`, {
        cause: err,
      });
    }
    return target;
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}

async function goVersionOrThrow(name: string): Promise<string> {
  try {
    const { stdout } = await run('go', ['env', 'GOVERSION']);
    return stdout.trim();
  } catch (err) {
    throw new FlockError(
      'DEVSERVICES_UNAVAILABLE',
      `Go is needed to build the embedded ${name} but \`go\` was not found on PATH`,
      { cause: err },
    );
  }
}

async function buildKey(build: GoBuild, goVersion: string): Promise<string> {
  const hash = createHash('sha256').update(goVersion).update('\0').update(process.platform + process.arch);
  if (build.kind === 'install') {
    hash.update(`${build.module}@${build.version}`);
  } else {
    const files = (await fs.readdir(build.dir)).filter((f) => /\.(go|mod|sum)$/.test(f)).sort();
    for (const file of files) hash.update(file).update('\0').update(await fs.readFile(path.join(build.dir, file)));
  }
  return hash.digest('hex').slice(0, 16);
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await fs.access(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** mkdir is atomic: whoever creates the directory holds the lock. */
async function acquireLock(lock: string): Promise<void> {
  for (;;) {
    try {
      await fs.mkdir(lock);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const stat = await fs.stat(lock).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > LOCK_STALE_MS) {
        await fs.rm(lock, { recursive: true, force: true });
        continue;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
