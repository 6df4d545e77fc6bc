// The Flock nodes of the social bench: real server/main.ts processes on
// loopback, started the way test/helpers/node-process.ts starts a cluster (one
// shared MONGO_DB, TRUST_PROXY=true so each bench client is its own address),
// with bench/lib/db-probe.ts preloaded to count their MongoDB commands;
// plus the CPU time of any process, read from /proc, for cost per request.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { DbStats } from './db-commands.ts';
import type { DbProbeReply, DbProbeRequest } from './db-probe.ts';

export interface FlockNode {
  name: string;
  url: string;
  pid: number;
  /** How often the node logged each message (it logs at warn and above). */
  warnings: Map<string, number>;
  /** The MongoDB commands the node sent since the last reset (bench/lib/db-probe.ts). */
  dbStats(reset: boolean): Promise<DbStats>;
  stop(): Promise<void>;
}

export interface NodeOptions {
  name: string;
  /** Environment on top of process.env (services, MONGO_DB, limits...). */
  env: Record<string, string>;
  dataDir: string;
  /** Where the node's first log line of each kind goes. */
  log: (line: string) => void;
  timeoutMs?: number;
}

const mainPath = fileURLToPath(new URL('../../server/main.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');
const probe = new URL('./db-probe.ts', import.meta.url).href;

/** Starts a node at LOG_LEVEL=warn on a free port; ready once /healthz answers. */
export async function startNode(options: NodeOptions): Promise<FlockNode> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', tsx, '--import', probe, mainPath], {
    env: { ...process.env, ...options.env, PORT: String(port), HOST: '127.0.0.1', NODE_ID: options.name, LOG_LEVEL: 'warn', FLOCK_DATA_DIR: options.dataDir },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const warnings = new Map<string, number>();
  forwardLogs(child, options, warnings);

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  let gone = false;
  void exited.then(() => (gone = true));
  for (;;) {
    if (gone) throw new Error(`${options.name} exited (code ${child.exitCode}) before it was ready`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${options.name} did not answer /healthz in time`);
    }
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    name: options.name,
    url,
    pid: child.pid!,
    warnings,
    dbStats: (reset) => askProbe(child, reset),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * The node's JSON logs (warn and above) go to the bench's stderr, so stdout
 * stays clean JSON lines; a message that repeats is shown once and counted.
 * Other output (Node's own warnings) is shown once for all nodes.
 */
function forwardLogs(child: ChildProcess, options: NodeOptions, warnings: Map<string, number>): void {
  forEachLine(child, (line, entry) => {
    if (entry === undefined) {
      if (!shownOutput.has(line)) options.log(`[${options.name}] ${line}`);
      shownOutput.add(line);
      return;
    }
    const msg = String(entry.msg);
    const seen = warnings.get(msg) ?? 0;
    warnings.set(msg, seen + 1);
    if (seen === 0) options.log(`[${options.name}] ${line}`);
  });
}

/** Calls `onLine` for every non-blank line a child writes on stdout or stderr, with its JSON (a log entry) when it is JSON. */
export function forEachLine(child: ChildProcess, onLine: (line: string, entry: { msg?: unknown; err?: unknown } | undefined) => void): void {
  let partial = '';
  const onData = (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      let entry: { msg?: unknown; err?: unknown } | undefined;
      try {
        entry = JSON.parse(line) as { msg?: unknown; err?: unknown };
      } catch {
        // not a log line
      }
      onLine(line, entry);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
}

const shownOutput = new Set<string>();

let probeSeq = 0;

function askProbe(child: ChildProcess, reset: boolean): Promise<DbStats> {
  const id = probeSeq++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error('the node did not answer the db probe within 10 s'));
    }, 10_000);
    const onMessage = (m: DbProbeReply) => {
      if (m?.id !== id) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m.stats);
    };
    child.on('message', onMessage);
    child.send({ id, op: 'db-stats', reset } satisfies DbProbeRequest);
  });
}

/** A TCP port free on loopback right now (for a child process to listen on). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// Linux reports process CPU in clock ticks of 1/100 s (USER_HZ).
const TICK_MS = 10;

/** User + system CPU of a process in ms, from /proc/<pid>/stat; 0 when it is gone. */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name, which may contain spaces: state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * TICK_MS;
}

/** The pid of this process's child whose command name starts with `name` (e.g. the embedded FerretDB). */
export async function childPid(name: string): Promise<number | undefined> {
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === process.pid && comm.startsWith(name)) return Number(entry);
  }
  return undefined;
}
