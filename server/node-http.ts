// The node:http engine, for where no uWebSockets.js binary loads (Node 22 and
// later with the uWS build in package.json, or a glibc older than a binary
// needs): Node's http server carrying Socket.IO's default engine (engine.io on
// the ws package) and serving the declared routes through
// server/http-engine.ts, as server/uws.ts does on uWS.
import http from 'node:http';
import { attach as attachEngineIo } from 'engine.io';
import type { HttpMethod } from '../routes/define.ts';
import { HTTP_METHODS } from '../routes/define.ts';
import { compileRoutes, handleRoute, notFoundReply, type CompiledRoute, type HttpEngine, type Reply, type RouteServer } from './http-engine.ts';

export function createNodeHttpEngine(): HttpEngine {
  let routes: readonly CompiledRoute[] = [];
  let routeServer: RouteServer | undefined;
  // engine.io takes over the request listener that exists when it attaches and passes it what is not
  // its own path, so this one is there from the start; the routes arrive later.
  const server = http.createServer((req, res) => {
    const [url = '/', query = ''] = (req.url ?? '/').split(/\?(.*)/s);
    const method = HTTP_METHODS.find((m) => m === req.method);
    const match = method === undefined || !routeServer ? undefined : find(routes, method, url);
    // A request the client abandons mid-body errors its stream; without a listener that would crash the process.
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    if (!match || !routeServer || method === undefined) {
      write(res, notFoundReply);
      return;
    }
    const headers = new Map<string, string>();
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    let aborted: (() => void) | undefined;
    res.once('close', () => {
      if (!res.writableFinished) aborted?.();
    });
    handleRoute(
      match.route,
      {
        method,
        url,
        query,
        headers,
        params: match.params,
        peer: req.socket.remoteAddress ?? '',
        body: {
          read(sink) {
            req.on('data', (chunk: Buffer) => sink.chunk(chunk));
            req.once('end', () => sink.end());
          },
          pause: () => req.pause(),
          resume: () => req.resume(),
        },
        onAborted: (listener) => {
          aborted = listener;
        },
        send: (reply) => write(res, reply),
      },
      routeServer,
    );
  });
  let listening = false;
  return {
    name: 'ws',
    attach(io, options) {
      // Socket.IO's own io.attach(server) would also make io.close() wait for every HTTP connection to
      // end (a dead websocket client holds it for ws's 30 s close timeout); bound to engine.io directly,
      // io.close() closes the sockets and returns, as on uWS, and close() below ends the rest.
      io.bind(attachEngineIo(server, { ...options, path: io.path() }));
    },
    serveRoutes(declared, routesServer) {
      routes = compileRoutes(declared);
      routeServer = routesServer;
    },
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          listening = true;
          const address = server.address();
          resolve({
            port: typeof address === 'object' && address !== null ? address.port : port,
            stopAccepting() {
              if (!listening) return;
              listening = false;
              server.close();
              server.closeIdleConnections();
            },
          });
        });
      });
    },
    close() {
      if (listening) server.close();
      listening = false;
      server.closeAllConnections();
    },
  };
}

function find(routes: readonly CompiledRoute[], method: HttpMethod, url: string): { route: CompiledRoute; params: string[] } | undefined {
  for (const route of routes) {
    if (route.def.method !== method) continue;
    const match = route.pattern.exec(url);
    if (match) return { route, params: match.slice(1).map((p) => p ?? '') };
  }
  return undefined;
}

function write(res: http.ServerResponse, reply: Reply): void {
  res.writeHead(
    reply.status,
    reply.statusText,
    reply.headers.flatMap(([name, value]) => [name, value]),
  );
  res.end(reply.body);
}
