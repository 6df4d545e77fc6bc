// The one module that knows uWebSockets.js: the app, listening, closing, and
// JSON routes with the abort/cork handling uWS requires for async responses.
import uWS, { type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from 'uWebSockets.js';

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
        port: uWS.us_socket_local_port(socket as unknown as uWS.us_socket),
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
  const closable = app as TemplatedApp & { close?: () => void };
  closable.close?.();
}

export interface JsonReply {
  status: number;
  body: unknown;
}

export interface RequestInfo {
  url: string;
  query: string;
  header(name: string): string;
}

const STATUS_TEXT: Record<number, string> = {
  200: '200 OK',
  400: '400 Bad Request',
  404: '404 Not Found',
  413: '413 Payload Too Large',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** Registers a GET route whose async handler returns a JSON reply. */
export function getJson(app: TemplatedApp, pattern: string, handler: (req: RequestInfo) => Promise<JsonReply>): void {
  app.get(pattern, (res: HttpResponse, req: HttpRequest) => {
    // uWS request objects die when this callback returns: copy what handlers need.
    const headers = new Map<string, string>();
    req.forEach((k, v) => headers.set(k, v));
    const info: RequestInfo = { url: req.getUrl(), query: req.getQuery() ?? '', header: (n) => headers.get(n.toLowerCase()) ?? '' };
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    handler(info)
      .catch((): JsonReply => ({ status: 500, body: { error: { code: 'SERVER_INTERNAL', message: 'Internal error' } } }))
      .then((reply) => {
        if (aborted) return;
        res.cork(() => {
          res
            .writeStatus(STATUS_TEXT[reply.status] ?? `${reply.status} Status`)
            .writeHeader('content-type', 'application/json')
            .writeHeader('cache-control', 'no-store')
            .end(JSON.stringify(reply.body));
        });
      });
  });
}

/** Registers a GET route that answers 200 with a text body (e.g. Prometheus metrics). */
export function getText(app: TemplatedApp, pattern: string, handler: () => Promise<{ contentType: string; body: string }>): void {
  app.get(pattern, (res: HttpResponse) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    handler().then(
      (reply) => {
        if (aborted) return;
        res.cork(() => res.writeStatus('200 OK').writeHeader('content-type', reply.contentType).end(reply.body));
      },
      () => {
        if (aborted) return;
        res.cork(() => res.writeStatus('500 Internal Server Error').end());
      },
    );
  });
}

/** Fallback for every other path: a typed 404. */
export function notFound(app: TemplatedApp): void {
  app.any('/*', (res: HttpResponse) => {
    res
      .writeStatus(STATUS_TEXT[404]!)
      .writeHeader('content-type', 'application/json')
      .end(JSON.stringify({ error: { code: 'HTTP_NOT_FOUND', message: 'No such route' } }));
  });
}
