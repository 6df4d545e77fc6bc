// How an HTTP route is declared: method, path, who may call it (anyone, an
// access token, a signature over the raw body), its body (none, JSON with a
// schema, the raw bytes, or a stream read with backpressure) and that body's
// size limit, its rate limit, and a handler with a typed result. The node's
// HTTP engine serves these declarations (server/http-engine.ts, on
// uWebSockets.js or node:http); handlers never see either.
import type { z } from 'zod';
import type { Role, Session } from '../auth/session.ts';
import type { RateLimit } from '../kernel/limits.ts';
import type { Logger } from '../kernel/logger.ts';
import type { RouteServices } from './services.ts';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** The request body a route takes. Every kind but `none` has a size limit; a larger body gets REQUEST_TOO_LARGE (413). */
export type BodySpec =
  | { kind: 'none' }
  /** Parsed as JSON, then with `schema` (REQUEST_INVALID, 400, when either fails). */
  | { kind: 'json'; schema: z.ZodType; maxBytes: number }
  /** The bytes as sent (webhooks whose signature covers the raw body). */
  | { kind: 'raw'; maxBytes: number }
  /** Read as it arrives: the socket is paused while the handler is behind (uploads). */
  | { kind: 'stream'; maxBytes: number };

/** A request body read as it arrives. Iterating it is what lets the sender go on. */
export interface BodyStream extends AsyncIterable<Buffer> {
  /** Content-Length, when the client sent one. */
  readonly declaredLength: number | null;
  /** Bytes read from the socket that the handler has not taken yet (bounded: the socket pauses past a high-water mark). */
  readonly buffered: number;
}

export type BodyOf<B extends BodySpec> = B extends { kind: 'json'; schema: infer S extends z.ZodType }
  ? z.output<S>
  : B extends { kind: 'raw' }
    ? Buffer
    : B extends { kind: 'stream' }
      ? BodyStream
      : undefined;

/**
 * none: anyone. accessToken: `Authorization: Bearer <access token>` of a
 * session with one of the roles (AUTH_REQUIRED, AUTH_TOKEN_EXPIRED,
 * AUTH_FORBIDDEN otherwise). signature: `verify` checks the raw body and the
 * headers (a webhook's signature) and throws a FlockError when they do not
 * match; the route's body must be json or raw.
 */
export type RouteAuth =
  | { kind: 'none' }
  | { kind: 'accessToken'; roles: readonly Role[] }
  | { kind: 'signature'; verify(request: { body: Buffer; readonly header: (name: string) => string }, services: RouteServices): Promise<void> };

export interface RouteRequest<B extends BodySpec = BodySpec> {
  method: HttpMethod;
  /** The path, without the query. */
  url: string;
  /** The path's `:name` parameters. */
  params: Readonly<Record<string, string>>;
  query: URLSearchParams;
  /** A header's value ('' when absent); names are case-insensitive. */
  readonly header: (name: string) => string;
  cookies: ReadonlyMap<string, string>;
  /** The client's address (server/client-ip.ts). */
  ip: string;
  /** The caller's session, on accessToken routes. */
  session: Session | undefined;
  body: BodyOf<B>;
}

export interface RouteContext {
  log: Logger;
  services: RouteServices;
}

type Headers = readonly (readonly [string, string])[];

/** What a handler answers. A HEAD route's answer goes without its body (an error's JSON too). */
export type RouteResult =
  | { status: number; json: unknown; headers?: Headers }
  | { status: number; text: string; contentType: string; headers?: Headers }
  | { status: 301 | 302 | 303 | 307 | 308; location: string; headers?: Headers }
  | { status: number; empty: true; headers?: Headers };

export interface RouteDef<B extends BodySpec = BodySpec> {
  method: HttpMethod;
  /** Literal segments and `:name` parameters (each one whole segment), matched as a uWS pattern. */
  path: string;
  summary: string;
  auth: RouteAuth;
  body: B;
  /** Requests per client IP, on every node together; none for probes that must answer while Redis is away. */
  rateLimit?: RateLimit;
  /** Headers on every answer of this route, errors included (a protocol's version header); the handler's own headers of the same name win. */
  headers?: Headers;
  /** A FlockError becomes its catalogue status with `{ error: { code, message } }`; anything else is SERVICE_UNAVAILABLE (503) when a backing service is away, SERVER_INTERNAL otherwise. */
  handler(request: RouteRequest<B>, ctx: RouteContext): Promise<RouteResult>;
}

/** Identity function that keeps the route's body type for its handler. */
export function defineRoute<B extends BodySpec>(route: RouteDef<B>): RouteDef<B> {
  if (!/^(\/(:[a-z][A-Za-z0-9]*|[A-Za-z0-9._~-]+))+\/?$|^\/$/.test(route.path)) throw new Error(`route path ${route.path} is not valid`);
  if (route.auth.kind === 'signature' && route.body.kind !== 'json' && route.body.kind !== 'raw')
    throw new Error(`${route.method} ${route.path}: a signature needs a json or raw body`);
  return route;
}
