// Which failures mean "a backing service is away for now" rather than "Flock
// is broken": Redis connection and loading errors (ioredis), MongoDB network,
// server-selection and failover errors (the driver, mongoose). errors.ts turns
// them into SERVICE_UNAVAILABLE, which clients retry, instead of
// SERVER_INTERNAL. Matched by name and code, never by class: mongoose and the
// mongodb package may each bring their own copy of the driver's classes.

/** `network`: a socket error, from whichever service the node was talking to. */
export type BackingService = 'redis' | 'mongo' | 'network';

/** The service behind a failure that goes away by itself when the service is back; undefined for anything else. */
export function unavailableService(err: unknown): BackingService | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const found = classify(e);
    if (found) return found;
  }
  return undefined;
}

/** ioredis errors of a connection that is down, reconnecting or not ready. */
const REDIS_NAMES = new Set(['MaxRetriesPerRequestError', 'AbortError']);
const REDIS_MESSAGES = [/^Connection is closed\.$/, /^Stream isn't writeable/, /^(LOADING|MASTERDOWN|TRYAGAIN|CLUSTERDOWN) /];
/** Driver and mongoose errors of a server that cannot be reached or selected. */
const MONGO_NAMES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongooseServerSelectionError',
  'MongoPoolClearedError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
]);
/** Server codes of a replica set failing over or a server shutting down (HostUnreachable, NotWritablePrimary, ShutdownInProgress...). */
const MONGO_CODES = new Set([6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436]);
/** Socket errors: on a node they come from its backing services, whichever answered them. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN', 'EAI_AGAIN']);

function classify(e: Error): BackingService | undefined {
  if (REDIS_NAMES.has(e.name) || REDIS_MESSAGES.some((m) => m.test(e.message))) return 'redis';
  if (MONGO_NAMES.has(e.name) || /buffering timed out after/.test(e.message)) return 'mongo';
  const code = 'code' in e ? e.code : undefined;
  if (e.name.startsWith('Mongo') && typeof code === 'number' && MONGO_CODES.has(code)) return 'mongo';
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return /mongo/i.test(e.name) ? 'mongo' : 'network';
  return undefined;
}
