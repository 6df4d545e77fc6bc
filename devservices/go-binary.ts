// Builds a Go program once and caches the binary outside the repo, keyed by
// everything that determines it (module, version, source hash, Go version),
// so every clone, test worker and node on the machine shares one build. A lock
// directory makes concurrent builders wait for the first one instead of racing.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { FlockError, systemCode } from '../kernel/errors.ts';

const run = promisify(execFile);

export type GoBuild =
  /** `go install module@version` */
  | { kind: 'install'; name: string; module: string; version: string }
  /** `go build` of a main package in a folder of this repo (its go.mod pins the deps). */
  | { kind: 'source'; name: string; dir: string; patches?: readonly GoSourcePatch[] };

/**
 * A one-line fix to a dependency's source, built from a patched copy of the
 * module (the module cache stays untouched). The build fails when `find` does not
 * occur exactly once, so a dependency upgrade cannot silently drop the fix.
 */
export interface GoSourcePatch {
  module: string;
  /** Path of the Go file inside the module. */
  file: string;
  find: string;
  replace: string;
}

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
        const cwd = build.patches?.length ? await preparePatchedSource(build.dir, build.patches, `${tmpOut}.src`, env) : build.dir;
        await run('go', ['build', '-o', tmpOut, '.'], { cwd, env, maxBuffer: 16 * 1024 * 1024 });
        await fs.rename(tmpOut, target);
        await fs.rm(`${tmpOut}.src`, { recursive: true, force: true });
      }
    } catch (err) {
      await fs.rm(`${tmpOut}.src`, { recursive: true, force: true });
      const stderr = typeof err === 'object' && err !== null && 'stderr' in err && typeof err.stderr === 'string' ? err.stderr : '';
      throw new FlockError('DEVSERVICES_START_FAILED', `go build of ${build.name} failed: ${stderr.slice(-2000) || String(err)}`, {
        cause: err,
      });
    }
    return target;
  } finally {
    await fs.rm(lock, { recursive: true, force: true });
  }
}

/**
 * Copies the main package to `workDir` with a patched copy of each patched
 * module next to it and a `replace` directive pointing at that copy (the
 * module cache is read-only and `go build -overlay` refuses files in it).
 */
async function preparePatchedSource(dir: string, patches: readonly GoSourcePatch[], workDir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const source = path.join(workDir, 'main');
  await fs.mkdir(source, { recursive: true });
  for (const file of await fs.readdir(dir)) {
    if (/\.(go|mod|sum)$/.test(file)) await fs.copyFile(path.join(dir, file), path.join(source, file));
  }
  const copies = new Map<string, string>();
  for (const patch of patches) {
    let copy = copies.get(patch.module);
    if (!copy) {
      const { stdout } = await run('go', ['mod', 'download', '-json', patch.module], { cwd: source, env, maxBuffer: 16 * 1024 * 1024 });
      const moduleDir = z.object({ Dir: z.string().optional() }).parse(JSON.parse(stdout)).Dir;
      if (!moduleDir) throw new Error(`go mod download ${patch.module} did not report a directory`);
      copy = path.join(workDir, `module-${copies.size}`);
      await fs.cp(moduleDir, copy, { recursive: true });
      await run('chmod', ['-R', 'u+w', copy]);
      await run('go', ['mod', 'edit', `-replace=${patch.module}=${copy}`], { cwd: source, env });
      copies.set(patch.module, copy);
    }
    const file = path.join(copy, patch.file);
    const text = await fs.readFile(file, 'utf8');
    const count = text.split(patch.find).length - 1;
    if (count !== 1) throw new Error(`patch of ${patch.module}/${patch.file}: expected ${JSON.stringify(patch.find)} once, found it ${count} times`);
    await fs.writeFile(file, text.replace(patch.find, patch.replace));
  }
  return source;
}

async function goVersionOrThrow(name: string): Promise<string> {
  try {
    const { stdout } = await run('go', ['env', 'GOVERSION']);
    return stdout.trim();
  } catch (err) {
    throw new FlockError('DEVSERVICES_UNAVAILABLE', `Go is needed to build the embedded ${name} but \`go\` was not found on PATH`, { cause: err });
  }
}

async function buildKey(build: GoBuild, goVersion: string): Promise<string> {
  const hash = createHash('sha256')
    .update(goVersion)
    .update('\0')
    .update(process.platform + process.arch);
  if (build.kind === 'install') {
    hash.update(`${build.module}@${build.version}`);
  } else {
    const files = (await fs.readdir(build.dir)).filter((f) => /\.(go|mod|sum)$/.test(f)).sort();
    for (const file of files)
      hash
        .update(file)
        .update('\0')
        .update(await fs.readFile(path.join(build.dir, file)));
    hash.update(JSON.stringify(build.patches ?? []));
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
      if (systemCode(err) !== 'EEXIST') throw err;
      const stat = await fs.stat(lock).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > LOCK_STALE_MS) {
        await fs.rm(lock, { recursive: true, force: true });
        continue;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
