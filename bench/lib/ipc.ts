// IPC between the gateway bench (bench/gateway.ts) and its child processes:
// the three servers under test and the load generators. Every request carries
// an id and gets exactly one reply with the same id.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** What a server under test reports about itself. */
export interface ServerStats {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  /** Anonymous and file-backed resident memory (Linux /proc/self/status; 0 elsewhere). */
  rssAnon: number;
  rssFile: number;
  external: number;
  arrayBuffers: number;
  /** process.cpuUsage(), microseconds since the process started. */
  cpuUser: number;
  cpuSystem: number;
}

export type ProbeRequest = { id: number; op: 'stats' } | { id: number; op: 'gc'; rounds: number };

export interface Reply {
  id: number;
  error?: string;
  [field: string]: unknown;
}

function procStatusKb(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

export function serverStats(): ServerStats {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  let status = '';
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    // not Linux
  }
  return {
    rssAnon: procStatusKb(status, 'RssAnon'),
    rssFile: procStatusKb(status, 'RssFile'),
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    heapTotal: mem.heapTotal,
    external: mem.external,
    arrayBuffers: mem.arrayBuffers,
    cpuUser: cpu.user,
    cpuSystem: cpu.system,
  };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Answers the bench's `stats` and `gc` requests in a server process. `gc` runs
 * `global.gc()` (the server runs with --expose-gc) a few times with event-loop
 * turns in between, so weak callbacks and finalizers run too, then reports.
 */
export function installProbe(): void {
  if (!process.send) throw new Error('the probe needs an IPC channel (start the process with fork or stdio "ipc")');
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (message: ProbeRequest) => {
    void (async () => {
      if (message.op === 'gc') {
        if (!gc) {
          process.send!({ id: message.id, error: 'global.gc is not exposed (start with --expose-gc)' } satisfies Reply);
          return;
        }
        for (let i = 0; i < message.rounds; i++) {
          gc();
          await turn();
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      process.send!({ id: message.id, ...serverStats() } satisfies Reply);
    })();
  });
  // Leave with the bench: a server whose parent has gone must not linger.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

let seq = 0;

/** Sends one request to a child and resolves with its reply (rejects on an error reply, exit or timeout). */
export function call<T extends Reply = Reply>(child: ChildProcess, request: Record<string, unknown>, timeoutMs: number): Promise<T> {
  const id = ++seq;
  return new Promise<T>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m: Reply) => {
      if (typeof m !== 'object' || m === null || m.id !== id) return;
      done();
      if (m.error) reject(new Error(`${String(request.op)}: ${m.error}`));
      else resolve(m as T);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      done();
      reject(new Error(`child exited (code ${code}, signal ${signal}) during ${String(request.op)}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${String(request.op)}: no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send({ ...request, id });
  });
}
