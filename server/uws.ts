// The one module that knows uWebSockets.js: the app, listening, closing, and
// the declared HTTP routes (routes/): copying what a handler needs from the
// request before the uWS callback returns, the abort flag, reading bodies
// (bounded; streamed with backpressure through pause/resume), auth and rate
// limits, and writing the result inside cork() with a proper status line.
import { STATUS_CODES } from 'node:http';
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';
import type { Session } from '../auth/session.ts';
import { errorCatalogue, FlockError, isFlockError, toErrorBody } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import { invalid } from '../kernel/zod-issues.ts';
import type { BodySpec, BodyStream, HttpMethod, RouteDef, RouteRequest, RouteResult } from '../routes/define.ts';
import type { RouteServices } from '../routes/services.ts';
import { clientIp } from './client-ip.ts';
import type { RateLimiter } from './rate-limit.ts';

export type { TemplatedApp };

export interface Listening {
  port: number;
  /** Stops accepting new connections; existing ones stay open. */
  stopAccepting(): void;
}

export function createApp(): TemplatedApp {
  return uWS.App();
}

export function listen(app: TemplatedApp, host: string, port: number): Promise<Listening> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket: us_listen_socket | false) => {
      if (!socket) {
        reject(new Error(`cannot listen on ${host}:${port}`));
        return;
      }
      let open = true;
      resolve({
        port: uWS.us_socket_local_port(socket),
        stopAccepting() {
          if (open) uWS.us_listen_socket_close(socket);
          open = false;
        },
      });
    });
  });
}

/** Closes every remaining connection of the app. */
export function closeApp(app: TemplatedApp): void {
  // app.close() exists in this build (v20.30) but its .d.ts predates it.
  if ('close' in app && typeof app.close === 'function') Reflect.apply(app.close, app, []);
}

export interface RouteServer {
  services: RouteServices;
  /** Turns an access token into a session; throws a FlockError when it is not valid. */
  authenticate(token: string): Promise<Session>;
  limiter: RateLimiter;
  trustProxyHops: number;
  log: Logger;
}

/** Serves the routes on the app, and a typed 404 (HTTP_NOT_FOUND) for every other path. */
export function serveRoutes(app: TemplatedApp, routes: readonly RouteDef[], server: RouteServer): void {
  const seen = new Set<string>();
  for (const route of routes) {
    const key = `${route.method} ${route.path}`;
    if (seen.has(key)) throw new Error(`route ${key} declared twice`);
    seen.add(key);
    const params = [...route.path.matchAll(/:([A-Za-z0-9]+)/g)].map((m) => m[1]!);
    register(app, route.method, route.path, (res, req) => serve(route, res, copyRequest(route, res, req, params, server.trustProxyHops), server));
  }
  app.any('/*', (res) => {
    res.cork(() => write(res, { status: 404, json: { error: { code: 'HTTP_NOT_FOUND', message: 'No such route' } } }));
  });
}

type UwsHandler = (res: HttpResponse, req: HttpRequest) => void;

function register(app: TemplatedApp, method: HttpMethod, pattern: string, handler: UwsHandler): void {
  switch (method) {
    case 'GET':
      app.get(pattern, handler);
      return;
    case 'POST':
      app.post(pattern, handler);
      return;
    case 'PUT':
      app.put(pattern, handler);
      return;
    case 'PATCH':
      app.patch(pattern, handler);
      return;
    case 'DELETE':
      app.del(pattern, handler);
      return;
    case 'HEAD':
      app.head(pattern, handler);
      return;
    case 'OPTIONS':
      app.options(pattern, handler);
      return;
  }
}

/** What a route needs of a request, copied while uWS still holds it, and the body being read. */
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

/** Whether the client went away; uWS takes one abort handler per response, so others listen here. */
interface Aborted {
  value: boolean;
  listeners: (() => void)[];
}

function copyRequest(route: RouteDef, res: HttpResponse, req: HttpRequest, params: readonly string[], trustProxyHops: number): Copied {
  const headers = new Map<string, string>();
  req.forEach((name, value) => headers.set(name, value));
  const header = (name: string) => headers.get(name.toLowerCase()) ?? '';
  const aborted: Aborted = { value: false, listeners: [] };
  res.onAborted(() => {
    aborted.value = true;
    for (const listener of aborted.listeners) listener();
  });
  const values: Record<string, string> = {};
  params.forEach((name, i) => {
    values[name] = decodePart(req.getParameter(i) ?? '');
  });
  const peer = Buffer.from(res.getRemoteAddressAsText()).toString();
  // The body must be read from now on: uWS hands it over only to a handler attached in this callback.
  const body =
    route.body.kind === 'none'
      ? undefined
      : route.body.kind === 'stream'
        ? streamBody(res, route.body.maxBytes, header, aborted)
        : bufferBody(res, route.body.maxBytes, header);
  // A body that fails (too large) while the rate limit or the token is checked, or that a refused request
  // never reads, must not become an unhandled rejection: serve() awaits it when it needs it.
  if (body instanceof Promise) body.catch(() => undefined);
  return {
    request: {
      method: route.method,
      url: req.getUrl(),
      params: values,
      query: new URLSearchParams(req.getQuery() ?? ''),
      header,
      cookies: parseCookies(header('cookie')),
      ip: clientIp(peer, header('x-forwarded-for'), trustProxyHops),
    },
    aborted,
    body,
  };
}

async function serve(route: RouteDef, res: HttpResponse, copied: Copied, server: RouteServer): Promise<void> {
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
  res.cork(() => write(res, result));
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

/** The whole body, at most `maxBytes` (REQUEST_TOO_LARGE beyond, without reading the rest). */
function bufferBody(res: HttpResponse, maxBytes: number, header: (name: string) => string): Promise<Buffer> {
  const declared = declaredLength(header);
  return new Promise((resolve, reject) => {
    if (declared !== null && declared > maxBytes) {
      reject(tooLarge(maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    res.onData((chunk, isLast) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > maxBytes) {
        done = true;
        reject(tooLarge(maxBytes));
        return;
      }
      // uWS reuses the chunk's memory once this callback returns: copy it.
      chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (isLast) {
        done = true;
        resolve(Buffer.concat(chunks, size));
      }
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
function streamBody(res: HttpResponse, maxBytes: number, header: (name: string) => string, aborted: Aborted): StreamedBody {
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
  res.onData((chunk, isLast) => {
    if (failure || discarding) return; // the rest is drained unread
    received += chunk.byteLength;
    if (received > maxBytes) {
      failure = tooLarge(maxBytes);
    } else {
      const copy = Buffer.from(new Uint8Array(chunk));
      queue.push(copy);
      queued += copy.length;
      ended = isLast;
      if (queued > HIGH_WATER && !ended && !paused) {
        paused = true;
        res.pause();
      }
    }
    notify();
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
        res.resume();
      }
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = queue.shift();
        if (next) {
          queued -= next.length;
          if (paused && !discarding && !aborted.value && queued <= HIGH_WATER / 2) {
            paused = false;
            res.resume();
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

function write(res: HttpResponse, result: RouteResult): void {
  res.writeStatus(`${result.status} ${STATUS_CODES[result.status] ?? 'Status'}`);
  for (const [name, value] of result.headers ?? []) res.writeHeader(name, value);
  if ('location' in result) {
    res.writeHeader('location', result.location);
    res.end();
  } else if ('json' in result) {
    if (!result.headers?.some(([name]) => name === 'cache-control')) res.writeHeader('cache-control', 'no-store');
    res.writeHeader('content-type', 'application/json');
    res.end(JSON.stringify(result.json));
  } else if ('text' in result) {
    res.writeHeader('content-type', result.contentType);
    res.end(result.text);
  } else {
    res.end();
  }
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
