// How a socket channel declares its events: one zod schema for the request
// and one for the ack payload, the roles it needs, its rate limit and size
// limit, and the handler. The dispatcher (server/dispatcher.ts), the AsyncAPI
// document (server/asyncapi.ts) and the typed client (client/) all come from
// these declarations.
import type { z } from 'zod';
import { ROLES, type Role, type Session } from '../auth/session.ts';
import type { ErrorBody } from '../kernel/errors.ts';
import { DEFAULT_REQUEST_BYTES, type RateLimit } from '../kernel/limits.ts';

export type { RateLimit };
import type { Logger } from '../kernel/logger.ts';
import type { GatewayServices } from './services.ts';

export { ROLES, type Role, type Session };

/** Who may send an event: anyone connected, or a signed-in user with one of the roles. */
export type Access = { public: true } | { roles: readonly Role[] };

export interface EventContext {
  /** The signed-in user; undefined only for public events. */
  session: Session | undefined;
  socketId: string;
  ip: string;
  log: Logger;
  /** Signs this socket in (or out) without reconnecting: login, refresh, logout. */
  setSession(session: Session | undefined): void;
  /** This socket's live subscriptions (presence, the home timeline). */
  rooms: SocketRooms;
  services: GatewayServices;
}

/** The live subscriptions of one socket; server/delivery.ts owns the rooms behind them. */
export interface SocketRooms {
  watchPresence(userIds: readonly string[]): void;
  unwatchPresence(userIds: readonly string[]): void;
  /** How many users this socket watches the presence of. */
  presenceWatched(): number;
  /** Live home timeline: the signed-in user's watch room and one room per author. */
  watchFeeds(authorIds: readonly string[]): void;
  unwatchFeeds(): void;
  watchingFeeds(): boolean;
}

/** Like EventContext, for events that require a session. */
export interface AuthedEventContext extends EventContext {
  session: Session;
}

export interface EventDef<Req extends z.ZodType = z.ZodType, Ack extends z.ZodType = z.ZodType, A extends Access = Access> {
  summary: string;
  request: Req;
  ack: Ack;
  access: A;
  rateLimit: RateLimit;
  /** Largest request accepted, in bytes of JSON; default 16 KiB. */
  maxBytes?: number;
  handler(ctx: A extends { public: true } ? EventContext : AuthedEventContext, input: z.output<Req>): Promise<z.input<Ack>>;
}

export interface ChannelDef<N extends string = string, E extends Record<string, EventDef> = Record<string, EventDef>> {
  name: N;
  description: string;
  events: E;
}

/** Identity function that keeps the literal types of a channel's events. */
export function defineEvent<Req extends z.ZodType, Ack extends z.ZodType, A extends Access>(def: EventDef<Req, Ack, A>): EventDef<Req, Ack, A> {
  return def;
}

export function defineChannel<N extends string, E extends Record<string, EventDef>>(channel: ChannelDef<N, E>): ChannelDef<N, E> {
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(channel.name)) throw new Error(`channel name ${channel.name} is not valid`);
  for (const event of Object.keys(channel.events)) {
    if (!/^[a-z][a-zA-Z0-9]{0,40}$/.test(event)) throw new Error(`event name ${channel.name}:${event} is not valid`);
  }
  return channel;
}

export const DEFAULT_MAX_BYTES = DEFAULT_REQUEST_BYTES;

/** Any signed-in user. */
export const SIGNED_IN = { roles: ROLES } as const;
const READ_RATE: RateLimit = { capacity: 60, perSecond: 20 };
const WRITE_RATE: RateLimit = { capacity: 30, perSecond: 5 };

/** Access and limits of a lookup by a signed-in user; spread into a declaration, then override what differs. */
export function reads(maxBytes: number) {
  return { access: SIGNED_IN, rateLimit: READ_RATE, maxBytes };
}

/** Access and limits of a change by a signed-in user; spread into a declaration, then override what differs. */
export function writes(maxBytes: number) {
  return { access: SIGNED_IN, rateLimit: WRITE_RATE, maxBytes };
}

/** The acknowledgement every request gets. */
export type Ack<T> = { ok: true; data: T } | { ok: false; error: ErrorBody };

/** `channel:event` -> its definition, for a tuple of channels. */
export type EventMap<C extends readonly ChannelDef[]> = {
  [Ch in C[number] as Ch['name']]: Ch;
} extends infer M
  ? {
      [
        K in C[number] extends infer Ch ? (Ch extends ChannelDef<infer N, infer E> ? `${N}:${Extract<keyof E, string>}` : never) : never
      ]: K extends `${infer N}:${infer Ev}` ? (M extends Record<N, ChannelDef<string, infer E>> ? E[Ev] : never) : never;
    }
  : never;
