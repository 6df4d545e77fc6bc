// What the upload scenario of bench/media.ts runs on: the backing services
// (bench/lib/services.ts: the environment's, or FerretDB and s3rver started
// through the dev-services module as `npm test` does, Redis external), the
// server process (bench/media/upload-server.ts) and the client process
// (bench/media/upload-client.ts), with typed calls to both. `stop()` ends the
// children, drops the run's database and Redis keys and stops the services.
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { z } from 'zod';
import { call } from '../lib/ipc.ts';
import { processCpuMs } from '../lib/nodes.ts';
import { benchServices, removeRun, type BenchServices } from '../lib/services.ts';
import {
  BENCH_TOKEN,
  clientReadySchema,
  doneReplySchema,
  rssReplySchema,
  serverReadySchema,
  takeReplySchema,
  uploadReplySchema,
  type RssReply,
  type UploadReply,
} from './upload-protocol.ts';

export interface UploadRig {
  /** The HTTP engine serving the tus routes (uws or ws). */
  engine: string;
  /** Where the client's own objects go (PutObject, multipart), under the run's prefix. */
  key(name: string): string;
  tus(bytes: number, patchBytes: number): Promise<UploadReply>;
  put(key: string, bytes: number): Promise<UploadReply>;
  multipart(key: string, bytes: number, partSize: number): Promise<UploadReply>;
  /** Deletes the client's objects and the server's completed uploads. */
  clean(keys: string[]): Promise<void>;
  /** The server's S3 and MongoDB tallies and CPU time since the last call (zeroed by it). */
  serverWork(): Promise<z.infer<typeof takeReplySchema>>;
  /** Zeroes the server's tallies. */
  resetServerWork(): Promise<void>;
  /**
   * CPU time so far, in ms, of each process the uploads run through: the
   * client, the server, and the embedded s3rver and FerretDB (absent when the
   * services come from the environment).
   */
  cpu(): Promise<Partial<Record<RigProcess, number>>>;
  rssStart(): Promise<RssReply>;
  rssStop(): Promise<RssReply>;
  stop(): Promise<void>;
}

export type RigProcess = 'client' | 'server' | 's3' | 'db';

const here = path.dirname(fileURLToPath(import.meta.url));
const tsx = import.meta.resolve('tsx');
const UPLOAD_TIMEOUT_MS = 600_000;

export async function startUploadRig(options: { sourceBytes: number; progress: (line: string) => void }): Promise<UploadRig> {
  const { progress } = options;
  const run = randomBytes(4).toString('hex');
  const dbName = `bench_media_${run}`;
  let backing: BenchServices | undefined;
  const children: { child: ChildProcess; exited: Promise<void> }[] = [];
  const stop = async () => {
    await Promise.all(children.map(({ child, exited }) => stopChild(child, exited)));
    const redis = backing ? new Redis(backing.redisUrl, { maxRetriesPerRequest: 1 }) : undefined;
    await removeRun({ backing, dbName, redis, keyPattern: `bench-media-${run}:*` }, progress);
  };
  try {
    backing = await benchServices('media', progress);
    const env = { ...process.env, ...backing.env, BENCH_MEDIA_RUN: run, FLOCK_DATA_DIR: path.join(backing.tmpDir, 'node') };
    const start = (file: string, execArgv: string[], extraEnv: Record<string, string>) => {
      const child = fork(path.join(here, file), [], {
        execArgv: [...execArgv, '--import', tsx],
        env: { ...env, ...extraEnv },
        // Their stdout (nothing, unless a flag such as --trace-gc writes there) goes to stderr: the bench's stdout is its JSON lines.
        stdio: ['ignore', 2, 'inherit', 'ipc'],
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      children.push({ child, exited });
      return { child, exited };
    };
    // --expose-gc: the RSS baseline is taken after collecting garbage, the lowest (strictest) baseline.
    // More flags for investigating, e.g. BENCH_MEDIA_SERVER_FLAGS=--trace-gc.
    const server = start('upload-server.ts', ['--expose-gc', ...(process.env.BENCH_MEDIA_SERVER_FLAGS?.split(/\s+/).filter(Boolean) ?? [])], {});
    const client = start('upload-client.ts', [], { BENCH_MEDIA_SOURCE_BYTES: String(options.sourceBytes) });
    const [serverReady] = await Promise.all([
      ready(server.child, server.exited, serverReadySchema, 'the upload server', 60_000),
      ready(client.child, client.exited, clientReadySchema, 'the upload client', 60_000),
    ]);
    const base = `http://127.0.0.1:${serverReady.port}`;
    const pids: Partial<Record<RigProcess, number>> = { ...(await servicePids()), client: client.child.pid, server: server.child.pid };
    const ask = async <S extends z.ZodTypeAny>(child: ChildProcess, schema: S, request: Record<string, unknown>): Promise<z.infer<S>> =>
      schema.parse(await call(child, request, UPLOAD_TIMEOUT_MS));
    const keyPrefix = `bench-media-${run}/direct`;
    return {
      engine: serverReady.engine,
      key: (name) => `${keyPrefix}/${name}`,
      tus: (bytes, patchBytes) => ask(client.child, uploadReplySchema, { op: 'tus', base, token: BENCH_TOKEN, bytes, patchBytes }),
      put: (key, bytes) => ask(client.child, uploadReplySchema, { op: 'put', key, bytes }),
      multipart: (key, bytes, partSize) => ask(client.child, uploadReplySchema, { op: 'multipart', key, bytes, partSize }),
      clean: async (keys) => {
        await ask(client.child, doneReplySchema, { op: 'remove', keys });
        await ask(server.child, doneReplySchema, { op: 'clean' });
      },
      serverWork: async () => {
        const taken = await ask(server.child, takeReplySchema, { op: 'take' });
        await ask(server.child, doneReplySchema, { op: 'reset' });
        return taken;
      },
      resetServerWork: async () => {
        await ask(server.child, doneReplySchema, { op: 'reset' });
      },
      cpu: async () => {
        const entries = Object.entries(pids).filter((e): e is [RigProcess, number] => e[1] !== undefined);
        return Object.fromEntries(await Promise.all(entries.map(async ([name, pid]) => [name, await processCpuMs(pid)] as const)));
      },
      rssStart: () => ask(server.child, rssReplySchema, { op: 'rss-start' }),
      rssStop: () => ask(server.child, rssReplySchema, { op: 'rss-stop' }),
      stop,
    };
  } catch (err) {
    await stop().catch((e: unknown) => progress(`stopping the upload rig failed: ${String(e)}`));
    throw err;
  }
}

/** The embedded s3rver's and FerretDB's processes: this process's children running them (none when the services come from the environment). */
async function servicePids(): Promise<Partial<Record<RigProcess, number>>> {
  const found: Partial<Record<RigProcess, number>> = {};
  for (const entry of await fs.readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== process.pid) continue;
    const command = await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (command.includes('s3rver-main')) found.s3 = Number(entry);
    else if (command.includes('ferretdb')) found.db = Number(entry);
  }
  return found;
}

/** The child's ready message, parsed; rejects when it exits first or takes longer than `timeoutMs`. */
function ready<S extends z.ZodTypeAny>(child: ChildProcess, exited: Promise<void>, schema: S, what: string, timeoutMs: number): Promise<z.infer<S>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: unknown) => {
      const parsed = schema.safeParse(message);
      if (!parsed.success) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(parsed.data);
    };
    child.on('message', onMessage);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (code ${child.exitCode}) before it was ready`));
    });
  });
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
