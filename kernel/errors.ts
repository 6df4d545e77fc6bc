// Flock's one application error type and the catalogue of its codes.
// Every failure a client, an operator or another node can see carries a stable,
// subsystem-prefixed code from this table; the table also says how the code is
// surfaced (HTTP status) and what fixes it, so docs and acks come from one place.
// A failure that is not a FlockError becomes SERVICE_UNAVAILABLE when a backing
// service is away (kernel/unavailable.ts), SERVER_INTERNAL otherwise.
import { unavailableService } from './unavailable.ts';

export interface ErrorSpec {
  /** HTTP status when the error ends an HTTP request. */
  readonly status: number;
  /** Default human message. */
  readonly message: string;
  /** What the caller or operator should do about it. */
  readonly fix: string;
}

export const errorCatalogue = {
  // Configuration and start-up
  CONFIG_INVALID: {
    status: 500,
    message: 'The environment does not describe a valid configuration',
    fix: 'Set the variables named in the message to the values they expect (see README "Configuration").',
  },
  // Embedded development services
  DEVSERVICES_UNAVAILABLE: {
    status: 500,
    message: 'An embedded development service cannot be provided on this machine',
    fix: 'Set the service URL in the environment (MONGO_URL, S3_ENDPOINT, STRIPE_API_BASE) or install what the message names.',
  },
  DEVSERVICES_START_FAILED: {
    status: 500,
    message: 'An embedded development service failed to start',
    fix: 'Read the service output quoted in the message; delete its data directory if it is corrupt.',
  },
  // Backing services
  SERVICE_UNREACHABLE: {
    status: 503,
    message: 'A backing service does not answer',
    fix: 'Check that the service at the configured URL is running and reachable from this node.',
  },
  SERVICE_UNAVAILABLE: {
    status: 503,
    message: 'A backing service is unavailable for the moment; the request may not have been carried out',
    fix: 'Retry after details.retryAfterMs, with the same idempotency key or clientMessageId; the node recovers by itself when the service is back.',
  },
  // The node itself
  SERVER_INTERNAL: {
    status: 500,
    message: 'Internal error',
    fix: 'Retry later; if it persists, report it with the time and the request id from the logs.',
  },
  SERVER_ENGINE_UNAVAILABLE: {
    status: 500,
    message: 'The socket engine named by SOCKET_ENGINE cannot run here',
    fix: 'Unset SOCKET_ENGINE (auto falls back to the ws engine) or run a Node version and glibc the uWebSockets.js build has a binary for (README "Runtime").',
  },
  // HTTP routes
  HTTP_NOT_FOUND: {
    status: 404,
    message: 'No such resource',
    fix: 'Check the identifier.',
  },
  // Any request: shape, size, rate, cursors
  REQUEST_INVALID: {
    status: 400,
    message: 'The request does not match its schema',
    fix: 'Send a payload that matches the documented schema; the message names the offending fields.',
  },
  REQUEST_TOO_LARGE: {
    status: 413,
    message: 'The request is larger than allowed',
    fix: 'Send a smaller payload; limits are documented per event and route.',
  },
  REQUEST_NO_ACK: {
    status: 400,
    message: 'The event was sent without an acknowledgement callback',
    fix: 'Emit every request with an ack callback as its last argument (socket.emitWithAck).',
  },
  REQUEST_UNKNOWN_EVENT: {
    status: 404,
    message: 'No such event',
    fix: 'Use an event from the AsyncAPI document (/asyncapi.json).',
  },
  REQUEST_RATE_LIMITED: {
    status: 429,
    message: 'Too many requests',
    fix: 'Slow down; retry after the time given in details.retryAfterMs.',
  },
  REQUEST_TOO_MANY_CONNECTIONS: {
    status: 429,
    message: 'Too many open connections',
    fix: 'Close sockets you no longer use; details.scope says whether the limit is per user or per IP and details.limit how many are allowed.',
  },
  REQUEST_CURSOR_INVALID: {
    status: 400,
    message: 'The cursor is not one this list returned',
    fix: 'Pass back nextCursor exactly as received, to the same list.',
  },
  // Accounts, sessions and sign-in
  AUTH_REQUIRED: {
    status: 401,
    message: 'Sign in first',
    fix: 'Connect with an access token (auth.token in the handshake) or call auth:login.',
  },
  AUTH_INVALID_CREDENTIALS: {
    status: 401,
    message: 'Wrong username, email or password',
    fix: 'Check the credentials.',
  },
  AUTH_THROTTLED: {
    status: 429,
    message: 'Too many failed sign-in attempts or registrations',
    fix: 'Wait for details.retryAfterMs before trying again, or sign in from the network you usually use.',
  },
  AUTH_REAUTH_REQUIRED: {
    status: 401,
    message: 'This change needs a recent sign-in',
    fix: 'Send the password with the request (details.password says whether the account has one), or sign in again (password or provider) and retry within details.maxAgeSeconds.',
  },
  AUTH_TOKEN_INVALID: {
    status: 401,
    message: 'The access token is invalid',
    fix: 'Sign in again or refresh the token.',
  },
  AUTH_TOKEN_EXPIRED: {
    status: 401,
    message: 'The access token has expired',
    fix: 'Call auth:refresh with the refresh token, then auth:reauthenticate with the new access token.',
  },
  AUTH_REFRESH_INVALID: {
    status: 401,
    message: 'The refresh token is invalid, expired or revoked',
    fix: 'Sign in again.',
  },
  AUTH_REFRESH_REUSED: {
    status: 401,
    message: 'A refresh token was used twice; the session was revoked',
    fix: 'Sign in again. If you did not reuse the token, your token may have been stolen.',
  },
  AUTH_SESSION_REVOKED: {
    status: 401,
    message: 'The session was revoked',
    fix: 'Sign in again.',
  },
  AUTH_FORBIDDEN: {
    status: 403,
    message: 'Your role does not allow this',
    fix: 'Ask an admin for the role the event requires.',
  },
  AUTH_WEAK_PASSWORD: {
    status: 400,
    message: 'The password does not meet the rules',
    fix: 'Use 10 to 256 characters, not only letters or only digits, and not the username or email.',
  },
  AUTH_IDENTITY_TAKEN: {
    status: 409,
    message: 'That username or email is already registered',
    fix: 'Choose another username, or sign in to the existing account.',
  },
  AUTH_OAUTH_FAILED: {
    status: 401,
    message: 'Sign-in with the provider failed',
    fix: 'Retry the sign-in; check the provider token or the redirect parameters.',
  },
  AUTH_OAUTH_UNVERIFIED_EMAIL: {
    status: 409,
    message: 'The provider did not verify this email, so it cannot be linked to an existing account',
    fix: 'Sign in to the existing account with its password and link the provider from there.',
  },
  AUTH_ORIGIN_REFUSED: {
    status: 403,
    message: 'Connections from this origin are not allowed',
    fix: 'Add the origin to SOCKET_ALLOWED_ORIGINS.',
  },
  // Users and profiles
  USER_NOT_FOUND: {
    status: 404,
    message: 'No such user',
    fix: 'Check the user id or username.',
  },
  // The social graph: follows, blocks, mutes
  GRAPH_BLOCKED: {
    status: 403,
    message: 'One of you blocked the other',
    fix: 'Nothing to do: a block hides each side from the other until it is lifted.',
  },
  GRAPH_SELF: {
    status: 400,
    message: 'You cannot do this to yourself',
    fix: 'Name another user.',
  },
  GRAPH_FOLLOW_LIMIT: {
    status: 409,
    message: 'You follow (or asked to follow) too many accounts',
    fix: 'Unfollow some accounts or cancel pending requests first.',
  },
  GRAPH_REQUEST_NOT_FOUND: {
    status: 404,
    message: 'No pending follow request from this user',
    fix: 'List pending requests with graph:requests.',
  },
  GRAPH_PRIVATE_ACCOUNT: {
    status: 403,
    message: 'This account is private',
    fix: 'Follow the account and wait for it to approve the request.',
  },
  // Posts
  POST_NOT_FOUND: {
    status: 404,
    message: 'No such post, or you cannot see it',
    fix: 'Check the post id; deleted posts and posts you may not see are not found.',
  },
  POST_FORBIDDEN: {
    status: 403,
    message: 'Only the author may do this to the post',
    fix: 'Edit or delete your own posts only; moderators remove others with posts:remove.',
  },
  POST_NOT_EDITABLE: {
    status: 409,
    message: 'This post cannot be edited',
    fix: 'Reposts have no text to edit, and a post keeps at most a fixed number of edits.',
  },
  POST_DUPLICATE_KEY: {
    status: 409,
    message: 'This idempotency key already named a different post',
    fix: 'Use a new idempotency key for each new post.',
  },
  // Home feeds
  FEED_WRONG_SHARD: {
    status: 500,
    message: 'A feed shard was asked to write feeds it does not own',
    fix: 'Set the same FEED_SHARDS on every node; route feed writes with feedShardOf (feeds/shards.ts).',
  },
  // Conversations and messages
  CONVERSATION_NOT_FOUND: {
    status: 404,
    message: 'No such conversation, or you are not a member',
    fix: 'Check the conversation id; list yours with conversations:list.',
  },
  CONVERSATION_FORBIDDEN: {
    status: 403,
    message: 'Your role in this conversation does not allow this',
    fix: 'Owners and admins manage groups; only senders edit or delete their messages.',
  },
  CONVERSATION_FULL: {
    status: 409,
    message: 'The group has as many members as it may have',
    fix: 'Remove members first, or raise CONVERSATION_MAX_MEMBERS.',
  },
  CONVERSATION_MESSAGE_NOT_FOUND: {
    status: 404,
    message: 'No such message in this conversation, or you cannot see it',
    fix: 'Check the sequence number against conversations:history.',
  },
  // Personal streams
  STREAM_QUOTA_EXCEEDED: {
    status: 429,
    message: "You have written as much as you may into other users' streams for now",
    fix: 'Retry after details.retryAfterMs; details.scope says which budget ran out (minute: all recipients, recipient: one user per 24 h).',
  },
  // Media uploads and processing
  MEDIA_NOT_FOUND: {
    status: 404,
    message: 'No such media, or it is not yours',
    fix: 'Check the media id; only the uploader may use or manage a media item.',
  },
  MEDIA_UNSUPPORTED_TYPE: {
    status: 415,
    message: 'The file is not an image or video of a supported type',
    fix: 'Upload JPEG, PNG, WebP, GIF, HEIC or AVIF images and MP4, MOV, WebM or Matroska videos; the type is read from the content, never from the name.',
  },
  MEDIA_TOO_LARGE: {
    status: 413,
    message: 'The file is larger, longer or has more pixels than allowed for its kind',
    fix: 'details.limit names the limit (bytes, seconds or pixels) and its value; shorten or shrink the file.',
  },
  MEDIA_QUOTA_EXCEEDED: {
    status: 429,
    message: 'You have uploaded as much as you may for now',
    fix: 'details.scope says which quota ran out (bytes per day or concurrent uploads); retry after details.retryAfterMs or finish uploads in progress.',
  },
  MEDIA_UPLOAD_CONFLICT: {
    status: 409,
    message: 'The upload offset does not match what the server holds, or another request is writing the upload',
    fix: 'Ask the server for its offset (HEAD) and resume from there.',
  },
  MEDIA_UPLOAD_EXPIRED: {
    status: 410,
    message: 'The upload expired or was terminated',
    fix: 'Start a new upload.',
  },
  MEDIA_UPLOAD_INVALID: {
    status: 400,
    message: 'The upload request does not follow the protocol',
    fix: 'Follow tus 1.0 (Tus-Resumable, Upload-Length, Upload-Offset, Content-Type: application/offset+octet-stream) or the direct-upload events as documented.',
  },
  MEDIA_NOT_READY: {
    status: 409,
    message: 'The media is not in a state that allows this',
    fix: 'details.state says where it is; wait for media:ready, or upload it first.',
  },
  MEDIA_CODEC_UNSUPPORTED: {
    status: 415,
    message: 'The file uses a codec or layout Flock does not process',
    fix: 'Encode video as H.264, HEVC, VP8, VP9 or AV1 and audio as AAC, MP3, Opus or Vorbis.',
  },
  MEDIA_PROCESSING_FAILED: {
    status: 422,
    message: 'The file could not be processed',
    fix: 'The file is damaged or could not be decoded; re-encode it and upload it again.',
  },
  // Payments and the ledger
  PAYMENT_AMOUNT_INVALID: {
    status: 400,
    message: 'The amount is not a whole number of minor units within the allowed range',
    fix: 'Send a positive integer amount in minor units (cents) between details.min and details.max.',
  },
  PAYMENT_CURRENCY_UNSUPPORTED: {
    status: 400,
    message: 'Payments in this currency are not accepted',
    fix: 'Use one of the currencies in details.allowed (PAYMENT_CURRENCIES).',
  },
  PAYMENT_INSUFFICIENT_BALANCE: {
    status: 409,
    message: 'The balance is lower than the amount',
    fix: 'details.available is what can be moved now; wait for pending funds to become available.',
  },
  PAYMENT_DUPLICATE_KEY: {
    status: 409,
    message: 'This idempotency key already named a different operation',
    fix: 'Use a new idempotency key for each new operation; resend the same operation with the same key.',
  },
  PAYMENT_LEDGER_UNBALANCED: {
    status: 500,
    message: 'A journal entry whose postings do not sum to zero was refused',
    fix: 'A bug in the code that built the entry: every entry must move as much out of accounts as into them, per currency.',
  },
  // Actor runtime
  ACTOR_MESSAGE_INVALID: {
    status: 400,
    message: 'The message does not match its schema',
    fix: 'Send a payload that matches the message schema declared by the actor type.',
  },
  ACTOR_UNKNOWN_TYPE: {
    status: 400,
    message: 'No such actor type',
    fix: 'Register the actor type with the runtime on every node.',
  },
  ACTOR_UNKNOWN_MESSAGE: {
    status: 400,
    message: 'The actor type has no such message',
    fix: 'Use a message name declared by the actor type.',
  },
  ACTOR_TIMEOUT: {
    status: 504,
    message: 'The actor did not answer in time',
    fix: 'Retry if the message is idempotent; the actor may or may not have processed it.',
  },
  ACTOR_CYCLE: {
    status: 500,
    message: 'A cycle of asks between actors was refused',
    fix: 'Restructure the calls: an actor cannot ask an actor that is waiting on it; use tell for callbacks.',
  },
  ACTOR_BUSY: {
    status: 503,
    message: 'The actor mailbox is full',
    fix: 'Back off and retry later.',
  },
  ACTOR_FENCED: {
    status: 503,
    message: 'This activation lost ownership of the actor; the write was refused',
    fix: 'Retry: the message is routed to the current owner.',
  },
  ACTOR_STATE_INVALID: {
    status: 500,
    message: 'Stored actor state does not match the state schema',
    fix: 'Migrate the stored state to the current schema.',
  },
  ACTOR_UNAVAILABLE: {
    status: 503,
    message: 'The actor cannot be reached right now',
    fix: 'Retry shortly; the node hosting it may be failing over or shutting down.',
  },
  ACTOR_HANDLER_FAILED: {
    status: 500,
    message: 'The actor failed to handle the message',
    fix: 'Check the node logs for the cause; the actor keeps running.',
  },
  // Jobs
  JOB_DATA_INVALID: {
    status: 400,
    message: 'Job data does not match the job schema',
    fix: 'Schedule the job with data that matches its schema in jobs/registry.ts.',
  },
  JOB_UNKNOWN: {
    status: 400,
    message: 'No such job',
    fix: 'Use a job name declared in jobs/registry.ts.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;

/**
 * The subsystems a code may name as its prefix (`AUTH_...`, `POST_...`); a
 * test keeps every code in the catalogue on one of them.
 */
export const ERROR_SUBSYSTEMS = [
  'CONFIG',
  'DEVSERVICES',
  'SERVICE',
  'SERVER',
  'HTTP',
  'REQUEST',
  'AUTH',
  'USER',
  'GRAPH',
  'POST',
  'FEED',
  'CONVERSATION',
  'STREAM',
  'MEDIA',
  'PAYMENT',
  'ACTOR',
  'JOB',
] as const;

/** Every code, for schemas that carry one (an actor's error reply, the client's error union). */
// eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- the keys of the catalogue are its codes, and it has at least one.
export const ERROR_CODES = Object.keys(errorCatalogue) as [ErrorCode, ...ErrorCode[]];

export interface FlockErrorOptions {
  cause?: unknown;
  /** Structured, client-safe details (e.g. which fields failed validation). */
  details?: Record<string, unknown>;
}

export class FlockError extends Error {
  override readonly name = 'FlockError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, options: FlockErrorOptions = {}) {
    super(message ?? errorCatalogue[code].message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  get status(): number {
    return errorCatalogue[this.code].status;
  }
}

/** The message of anything thrown, for logs (an Error's message, or the value as text). */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The `code` of a system or driver error ('EEXIST', 11000...), undefined when it has none. */
export function systemCode(err: unknown): unknown {
  return err instanceof Error && 'code' in err ? err.code : undefined;
}

export function isFlockError(err: unknown): err is FlockError {
  return err instanceof FlockError;
}

/** The `error` half of a socket ack or an HTTP error body. Internal causes never leak. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export function toErrorBody(err: unknown): ErrorBody {
  const flock = toFlockError(err);
  return flock.details === undefined ? { code: flock.code, message: flock.message } : { code: flock.code, message: flock.message, details: flock.details };
}

/** How long a client should wait before retrying a request that met an unavailable backing service. */
export const SERVICE_RETRY_AFTER_MS = 1_000;

/** SERVICE_UNAVAILABLE if `err` (or its cause) says a backing service is away; undefined otherwise. */
export function serviceUnavailable(err: unknown): FlockError | undefined {
  if (isFlockError(err)) return err.code === 'SERVICE_UNAVAILABLE' ? err : undefined;
  const service = unavailableService(err);
  if (!service) return undefined;
  return new FlockError('SERVICE_UNAVAILABLE', undefined, { cause: err, details: { retryAfterMs: SERVICE_RETRY_AFTER_MS, service } });
}

/** Anything thrown, as the FlockError a client sees: itself, SERVICE_UNAVAILABLE, or SERVER_INTERNAL (its cause kept, never shown). */
export function toFlockError(err: unknown): FlockError {
  if (isFlockError(err)) return err;
  return serviceUnavailable(err) ?? new FlockError('SERVER_INTERNAL', undefined, { cause: err });
}
