// The relay side of the messaging bench: starts the relay processes (the bare
// Socket.IO server of bench/lib/bare-socketio-server.ts with the classic Redis
// adapter Flock uses) and connects the bench's users to them. A message is a
// `publish` of the event `message` to the conversation's room.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { io, type Socket } from 'socket.io-client';

export interface RelayServer {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** What travels through the relay: the bench's own message identity, nothing else. */
export interface RelayPayload {
  conversationId: string;
  clientMessageId: string;
  text: string;
}

const entry = fileURLToPath(new URL('../lib/bare-socketio-server.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

/** Forks one relay process on a free port; ready once it says so over IPC. */
export async function startRelay(name: string, redisUrl: string, adapterKey: string, timeoutMs = 30_000): Promise<RelayServer> {
  const child = fork(entry, ['classic', redisUrl, adapterKey], { execArgv: ['--import', tsx], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} not ready within ${timeoutMs} ms`)), timeoutMs);
    child.on('message', (m: { ready?: boolean; port?: number }) => {
      if (!m?.ready || typeof m.port !== 'number') return;
      clearTimeout(timer);
      resolve(m.port);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (code ${child.exitCode}) before it was ready`));
    });
  });
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One user's socket on a relay, in its conversation's room. */
export class RelayClient {
  readonly socket: Socket;

  constructor(
    url: string,
    private readonly ackTimeoutMs: number,
  ) {
    this.socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  }

  async connected(): Promise<void> {
    if (this.socket.connected) return;
    await new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', reject);
    });
  }

  async join(room: string): Promise<void> {
    await this.expectOk('join', { room });
  }

  async send(to: string, payload: RelayPayload): Promise<void> {
    await this.expectOk('publish', { room: to, event: 'message', payload });
  }

  /** Every `message` the relay forwards to this socket, as it came off the wire. */
  onMessage(listener: (payload: unknown) => void): void {
    this.socket.on('message', listener);
  }

  close(): void {
    this.socket.close();
  }

  private async expectOk(event: string, request: object): Promise<void> {
    const reply: unknown = await this.socket.timeout(this.ackTimeoutMs).emitWithAck(event, request);
    if (typeof reply !== 'object' || reply === null || !('ok' in reply) || reply.ok !== true) throw new Error(`relay refused ${event}`);
  }
}
