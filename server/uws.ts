// The one module that knows uWebSockets.js: whether its native binary loads on
// this platform and Node version, and the uWS engine: the app, Socket.IO on it
// (io.attachApp), listening, closing, and the declared routes, copying what
// server/http-engine.ts needs from the request before the uWS callback returns
// and writing its reply inside cork(). The package is loaded only once the
// binary is known to load: the build in package.json would otherwise print a
// warning and fall back to a JavaScript imitation of uWS we do not use.
import { createRequire } from 'node:module';
import path from 'node:path';
import fs from 'node:fs';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import { messageOf } from '../kernel/errors.ts';
import type { HttpMethod, RouteDef } from '../routes/define.ts';
import { compileRoutes, handleRoute, notFoundReply, type HttpEngine, type Reply, type RouteServer } from './http-engine.ts';

/**
 * Why uWebSockets.js cannot run here, or undefined when its binary loads. Its
 * binaries are built per platform, CPU and Node ABI (the build in package.json
 * has Node 16, 18 and 20 only) and link against the glibc of their build host.
 */
export function uwsUnavailable(): string | undefined {
  const load = createRequire(import.meta.url);
  let entry: string;
  try {
    entry = load.resolve('uWebSockets.js');
  } catch {
    return 'the uWebSockets.js package is not installed';
  }
  const file = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  // This build keeps its binaries in binaries/ beside src/uws.js; uNetworking's own keeps them beside uws.js.
  const binary = [path.join(path.dirname(entry), '..', 'binaries', file), path.join(path.dirname(entry), file)].find((p) => fs.existsSync(p));
  if (!binary) return `uWebSockets.js has no binary for Node ${process.versions.node} (ABI ${process.versions.modules}) on ${process.platform}-${process.arch}`;
  try {
    // Loaded through require so that the package's own require of this file finds it in the cache.
    load(binary);
  } catch (err) {
    return `the uWebSockets.js binary ${file} does not load: ${messageOf(err).split('\n')[0]}`;
  }
  return undefined;
}

/** The uWS engine; call only when uwsUnavailable() is undefined. */
export async function createUwsEngine(): Promise<HttpEngine> {
  const { default: uWS } = await import('uWebSockets.js');
  const app = uWS.App();
  return {
    name: 'uws',
    attach(io, options) {
      // engine.io also uses maxHttpBufferSize as uWS's maxPayloadLength.
      io.attachApp(app, options);
    },
    serveRoutes(routes, server) {
      serveRoutes(app, routes, server);
    },
    listen(host, port) {
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
    },
    close() {
      // app.close() exists in this build (v20.30) but its .d.ts predates it.
      if ('close' in app && typeof app.close === 'function') Reflect.apply(app.close, app, []);
    },
  };
}

function serveRoutes(app: TemplatedApp, routes: readonly RouteDef[], server: RouteServer): void {
  for (const route of compileRoutes(routes)) {
    register(app, route.def.method, route.def.path, (res, req) => {
      const headers = new Map<string, string>();
      req.forEach((name, value) => headers.set(name, value));
      handleRoute(
        route,
        {
          method: route.def.method,
          url: req.getUrl(),
          query: req.getQuery() ?? '',
          headers,
          params: route.params.map((_, i) => req.getParameter(i) ?? ''),
          peer: Buffer.from(res.getRemoteAddressAsText()).toString(),
          body: {
            read(sink) {
              res.onData((chunk, isLast) => {
                // uWS reuses the chunk's memory once this callback returns: copy it.
                if (chunk.byteLength > 0) sink.chunk(Buffer.from(new Uint8Array(chunk)));
                if (isLast) sink.end();
              });
            },
            pause: () => res.pause(),
            resume: () => res.resume(),
          },
          onAborted: (listener) => res.onAborted(listener),
          send: (reply) => res.cork(() => write(res, reply)),
        },
        server,
      );
    });
  }
  app.any('/*', (res) => {
    res.cork(() => write(res, notFoundReply));
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

function write(res: HttpResponse, reply: Reply): void {
  res.writeStatus(`${reply.status} ${reply.statusText}`);
  for (const [name, value] of reply.headers) res.writeHeader(name, value);
  if (reply.body === undefined) res.end();
  else res.end(reply.body);
}
