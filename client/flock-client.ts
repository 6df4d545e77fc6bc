// The typed Flock client: a thin layer over socket.io-client whose request,
// ack and event types come from the same zod schemas the server validates
// with (type imports only: nothing of the server is bundled). Use it as is
// from a web or React Native app:
//
//   const flock = new FlockClient('https://flock.example', { token });
//   const { now } = await flock.request('system:ping', {});
//   flock.on('stream:event', (e) => { if (e.type === 'conversations:message') show(e.data.message); });
import { io, type Socket } from 'socket.io-client';
import type { AckDataOf, ClientEventName, ClientToServerEvents, RequestOf } from '../channels/event-map.ts';
import type { ServerEventName, ServerEventPayload, ServerToClientEvents } from '../channels/server-events.ts';
import type { ErrorCode } from '../kernel/errors.ts';

export type { AckDataOf, ClientEventName, RequestOf, ServerEventName, ServerEventPayload };
export type { ErrorCode };
/** Every event of the personal stream, discriminated by `type` (streams/catalogue.ts). */
export type { StreamEvent, StreamEventData, StreamEventType } from '../streams/catalogue.ts';

/** A code the server sends, or CLIENT_CONNECT_FAILED when the handshake failed without one. */
export type ClientErrorCode = ErrorCode | 'CLIENT_CONNECT_FAILED';

/** A refused request (or connection): `code` is one of the server's error codes. */
export class FlockRequestError extends Error {
  override readonly name = 'FlockRequestError';
  constructor(
    readonly code: ClientErrorCode,
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

export type FlockSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export class FlockClient {
  readonly socket: FlockSocket;
  private readonly timeoutMs: number;
  private token: string | undefined;

  constructor(url: string, options: FlockClientOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.token = options.token;
    this.socket = io(url, {
      transports: ['websocket'],
      ...options.socket,
      auth: (cb) => cb(this.token === undefined ? {} : { token: this.token }),
    });
  }

  /** Token used for the next (re)connection handshake. */
  setToken(token: string | undefined): void {
    this.token = token;
  }

  /** Sends a request and resolves with its ack data; rejects with FlockRequestError. */
  async request<E extends ClientEventName>(event: E, payload: RequestOf<E>, options: { timeoutMs?: number } = {}): Promise<AckDataOf<E>> {
    // Socket.IO types an emit over a union of event names as the union of their argument lists; the map is ours.
    const socket = this.socket.timeout(options.timeoutMs ?? this.timeoutMs);
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- the ack's type comes from the same event map.
    const emit = socket.emitWithAck.bind(socket) as (event: E, payload: RequestOf<E>) => Promise<Parameters<Parameters<ClientToServerEvents[E]>[1]>[0]>;
    const ack = await emit(event, payload);
    if (ack.ok) return ack.data;
    throw new FlockRequestError(ack.error.code, ack.error.message, ack.error.details);
  }

  on<E extends ServerEventName>(event: E, listener: (payload: ServerEventPayload<E>) => void): () => void {
    // Socket.IO cannot relate a generic event name to its listener type; the map is ours (channels/server-events.ts).
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- the listener's payload type comes from the same event map.
    const handler = listener as never;
    this.socket.on(event, handler);
    return () => {
      this.socket.off(event, handler);
    };
  }

  connected(): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('connect_error', (err: Error & { data?: { code?: ErrorCode } }) =>
        reject(new FlockRequestError(err.data?.code ?? 'CLIENT_CONNECT_FAILED', err.message)),
      );
    });
  }

  close(): void {
    this.socket.close();
  }
}
