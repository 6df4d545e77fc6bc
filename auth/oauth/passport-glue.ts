// The one module that runs passport strategies. Passport is Express-shaped: a
// strategy's authenticate(req, options) reads req.query and ends by calling
// one of the actions passport attaches (redirect, success, fail, error, pass).
// Here a strategy runs on a minimal request object, with those actions turned
// into one settled outcome: no express, no sessions, no passport.initialize().
// Everything else in auth/oauth sees promises and plain data.
import type { Strategy } from 'passport';

/** Express's Request, as far as passport's types are concerned. */
type ExpressRequest = Parameters<Strategy['authenticate']>[0];

export type AuthenticateOutcome =
  | { kind: 'redirect'; url: string }
  | { kind: 'success'; user: unknown; info: unknown }
  | { kind: 'fail'; challenge: unknown }
  | { kind: 'error'; error: unknown }
  | { kind: 'pass' };

/** What a flow knows besides the query; the state store reads it back with flowContext(). */
export interface FlowContext {
  /** The browser binding presented with the callback (cookie), if any. */
  binding?: string;
}

export interface GlueRequest {
  query: Record<string, string>;
  context?: FlowContext;
}

const CONTEXT = Symbol('flock.oauth.flow');

/** The flow context of a request built by authenticate(), for the state store. */
export function flowContext(req: unknown): FlowContext {
  if (typeof req === 'object' && req !== null && CONTEXT in req) {
    const context: unknown = req[CONTEXT];
    if (typeof context === 'object' && context !== null) return context;
  }
  return {};
}

type Actions = {
  authenticate(req: ExpressRequest, options?: unknown): unknown;
  redirect(url: string, status?: number): void;
  success(user: unknown, info?: unknown): void;
  fail(challenge?: unknown, status?: number): void;
  error(err: unknown): void;
  pass(): void;
};

/**
 * Runs strategy.authenticate once. Like passport itself, the actions go on a
 * per-request object whose prototype is the strategy, so concurrent flows on
 * one strategy do not share them. Settles with an error outcome after
 * timeoutMs (a provider that never answers).
 */
export function authenticate(strategy: Strategy, req: GlueRequest, options: Record<string, unknown>, timeoutMs: number): Promise<AuthenticateOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome: AuthenticateOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const timer = setTimeout(() => settle({ kind: 'error', error: new Error(`the provider did not answer within ${timeoutMs} ms`) }), timeoutMs);

    // A strategy is a plain prototype: the run inherits it, with passport's actions added.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- Object.create returns any; the prototype is the strategy.
    const run: Actions = Object.create(strategy);
    run.redirect = (url) => settle({ kind: 'redirect', url });
    run.success = (user, info) => settle({ kind: 'success', user, info });
    run.fail = (challenge) => settle({ kind: 'fail', challenge });
    run.error = (error) => settle({ kind: 'error', error });
    run.pass = () => settle({ kind: 'pass' });

    const expressShaped = { method: 'GET', url: '/', headers: {}, query: { ...req.query }, body: {}, [CONTEXT]: req.context ?? {} };
    try {
      // Strategies read only the fields above; the type is Express's.
      // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- passport types the request as Express's; strategies read only these fields.
      run.authenticate(expressShaped as unknown as ExpressRequest, options);
    } catch (error) {
      settle({ kind: 'error', error });
    }
  });
}

/** The strategy's userProfile(accessToken, done) as a promise, bounded by timeoutMs. */
export function loadProfile(
  strategy: { userProfile(accessToken: string, done: (err?: unknown, profile?: unknown) => void): void },
  accessToken: string,
  timeoutMs: number,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the provider did not answer within ${timeoutMs} ms`)), timeoutMs);
    try {
      strategy.userProfile(accessToken, (err, profile) => {
        clearTimeout(timer);
        if (err) reject(asError(err));
        else resolve(profile);
      });
    } catch (err) {
      clearTimeout(timer);
      reject(asError(err));
    }
  });
}

/**
 * Sends the access token in an Authorization header on profile requests
 * (node-oauth's default puts it in the query string, where proxies log it).
 * `_oauth2` is passport-oauth2's documented "protected" client.
 */
export function useBearerHeader(strategy: object): void {
  const oauth2: unknown = Reflect.get(strategy, '_oauth2');
  if (typeof oauth2 === 'object' && oauth2 !== null && 'useAuthorizationHeaderforGET' in oauth2 && typeof oauth2.useAuthorizationHeaderforGET === 'function') {
    Reflect.apply(oauth2.useAuthorizationHeaderforGET, oauth2, [true]);
  }
}

/** What node-oauth and the strategies pass as errors (objects with statusCode and data), as an Error. */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(typeof err === 'object' && err !== null && 'data' in err ? String(err.data) : String(err));
}
