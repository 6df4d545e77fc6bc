// The typed Flock client: a thin layer over socket.io-client whose request and
// ack types come from the same zod schemas the server validates with. Use it
// as is from a web or React Native app:
//
//   const flock = new FlockClient('https://flock.example', { token });
//   const { now } = await flock.request('system:ping', {});
import { io, type Socket } from 'socket.io-client';
import type { z } from 'zod';
import type { Ack, EventMap } from '../channels/define.ts';
import type { channels } from '../channels/registry.ts';
import type { ServerEventName, ServerEventPayload } from '../channels/server-events.ts';

type Events = EventMap<typeof channels>;
export type ClientEventName = Extract<keyof Events, string>;
export type RequestOf<E extends ClientEventName> = z.input<Events[E]['request']>;
export type AckDataOf<E extends ClientEventName> = z.output<Events[E]['ack']>;

/** A refused request: `code` is one of the server's error codes. */
export class FlockRequestError extends Error {
  override readonly name = 'FlockRequestError';
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface FlockClientOptions {
  /** Access token sent in the handshake (`auth.token`). */
  token?: string;
  /** Default request timeout. */
  timeoutMs?: number;
  /** Extra socket.io-client options (transports, reconnection...). */
  socket?: Parameters<typeof io>[1];
}

export class FlockClient {
  readonly socket: Socket;
  private readonly timeoutMs: number;

  constructor(url: string, options: FlockClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.socket = io(url, {
      transports: ['websocket'],
      ...options.socket,
      auth: (cb) => cb(this.token === undefined ? {} : { token: this.token }),
    });
    this.token = options.token;
  }

  private token: string | undefined;

  /** Token used for the next (re)connection handshake. */
  setToken(token: string | undefined): void {
    this.token = token;
  }

  /** Sends a request and resolves with its ack data; rejects with FlockRequestError. */
  async request<E extends ClientEventName>(event: E, payload: RequestOf<E>, options: { timeoutMs?: number } = {}): Promise<AckDataOf<E>> {
    const ack = (await this.socket.timeout(options.timeoutMs ?? this.timeoutMs).emitWithAck(event, payload)) as Ack<AckDataOf<E>>;
    if (ack.ok) return ack.data;
    throw new FlockRequestError(ack.error.code, ack.error.message, ack.error.details);
  }

  on<E extends ServerEventName>(event: E, listener: (payload: ServerEventPayload<E>) => void): () => void {
    const handler = (payload: ServerEventPayload<E>) => listener(payload);
    this.socket.on(event as string, handler);
    return () => {
      this.socket.off(event as string, handler);
    };
  }

  connected(): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', (err: Error & { data?: { code?: string } }) =>
        reject(new FlockRequestError(err.data?.code ?? 'CONNECT_FAILED', err.message)),
      );
    });
  }

  close(): void {
    this.socket.close();
  }
}
