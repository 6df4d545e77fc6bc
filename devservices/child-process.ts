// Starts a helper server as a child process and waits for the line that says
// it is ready. The child is tied to this process: it gets stdin as a pipe and
// is killed when this process exits, so dev services never outlive their node.
import { spawn, type ChildProcess } from 'node:child_process';
import { FlockError } from '../kernel/errors.ts';

export interface ManagedProcess {
  readonly child: ChildProcess;
  /** Captures of the ready pattern. */
  readonly match: RegExpMatchArray;
  stop(): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  ready: RegExp;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function startProcess(options: StartOptions): Promise<ManagedProcess> {
  const { name, command, args, ready, timeoutMs = 60_000 } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    live.add(child);
    let output = '';
    let settled = false;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.once('exit', () => live.delete(child));

    const fail = (message: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new FlockError('DEVSERVICES_START_FAILED', `${name}: ${message}\n${output.slice(-2000)}`, { cause }));
    };
    const onData = (chunk: Buffer) => {
      if (settled) return;
      output += chunk.toString();
      if (output.length > 64 * 1024) output = output.slice(-32 * 1024);
      const match = output.match(ready);
      if (!match) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        child,
        match,
        async stop() {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          const killTimer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(killTimer);
        },
      });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (err) => fail(`could not start ${command}: ${err.message}`, err));
    child.once('exit', (code, signal) => fail(`exited before it was ready (code ${code}, signal ${signal})`));
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs} ms`), timeoutMs);
  });
}
