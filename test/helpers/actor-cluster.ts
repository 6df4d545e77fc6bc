// Forks actor fixture nodes (test/fixtures/actor-node.ts) and talks to them
// over IPC, so tests can kill -9, SIGSTOP and restart real node processes.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { requireEnv } from './env.ts';
import { onJsonLines } from './outcome.ts';

const entry = fileURLToPath(new URL('../fixtures/actor-node.ts', import.meta.url));

export type AskResult = { ok: true; output: unknown } | { ok: false; error: { code: string; message: string } };

export interface ActorNode {
  nodeId: string;
  runtimeId: string;
  child: ChildProcess;
  logs: Record<string, unknown>[];
  stderr(): string;
  ask(type: string, key: string, message: string, input: unknown, timeoutMs?: number): Promise<AskResult>;
  active(): Promise<string[]>;
  exited: Promise<void>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  db: string;
  namespace: string;
  leaseMs?: number;
  idleMs?: number;
}

export async function startActorNode(nodeId: string, options: ClusterOptions): Promise<ActorNode> {
  const child = fork(entry, [], {
    execArgv: ['--import', import.meta.resolve('tsx')],
    env: {
      ...process.env,
      MONGO_URL: requireEnv('MONGO_URL'),
      REDIS_URL: requireEnv('REDIS_URL'),
      ACTOR_DB: options.db,
      ACTOR_NAMESPACE: options.namespace,
      NODE_ID: nodeId,
      LEASE_MS: String(options.leaseMs ?? 2_000),
      IDLE_MS: String(options.idleMs ?? 60_000),
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const logs: Record<string, unknown>[] = [];
  onJsonLines(child.stdout!, (entry) => logs.push(entry));
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waiting = new Map<number, (r: AskResult) => void>();
  let seq = 0;
  const runtimeId = await new Promise<string>((resolve, reject) => {
    child.on('message', (m: { ready?: boolean; runtimeId?: string; id?: number } & AskResult) => {
      if (m.ready) resolve(m.runtimeId!);
      else if (m.id !== undefined) {
        waiting.get(m.id)?.(m);
        waiting.delete(m.id);
      }
    });
    void exited.then(() => reject(new Error(`actor node ${nodeId} exited before ready:\n${stderr}`)));
  });
  void exited.then(() => {
    for (const resolve of waiting.values()) resolve({ ok: false, error: { code: 'NODE_EXITED', message: 'node exited' } });
    waiting.clear();
  });
  const call = (msg: Record<string, unknown>) =>
    new Promise<AskResult>((resolve) => {
      const id = seq++;
      if (!child.connected) {
        resolve({ ok: false, error: { code: 'NODE_EXITED', message: `node exited: ${stderr.slice(-500)}` } });
        return;
      }
      waiting.set(id, resolve);
      child.send({ ...msg, id });
    });
  return {
    nodeId,
    runtimeId,
    child,
    logs,
    exited,
    stderr: () => stderr,
    ask: (type, key, message, input, timeoutMs = 5_000) => call({ op: 'ask', type, key, message, input, timeoutMs }),
    active: async () => {
      const r = await call({ op: 'active' });
      return r.ok ? (r.output as string[]) : [];
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Activation intervals of one actor from the nodes' debug logs. */
export function activationIntervals(nodes: ActorNode[], address: string): { node: string; epoch: number; from: number; to: number }[] {
  const intervals: { node: string; epoch: number; from: number; to: number }[] = [];
  for (const node of nodes) {
    const open = new Map<number, number>();
    for (const entry of node.logs) {
      if (entry.actor !== address) continue;
      const at = Number(entry.time);
      if (entry.msg === 'actor activated') open.set(Number(entry.epoch), at);
      if (entry.msg === 'actor deactivated') {
        const from = open.get(Number(entry.epoch));
        if (from !== undefined) intervals.push({ node: node.nodeId, epoch: Number(entry.epoch), from, to: at });
        open.delete(Number(entry.epoch));
      }
    }
    for (const [epoch, from] of open) intervals.push({ node: node.nodeId, epoch, from, to: Number.POSITIVE_INFINITY });
  }
  return intervals.sort((x, y) => x.from - y.from);
}
