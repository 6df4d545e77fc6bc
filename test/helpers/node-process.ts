// Runs a real Flock node (`server/main.ts`) as a child process on loopback, the
// way multi-node tests see the cluster: its port comes from its "listening" log.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tempDir, uniqueDbName } from './env.ts';
import { onJsonLines } from './outcome.ts';

const mainPath = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
const tsxUrl = import.meta.resolve('tsx');

export interface NodeProcess {
  port: number;
  url: string;
  child: ChildProcess;
  /** Every log line so far, parsed. */
  logs: Record<string, unknown>[];
  /** What the process wrote to stderr (the last 64 KiB): an uncaught exception ends up there, not in the logs. */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

export interface NodeOptions {
  env?: Record<string, string>;
  /** Shares a database between nodes of one cluster. */
  dbName?: string;
  timeoutMs?: number;
}

export async function startNodeProcess(options: NodeOptions = {}): Promise<NodeProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    MONGO_DB: options.dbName ?? uniqueDbName('node'),
    FLOCK_DATA_DIR: await tempDir('node'),
    ...options.env,
  };
  const child = spawn(process.execPath, ['--import', tsxUrl, mainPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node not listening after ${options.timeoutMs ?? 120_000} ms\n${stderr}`)), options.timeoutMs ?? 120_000);
    onJsonLines(child.stdout, (entry) => {
      logs.push(entry);
      if (entry.msg === 'listening' && typeof entry.port === 'number') {
        clearTimeout(timer);
        resolve(entry.port);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-64 * 1024);
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`node exited before listening (code ${code}, signal ${signal})\n${stderr}`));
    });
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    logs,
    stderr: () => stderr,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls `fn` until it returns true or the time runs out. */
export async function eventually(fn: () => Promise<boolean>, timeoutMs = 15_000, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
