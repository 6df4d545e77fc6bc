// What an HTTP engine is, and everything about a declared route (routes/) that
// is not the wire. A node runs on one of two engines: uWebSockets.js
// (server/uws.ts) or Node's own http server with Socket.IO's default ws engine
// (server/node-http.ts); server/socket-engine.ts picks one. Each carries
// Socket.IO and hands every request of a declared route to `handleRoute` here,
// which owns rate limits, auth, bodies (bounded; streamed with backpressure
// through the engine's pause/resume), the typed error answer and the rendered
// reply, so one route declaration behaves the same on both.
import { STATUS_CODES } from 'node:http';
import type { ServerOptions } from 'socket.io';
import type { Session } from '../auth/session.ts';
import { errorCatalogue, FlockError, isFlockError, toErrorBody } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import { invalid } from '../kernel/zod-issues.ts';
import type { BodySpec, BodyStream, HttpMethod, RouteDef, RouteRequest, RouteResult } from '../routes/define.ts';
import type { RouteServices } from '../routes/services.ts';
import { clientIp } from './client-ip.ts';
import type { FlockServer } from './delivery.ts';
import type { RateLimiter } from './rate-limit.ts';

export type EngineName = 'uws' | 'ws';

export interface HttpEngine {
  readonly name: EngineName;
  /** Carries the Socket.IO server, built with `options`. Call before listen(). */
  attach(io: FlockServer, options: Partial<ServerOptions>): void;
  /** Serves the routes, and a typed 404 (HTTP_NOT_FOUND) for every other path. */
  serveRoutes(routes: readonly RouteDef[], server: RouteServer): void;
  listen(host: string, port: number): Promise<Listening>;
  /** Closes every remaining connection. */
  close(): void;
}

export interface Listening {
  port: number;
  /** Stops accepting new connections; existing ones stay open. */
  stopAccepting(): void;
}

export interface RouteServer {
  services: RouteServices;
  /** Turns an access token into a session; throws a FlockError when it is not valid. */
  authenticate(token: string): Promise<Session>;
  limiter: RateLimiter;
  trustProxyHops: number;
  log: Logger;
}

/** A route with what an engine needs to match it. */
export interface CompiledRoute {
  def: RouteDef;
  /** Names of the path's `:name` parameters, in order. */
  params: readonly string[];
  /** The path as a regular expression, one group per parameter (for engines without a router). */
  pattern: RegExp;
}

/** The routes ready to serve; a method and path declared twice is a start-up error. */
export function compileRoutes(routes: readonly RouteDef[]): CompiledRoute[] {
  const seen = new Set<string>();
  return routes.map((def) => {
    const key = `${def.method} ${def.path}`;
    if (seen.has(key)) throw new Error(`route ${key} declared twice`);
    seen.add(key);
    const params = [...def.path.matchAll(/:([A-Za-z0-9]+)/g)].map((m) => m[1]!);
    const source = def.path
      .split('/')
      .map((segment) => (segment.startsWith(':') ? '([^/]+)' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('/');
    return { def, params, pattern: new RegExp(`^${source}$`) };
  });
}

/** One request of a declared route, as its engine hands it over: copied out of the engine's own objects before its callback returns. */
export interface Exchange {
  method: HttpMethod;
  /** The path as sent, without the query. */
  url: string;
  /** The query string, without the `?`. */
  query: string;
  /** Header values by lower-case name. */
  headers: ReadonlyMap<string, string>;
  /** The path parameters as sent (still percent-encoded), in the route's order. */
  params: readonly string[];
  /** The connection's peer address. */
  peer: string;
  body: BodySource;
  /** Registers the one listener for the client going away before the answer. */
  onAborted(listener: () => void): void;
  /** Writes the answer; called at most once, and never after an abort. */
  send(reply: Reply): void;
}

/** The request body as the engine reads it off the socket. */
export interface BodySource {
  /** Starts reading: each chunk (the engine's copy, which the receiver may keep), then end() once. Called synchronously in the engine's request callback. */
  read(sink: { chunk(data: Buffer): void; end(): void }): void;
  pause(): void;
  resume(): void;
}

/** An answer, ready for the wire. */
export interface Reply {
  status: number;
  statusText: string;
  headers: readonly (readonly [string, string])[];
  /** undefined: no body. */
  body: string | undefined;
}

export const notFoundReply: Reply = render({ status: 404, json: { error: { code: 'HTTP_NOT_FOUND', message: 'No such route' } } });

/** Serves one request of `route`. Starts reading the body at once (uWS hands it over only to a reader attached in its callback). */
export function handleRoute(route: CompiledRoute, exchange: Exchange, server: RouteServer): void {
  const header = (name: string) => exchange.headers.get(name.toLowerCase()) ?? '';
  const aborted: Aborted = { value: false, listeners: [] };
  exchange.onAborted(() => {
    aborted.value = true;
    for (const listener of aborted.listeners) listener();
  });
  const params: Record<string, string> = {};
  route.params.forEach((name, i) => {
    params[name] = decodePart(exchange.params[i] ?? '');
  });
  const spec = route.def.body;
  const body =
    spec.kind === 'none'
      ? undefined
      : spec.kind === 'stream'
        ? streamBody(exchange.body, spec.maxBytes, header, aborted)
        : bufferBody(exchange.body, spec.maxBytes, header);
  // A body that fails (too large) while the rate limit or the token is checked, or that a refused request
  // never reads, must not become an unhandled rejection: serve() awaits it when it needs it.
  if (body instanceof Promise) body.catch(() => undefined);
  const request: Copied['request'] = {
    method: route.def.method,
    url: exchange.url,
    params,
    query: new URLSearchParams(exchange.query),
    header,
    cookies: parseCookies(header('cookie')),
    ip: clientIp(exchange.peer, header('x-forwarded-for'), server.trustProxyHops),
  };
  void serve(route.def, exchange, { request, aborted, body }, server);
}

/** What a route needs of a request, and the body being read. */
interface Copied {
  request: Omit<RouteRequest, 'session' | 'body'>;
  aborted: Aborted;
  body: Promise<Buffer> | StreamedBody | undefined;
}

/** A streamed body, and what the server does with the rest once the route has answered. */
interface StreamedBody extends BodyStream {
  /** Drops what the handler did not read, queued or still coming, and resumes a paused socket so the request can finish. */
  discard(): void;
}

/** Whether the client went away; engines take one abort listener per response, so the body reader listens here. */
interface Aborted {
  value: boolean;
  listeners: (() => void)[];
}

async function serve(route: RouteDef, exchange: Exchange, copied: Copied, server: RouteServer): Promise<void> {
  const log = server.log.child({ route: `${route.method} ${route.path}` });
  let result: RouteResult;
  try {
    if (route.rateLimit) {
      const taken = await server.limiter.take([{ subject: `ip:${copied.request.ip}`, name: `http:${route.method}:${route.path}`, limit: route.rateLimit }]);
      if (!taken.allowed) throw new FlockError('REQUEST_RATE_LIMITED', undefined, { details: { retryAfterMs: taken.retryAfterMs } });
    }
    const session = route.auth.kind === 'accessToken' ? await bearerSession(copied.request.header('authorization'), route.auth.roles, server) : undefined;
    const body = await readBody(route.body, copied.body);
    if (route.auth.kind === 'signature') {
      if (!Buffer.isBuffer(body.raw)) throw new FlockError('SERVER_INTERNAL', 'a signed route read no raw body');
      await route.auth.verify({ body: body.raw, header: copied.request.header }, server.services);
    }
    const request: RouteRequest = { ...copied.request, session, body: body.value };
    result = await route.handler(request, { log, services: server.services });
  } catch (err) {
    if (!isFlockError(err)) log.error({ err }, 'route failed');
    const body = toErrorBody(err);
    result = { status: errorCatalogue[body.code].status, json: { error: body } };
  }
  if (copied.body !== undefined && !(copied.body instanceof Promise)) copied.body.discard();
  if (copied.aborted.value) return;
  const reply = render(result, route.headers);
  // A body on a HEAD answer would be read as the start of the next response on the connection.
  if (route.method === 'HEAD') reply.body = undefined;
  try {
    exchange.send(reply);
  } catch (err) {
    log.warn({ err }, 'answer not written');
  }
}

async function bearerSession(authorization: string, roles: readonly string[], server: RouteServer): Promise<Session> {
  const token = /^Bearer ([^\s]{1,4096})$/i.exec(authorization)?.[1];
  if (!token) throw new FlockError('AUTH_REQUIRED', 'Send the access token as Authorization: Bearer <token>');
  const session = await server.authenticate(token);
  if (session.expiresAt <= Date.now()) throw new FlockError('AUTH_TOKEN_EXPIRED');
  if (!roles.some((role) => session.roles.some((r) => r === role))) throw new FlockError('AUTH_FORBIDDEN');
  return session;
}

/** The body as the route's handler takes it, and the raw bytes for a signature check. */
async function readBody(spec: BodySpec, body: Copied['body']): Promise<{ value: RouteRequest['body']; raw: Buffer | undefined }> {
  if (spec.kind === 'none' || body === undefined) return { value: undefined, raw: undefined };
  if (spec.kind === 'stream') {
    if (body instanceof Promise) throw new FlockError('SERVER_INTERNAL', 'a stream route read a buffered body');
    return { value: body, raw: undefined };
  }
  if (!(body instanceof Promise)) throw new FlockError('SERVER_INTERNAL', 'a buffered route read a stream');
  const raw = await body;
  if (spec.kind === 'raw') return { value: raw, raw };
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new FlockError('REQUEST_INVALID', 'The body is not JSON');
  }
  const parsed = spec.schema.safeParse(json);
  if (!parsed.success) throw invalid('body', parsed.error);
  return { value: parsed.data, raw };
}

function declaredLength(header: (name: string) => string): number | null {
  const value = header('content-length');
  return /^\d{1,15}$/.test(value) ? Number(value) : null;
}

function tooLarge(maxBytes: number): FlockError {
  return new FlockError('REQUEST_TOO_LARGE', `The body is limited to ${maxBytes} bytes`, { details: { maxBytes } });
}

/** The whole body, at most `maxBytes` (REQUEST_TOO_LARGE beyond; the rest is drained unread). */
function bufferBody(source: BodySource, maxBytes: number, header: (name: string) => string): Promise<Buffer> {
  const declared = declaredLength(header);
  return new Promise((resolve, reject) => {
    if (declared !== null && declared > maxBytes) {
      reject(tooLarge(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    source.read({
      chunk(data) {
        if (done) return;
        size += data.length;
        if (size > maxBytes) {
          done = true;
          reject(tooLarge(maxBytes));
          return;
        }
        chunks.push(data);
      },
      end() {
        if (done) return;
        done = true;
        resolve(Buffer.concat(chunks, size));
      },
    });
  });
}

/** Bytes buffered for a slow handler before the socket is paused. */
const HIGH_WATER = 256 * 1024;

/**
 * The body as it arrives: chunks wait in a queue for the handler's iterator,
 * and while more than HIGH_WATER bytes wait the socket is paused (TCP then
 * pushes back on the client), so memory does not grow with the body.
 */
function streamBody(source: BodySource, maxBytes: number, header: (name: string) => string, aborted: Aborted): StreamedBody {
  const declared = declaredLength(header);
  const queue: Buffer[] = [];
  let queued = 0;
  let received = 0;
  let ended = false;
  let failure: FlockError | undefined = declared !== null && declared > maxBytes ? tooLarge(maxBytes) : undefined;
  let paused = false;
  let discarding = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  aborted.listeners.push(() => {
    failure ??= new FlockError('REQUEST_INVALID', 'The client went away before the body was complete');
    notify();
  });
  source.read({
    chunk(data) {
      if (failure || discarding) return; // the rest is drained unread
      received += data.length;
      if (received > maxBytes) {
        failure = tooLarge(maxBytes);
      } else {
        queue.push(data);
        queued += data.length;
        if (queued > HIGH_WATER && !paused) {
          paused = true;
          source.pause();
        }
      }
      notify();
    },
    end() {
      ended = true;
      notify();
    },
  });
  return {
    declaredLength: declared,
    get buffered() {
      return queued;
    },
    discard() {
      discarding = true;
      queue.length = 0;
      queued = 0;
      failure ??= new FlockError('REQUEST_INVALID', 'The route answered before it read the whole body');
      if (paused && !aborted.value) {
        paused = false;
        source.resume();
      }
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = queue.shift();
        if (next) {
          queued -= next.length;
          if (paused && !discarding && !aborted.value && queued <= HIGH_WATER / 2) {
            paused = false;
            source.resume();
          }
          yield next;
          continue;
        }
        if (failure) throw failure;
        if (ended) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    },
  };
}

/** A handler's result as status, headers (the route's own after the result's) and body. */
function render(result: RouteResult, routeHeaders: RouteDef['headers'] = []): Reply {
  const headers: [string, string][] = (result.headers ?? []).map(([name, value]) => [name, value]);
  for (const [name, value] of routeHeaders) if (!headers.some(([n]) => n.toLowerCase() === name.toLowerCase())) headers.push([name, value]);
  let body: string | undefined;
  if ('location' in result) {
    headers.push(['location', result.location]);
  } else if ('json' in result) {
    if (!headers.some(([name]) => name === 'cache-control')) headers.push(['cache-control', 'no-store']);
    headers.push(['content-type', 'application/json']);
    body = JSON.stringify(result.json);
  } else if ('text' in result) {
    headers.push(['content-type', result.contentType]);
    body = result.text;
  }
  return { status: result.status, statusText: STATUS_CODES[result.status] ?? 'Status', headers, body };
}

/** A path parameter as sent when it does not decode (a stray %), so the route can refuse it. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function parseCookies(header: string): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) cookies.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return cookies;
}
