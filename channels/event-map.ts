// The socket API as Socket.IO event maps, derived from the channel
// declarations and the server-event catalogue: the node's Server and the
// typed client are parameterised by these, so an emit or a listener of a
// name or payload the catalogue does not have fails to compile.
import type { z } from 'zod';
import type { Ack, EventMap, Session } from './define.ts';
import type { channels } from './registry.ts';
import type { ServerToClientEvents } from './server-events.ts';

export type { ServerToClientEvents };

type Events = EventMap<typeof channels>;
export type ClientEventName = Extract<keyof Events, string>;
export type RequestOf<E extends ClientEventName> = z.input<Events[E]['request']>;
export type AckDataOf<E extends ClientEventName> = z.output<Events[E]['ack']>;

/** Every request: one payload and the ack callback. */
export type ClientToServerEvents = { [E in ClientEventName]: (payload: RequestOf<E>, ack: (response: Ack<AckDataOf<E>>) => void) => void };

/** Nodes talk to each other through the actor runtime and Redis, not through Socket.IO's server-side emits. */
export type InterServerEvents = Record<never, never>;

/** What the gateway keeps on each socket. */
export interface SocketData {
  /** The signed-in session; undefined before sign-in and after logout. */
  session: Session | undefined;
  /** The client's address as the gateway resolved it (TRUST_PROXY). */
  ip: string;
  /** While signed out: the sweep second by which the socket must sign in or be disconnected. */
  signInBy: number | undefined;
}
