// HTTP face of the redirect flow, on the node's uWebSockets.js app:
//   GET /auth/:provider/start?returnTo=...   302 to the provider; sets the browser binding cookie
//   GET /auth/:provider/callback?code&state  302 to returnTo with the result in the fragment,
//                                            or JSON when the request accepts application/json
// Fragment of a sign-in: access_token, refresh_token, expires_at and
// refresh_expires_at (epoch ms), token_type=Bearer; of a link flow: link_code
// and provider; of a failure: error (a Flock code) and error_description.
// A fragment never reaches a server (ours, the app's, or a Referer).
//
// Only the types of uWebSockets.js are used here; like server/uws.ts, each
// handler copies what it needs from the request before returning and answers
// inside cork() unless the client went away.
import { createHash } from 'node:crypto';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { errorCatalogue, FlockError, isFlockError, toErrorBody } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import { providerInput } from '../auth/accounts.ts';
import type { OAuthCallbackResult, OAuthService } from '../auth/oauth/oauth-service.ts';

/** `log` receives failures that are not Flock errors (they answer SERVER_INTERNAL). */
export function registerOAuthRoutes(app: TemplatedApp, oauth: OAuthService, options: { log?: Logger } = {}): void {
  const report = (err: unknown) => {
    if (!isFlockError(err) || err.code === 'SERVER_INTERNAL' || err.code === 'SERVICE_UNREACHABLE') options.log?.error({ err }, 'OAuth route failed');
  };
  app.get('/auth/:provider/start', (res, req) => serve(res, copyRequest(req), (request) => start(oauth, request, report)));
  app.get('/auth/:provider/callback', (res, req) => serve(res, copyRequest(req), (request) => callback(oauth, request, report)));
}

type Report = (err: unknown) => void;

interface CopiedRequest {
  provider: string;
  query: URLSearchParams;
  wantsJson: boolean;
  cookies: Map<string, string>;
}

interface Reply {
  status: number;
  headers: [string, string][];
  body: string;
}

const NO_SUCH_PROVIDER = () => new FlockError('HTTP_NOT_FOUND', 'No such provider');

async function start(oauth: OAuthService, request: CopiedRequest, report: Report): Promise<Reply> {
  const provider = providerInput.safeParse(request.provider);
  if (!provider.success) return jsonError(NO_SUCH_PROVIDER());
  const returnTo = request.query.get('returnTo');
  try {
    const started = await oauth.start(provider.data, returnTo === null ? {} : { returnTo });
    const headers: [string, string][] = [['location', started.url]];
    if (started.binding !== null) {
      const secure = new URL(started.callbackUrl).protocol === 'https:' ? '; Secure' : '';
      headers.push(['set-cookie', `${bindingCookie(started.state)}=${started.binding}; Path=/; Max-Age=${started.expiresInSeconds}; HttpOnly; SameSite=Lax${secure}`]);
    }
    return { status: 302, headers, body: '' };
  } catch (err) {
    // Never redirect on a refused start: the refused returnTo is the likely cause.
    report(err);
    return jsonError(err);
  }
}

async function callback(oauth: OAuthService, request: CopiedRequest, report: Report): Promise<Reply> {
  const provider = providerInput.safeParse(request.provider);
  if (!provider.success) return jsonError(NO_SUCH_PROVIDER());
  const state = request.query.get('state');
  const cookie = state === null ? undefined : bindingCookie(state);
  const binding = cookie === undefined ? undefined : request.cookies.get(cookie);
  // The flow is over whatever happens: the cookie goes.
  const clear: [string, string][] = cookie === undefined ? [] : [['set-cookie', `${cookie}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`]];

  let result: OAuthCallbackResult;
  try {
    result = await oauth.callback(provider.data, Object.fromEntries(request.query), binding === undefined ? {} : { binding });
  } catch (err) {
    report(err);
    const target = oauth.defaultReturnTo;
    if (request.wantsJson || target === null) return withHeaders(jsonError(err), clear);
    const { code, message } = toErrorBody(err);
    return redirect(target, { error: code, error_description: message }, clear);
  }

  const target = result.returnTo ?? oauth.defaultReturnTo;
  if (result.kind === 'link') {
    if (request.wantsJson || target === null) return json(200, { provider: result.provider, linkCode: result.linkCode, returnTo: result.returnTo }, clear);
    return redirect(target, { link_code: result.linkCode, provider: result.provider }, clear);
  }
  const { session } = result;
  if (request.wantsJson || target === null) return json(200, { provider: result.provider, resolution: result.resolution, returnTo: result.returnTo, session }, clear);
  return redirect(
    target,
    {
      access_token: session.accessToken,
      refresh_token: session.refreshToken,
      expires_at: String(session.expiresAt),
      refresh_expires_at: String(session.refreshExpiresAt),
      token_type: 'Bearer',
    },
    clear,
  );
}

/** Cookie of one flow's binding, named after its state so parallel flows (two tabs) do not clash. */
function bindingCookie(state: string): string {
  return `flock_oauth_${createHash('sha256').update(state).digest('hex').slice(0, 16)}`;
}

function copyRequest(req: HttpRequest): CopiedRequest {
  return {
    provider: req.getParameter(0) ?? '',
    query: new URLSearchParams(req.getQuery() ?? ''),
    wantsJson: /\bapplication\/json\b/i.test(req.getHeader('accept')),
    cookies: parseCookies(req.getHeader('cookie')),
  };
}

function parseCookies(header: string): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) cookies.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return cookies;
}

function serve(res: HttpResponse, request: CopiedRequest, handle: (request: CopiedRequest) => Promise<Reply>): void {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  handle(request)
    .catch((err: unknown) => jsonError(err))
    .then((reply) => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(statusLine(reply.status));
        for (const [name, value] of [...reply.headers, ...COMMON_HEADERS]) res.writeHeader(name, value);
        res.end(reply.body);
      });
    });
}

// Tokens and codes pass through these responses: never cache them, never leak the URL.
const COMMON_HEADERS: [string, string][] = [
  ['cache-control', 'no-store'],
  ['referrer-policy', 'no-referrer'],
];

function redirect(target: string, fragment: Record<string, string>, headers: [string, string][]): Reply {
  const location = `${target}#${new URLSearchParams(fragment).toString()}`;
  return { status: 302, headers: [['location', location], ...headers], body: '' };
}

function json(status: number, body: unknown, headers: [string, string][] = []): Reply {
  return { status, headers: [['content-type', 'application/json'], ...headers], body: JSON.stringify(body) };
}

function jsonError(err: unknown): Reply {
  const body = toErrorBody(err);
  return json(errorCatalogue[body.code].status, { error: body });
}

function withHeaders(reply: Reply, headers: [string, string][]): Reply {
  return { ...reply, headers: [...reply.headers, ...headers] };
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  302: 'Found',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Status'}`;
}
