// The node's configuration: every environment variable Flock reads, declared
// once with its schema, default and meaning. `loadConfig` validates them all and
// fails with one message naming every bad variable and what it expects; the
// README table is checked against `configVariables` by a test.
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { oauthSettingsSchema, type OAuthSettings } from '../auth/oauth/settings.ts';

interface VariableSpec<S extends z.ZodType> {
  schema: S;
  /** What a valid value looks like, in words; used in errors and docs. */
  expects: string;
  /** Documented default; the schema applies it. */
  default?: string;
  doc: string;
  /**
   * How much of a bad value an error may show: `value` never shows it (keys,
   * secrets, JSON holding secrets), `credentials` shows a URL without its
   * user info. Unset: the value is quoted.
   */
  secret?: 'value' | 'credentials';
}

function variable<S extends z.ZodType>(spec: VariableSpec<S>): VariableSpec<S> {
  return spec;
}

const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const port = z.coerce.number().int().min(0).max(65535);
const url = (protocols: readonly string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  });
const duration = z.string().regex(/^\d+(\.\d+)?\s*(ms|milliseconds?|s|seconds?|m|minutes?|h|hours?)$/);

function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'flock');
}

export const configVariables = {
  NODE_ENV: variable({
    schema: z.enum(['development', 'test', 'production']).default('development'),
    expects: 'one of development, test, production',
    default: 'development',
    doc: 'Deployment mode. In production embedded dev services are off unless FLOCK_DEV_SERVICES=auto.',
  }),
  HOST: variable({
    schema: z.string().min(1).default('0.0.0.0'),
    expects: 'an interface address to listen on',
    default: '0.0.0.0',
    doc: 'Address the HTTP/Socket.IO listener binds.',
  }),
  PORT: variable({
    schema: port.default(3000),
    expects: 'an integer from 0 to 65535 (0 picks a free port)',
    default: '3000',
    doc: 'Port of the HTTP/Socket.IO listener.',
  }),
  NODE_ID: variable({
    schema: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/)
      .optional(),
    expects: '1 to 64 characters from A-Z a-z 0-9 . _ -',
    doc: 'Stable name of this node in logs, metrics and actor placement. Default: host name, pid and a random suffix.',
  }),
  LOG_LEVEL: variable({
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    expects: 'one of fatal, error, warn, info, debug, trace, silent',
    default: 'info',
    doc: 'Minimum level of the JSON logs written to stdout.',
  }),
  SHUTDOWN_TIMEOUT_MS: variable({
    schema: z.coerce.number().int().min(100).max(600_000).default(10_000),
    expects: 'an integer number of milliseconds from 100 to 600000',
    default: '10000',
    doc: 'Bound on graceful shutdown after SIGTERM/SIGINT; past it the process exits with code 1.',
  }),
  SOCKET_MAX_PAYLOAD_BYTES: variable({
    schema: z.coerce
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024)
      .default(64 * 1024),
    expects: 'an integer number of bytes from 1024 to 16777216',
    default: '65536',
    doc: 'Largest Socket.IO message accepted (maxHttpBufferSize; also the websocket frame limit: uWS maxPayloadLength or ws maxPayload).',
  }),
  SOCKET_ENGINE: variable({
    schema: z.enum(['auto', 'uws', 'ws']).default('auto'),
    expects: 'one of auto, uws, ws',
    default: 'auto',
    doc: 'What carries Socket.IO and the HTTP routes. auto: uWebSockets.js where its binary loads (Node 20 on glibc 2.27+), else the ws engine on node:http, with a warning and flock_socket_engine{engine="ws"} 1. uws: uWebSockets.js or refuse to start (SERVER_ENGINE_UNAVAILABLE). ws: always node:http (README "Runtime").',
  }),
  JWT_SECRET: variable({
    schema: z
      .string()
      .regex(/^[A-Za-z0-9+/_=-]+$/)
      .refine((v) => Buffer.from(v, 'base64').length >= 32)
      .optional(),
    expects: 'at least 32 random bytes, base64 encoded (openssl rand -base64 48)',
    default: 'generated once into FLOCK_DATA_DIR/jwt-secret outside production',
    doc: 'HMAC key of access tokens (HS256), the same on every node. Required in production, dev services or not.',
    secret: 'value',
  }),
  ACCESS_TOKEN_TTL_SECONDS: variable({
    schema: z.coerce
      .number()
      .int()
      .min(5)
      .max(24 * 3600)
      .default(900),
    expects: 'an integer number of seconds from 5 to 86400',
    default: '900',
    doc: 'Lifetime of access tokens; sockets are told to refresh when theirs expires.',
  }),
  REFRESH_TOKEN_TTL_SECONDS: variable({
    schema: z.coerce
      .number()
      .int()
      .min(300)
      .max(365 * 24 * 3600)
      .default(30 * 24 * 3600),
    expects: 'an integer number of seconds from 300 to 31536000',
    default: '2592000',
    doc: 'Lifetime of each refresh token; a session lives while it is refreshed within it.',
  }),
  AUTH_LOGIN_WINDOW_SECONDS: variable({
    schema: z.coerce.number().int().min(10).max(86_400).default(900),
    expects: 'an integer number of seconds from 10 to 86400',
    default: '900',
    doc: 'Sliding window of the sign-in budgets (AUTH_LOGIN_PAIR_LIMIT, AUTH_LOGIN_ACCOUNT_LIMIT, AUTH_LOGIN_IP_LIMIT).',
  }),
  AUTH_LOGIN_PAIR_LIMIT: variable({
    schema: z.coerce.number().int().min(1).max(1_000).default(5),
    expects: 'an integer from 1 to 1000',
    default: '5',
    doc: 'Password verifications per account from one IP (IPv6: /64) per window that may fail; then AUTH_THROTTLED for that account from that IP only.',
  }),
  AUTH_LOGIN_ACCOUNT_LIMIT: variable({
    schema: z.coerce.number().int().min(1).max(100_000).default(100),
    expects: 'an integer from 1 to 100000',
    default: '100',
    doc: 'Failed sign-ins per account from all IPs per window, against guessing from many addresses; IPs that signed in to the account within AUTH_KNOWN_IP_DAYS are exempt.',
  }),
  AUTH_LOGIN_IP_LIMIT: variable({
    schema: z.coerce.number().int().min(1).max(100_000).default(50),
    expects: 'an integer from 1 to 100000',
    default: '50',
    doc: 'Failed sign-ins from one IP (IPv6: /64) across accounts per window.',
  }),
  AUTH_KNOWN_IP_DAYS: variable({
    schema: z.coerce.number().int().min(1).max(365).default(30),
    expects: 'an integer number of days from 1 to 365',
    default: '30',
    doc: "How long an IP that signed in to an account stays exempt from that account's AUTH_LOGIN_ACCOUNT_LIMIT.",
  }),
  AUTH_REGISTER_IP_LIMIT: variable({
    schema: z.coerce.number().int().min(1).max(100_000).default(20),
    expects: 'an integer from 1 to 100000',
    default: '20',
    doc: 'Registrations (successful or not) from one IP (IPv6: /64) per AUTH_REGISTER_WINDOW_SECONDS; then AUTH_THROTTLED.',
  }),
  AUTH_REGISTER_WINDOW_SECONDS: variable({
    schema: z.coerce
      .number()
      .int()
      .min(10)
      .max(7 * 86_400)
      .default(3_600),
    expects: 'an integer number of seconds from 10 to 604800',
    default: '3600',
    doc: 'Sliding window of AUTH_REGISTER_IP_LIMIT.',
  }),
  AUTH_REAUTH_MAX_AGE_SECONDS: variable({
    schema: z.coerce.number().int().min(30).max(86_400).default(300),
    expects: 'an integer number of seconds from 30 to 86400',
    default: '300',
    doc: 'Sensitive account changes (linking a provider) need a sign-in at most this old, or the password again (AUTH_REAUTH_REQUIRED).',
  }),
  OAUTH_CONFIG: variable({
    schema: z
      .string()
      .transform((raw, ctx) => {
        try {
          const parsed: unknown = JSON.parse(raw);
          return parsed;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'not JSON' });
          return z.NEVER;
        }
      })
      .pipe(oauthSettingsSchema)
      .optional(),
    expects: 'a JSON object of OAuth settings (README "Sign-in with Google, Facebook and X")',
    doc: 'OAuth providers (client ids, secrets, callback URLs), allowed return URLs. Unset: provider sign-in is off.',
    secret: 'value',
  }),
  SOCKET_ALLOWED_ORIGINS: variable({
    schema: z
      .string()
      .regex(/^(\*|https?:\/\/[^\s,]+(,https?:\/\/[^\s,]+)*)$/)
      .optional(),
    expects: '* or a comma-separated list of origins such as https://app.example.com',
    default: '* outside production; none in production',
    doc: 'Browser origins allowed to open a socket. Clients that send no Origin header (mobile apps) are always allowed.',
  }),
  TRUST_PROXY: variable({
    schema: z
      .enum(['true', 'false', '0', '1', '2', '3', '4', '5'])
      .default('false')
      .transform((v) => (v === 'true' ? 1 : v === 'false' ? 0 : Number(v))),
    expects: 'false, true (one proxy) or the number of proxies from 0 to 5',
    default: 'false',
    doc: "How many proxies in front of the nodes append to X-Forwarded-For. The client IP is the address the outermost of them saw (the entry that many from the right); entries a client sends itself are ignored. false: the connection's peer.",
  }),
  OPS_TOKEN: variable({
    schema: z.string().min(32).max(512).optional(),
    expects: 'a random string of 32 to 512 characters',
    secret: 'value',
    doc: 'Bearer token for /metrics and the detail of /readyz (which services, how they failed). Unset: they are open, so keep them internal at the proxy (deploy/nginx.conf does).',
  }),
  SOCKETS_PER_USER: variable({
    schema: z.coerce.number().int().min(1).max(10_000).default(20),
    expects: 'an integer from 1 to 10000',
    default: '20',
    doc: 'Signed-in sockets of one user on one node; one more is refused with REQUEST_TOO_MANY_CONNECTIONS (at the handshake, or the sign-in request on an open socket).',
  }),
  SOCKETS_PER_IP: variable({
    schema: z.coerce.number().int().min(1).max(1_000_000).default(1_000),
    expects: 'an integer from 1 to 1000000',
    default: '1000',
    doc: 'Open sockets from one client IP on one node (mobile carriers put many users behind one address); one more is refused at the handshake with REQUEST_TOO_MANY_CONNECTIONS.',
  }),
  SOCKET_SIGN_IN_SECONDS: variable({
    schema: z.coerce.number().int().min(1).max(3_600).default(60),
    expects: 'an integer number of seconds from 1 to 3600',
    default: '60',
    doc: 'How long a socket may stay open without a session (connected without a token, or signed out); then it gets flock:error AUTH_REQUIRED and is disconnected.',
  }),
  ACCESS_TOKEN_GRACE_SECONDS: variable({
    schema: z.coerce.number().int().min(0).max(3_600).default(60),
    expects: 'an integer number of seconds from 0 to 3600',
    default: '60',
    doc: 'After auth:expired, how long a socket keeps its rooms (personal events, presence, live feed) waiting for auth:reauthenticate; then it is signed out: it leaves every room and gets flock:error AUTH_TOKEN_EXPIRED.',
  }),
  RATE_LIMIT_IP_PER_SECOND: variable({
    schema: z.coerce.number().int().min(1).max(100_000).default(100),
    expects: 'an integer from 1 to 100000',
    default: '100',
    doc: 'Socket requests per second from one IP across all events and nodes (bursts of twice that); each event has its own limit too.',
  }),
  FLOCK_DEV_SERVICES: variable({
    schema: z.enum(['auto', 'off']).optional(),
    expects: 'auto or off',
    default: 'auto (off when NODE_ENV=production)',
    doc: 'auto: start an embedded FerretDB, s3rver and stripe-mock for each service whose URL is unset. off: every service must be configured.',
  }),
  FLOCK_DATA_DIR: variable({
    schema: z.string().min(1).default('.flock-data'),
    expects: 'a directory path',
    default: '.flock-data',
    doc: 'Where embedded services keep their data (FerretDB SQLite files, s3rver objects).',
  }),
  FLOCK_CACHE_DIR: variable({
    schema: z.string().min(1).optional(),
    expects: 'a directory path',
    default: '$XDG_CACHE_HOME/flock or ~/.cache/flock',
    doc: 'Where built dev-service binaries (FerretDB, stripe-mock) are cached across clones.',
  }),
  MONGO_URL: variable({
    schema: url(['mongodb:', 'mongodb+srv:']).optional(),
    expects: 'a mongodb:// or mongodb+srv:// URL',
    doc: 'MongoDB to use. Unset: an embedded FerretDB (SQLite) under FLOCK_DATA_DIR.',
    secret: 'credentials',
  }),
  MONGO_DB: variable({
    schema: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,63}$/)
      .default('flock'),
    expects: '1 to 63 characters from A-Z a-z 0-9 _ -',
    default: 'flock',
    doc: 'Database name.',
  }),
  MONGO_POOL_SIZE: variable({
    schema: z.coerce.number().int().min(1).max(500).default(20),
    expects: 'an integer from 1 to 500',
    default: '20',
    doc: 'Maximum MongoDB connections per node.',
  }),
  REDIS_URL: variable({
    schema: url(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
    expects: 'a redis:// or rediss:// URL',
    default: 'redis://127.0.0.1:6379',
    doc: 'Redis for actor placement, routing, the Socket.IO adapter and job notifications. Never embedded.',
    secret: 'credentials',
  }),
  REDIS_KEY_PREFIX: variable({
    schema: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_:-]{0,39}$/)
      .default('flock'),
    expects: 'up to 40 letters, digits, _, : or -',
    default: 'flock',
    doc: 'Prefix of every Redis key and channel a node uses (actors, personal streams, presence, rate limits, sign-in and registration budgets, revocations, OAuth flows, feeds, social events, job notifications, the Socket.IO adapter): separate clusters sharing one Redis use different prefixes.',
  }),
  S3_ENDPOINT: variable({
    schema: url(['http:', 'https:']).optional(),
    expects: 'an http:// or https:// URL',
    doc: 'S3-compatible endpoint (MinIO, R2...). Unset: AWS S3 when FLOCK_DEV_SERVICES=off, otherwise an embedded s3rver.',
  }),
  S3_REGION: variable({
    schema: z.string().min(1).default('us-east-1'),
    expects: 'a region name',
    default: 'us-east-1',
    doc: 'S3 region.',
  }),
  S3_ACCESS_KEY_ID: variable({
    schema: z.string().min(1).optional(),
    expects: 'an access key id',
    doc: 'S3 credentials; unset: the AWS SDK default chain (ignored for the embedded s3rver).',
  }),
  S3_SECRET_ACCESS_KEY: variable({
    schema: z.string().min(1).optional(),
    expects: 'a secret access key',
    doc: 'Secret for S3_ACCESS_KEY_ID.',
    secret: 'value',
  }),
  S3_BUCKET: variable({
    schema: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/)
      .default('flock-media'),
    expects: 'an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)',
    default: 'flock-media',
    doc: 'Bucket for uploaded and derived media. Created at start when missing.',
  }),
  S3_FORCE_PATH_STYLE: variable({
    schema: bool.default(false),
    expects: 'true or false',
    default: 'false',
    doc: 'Path-style bucket addressing (needed by MinIO).',
  }),
  STRIPE_API_BASE: variable({
    schema: url(['http:', 'https:']).optional(),
    expects: 'an http:// or https:// URL',
    doc: 'Stripe API base. Unset: api.stripe.com when FLOCK_DEV_SERVICES=off, otherwise an embedded stripe-mock.',
  }),
  STRIPE_SECRET_KEY: variable({
    schema: z
      .string()
      .regex(/^(sk|rk)_(test|live)_[A-Za-z0-9]+$/)
      .optional(),
    expects: 'a Stripe secret key (sk_test_..., sk_live_..., rk_...)',
    doc: 'Stripe secret key. Required when STRIPE_API_BASE is unset and dev services are off.',
    secret: 'value',
  }),
  STRIPE_WEBHOOK_SECRET: variable({
    schema: z
      .string()
      .regex(/^whsec_[A-Za-z0-9]+$/)
      .optional(),
    expects: 'a Stripe webhook signing secret (whsec_...)',
    doc: 'Verifies Stripe webhook signatures.',
    secret: 'value',
  }),
  FFMPEG_PATH: variable({
    schema: z.string().min(1).optional(),
    expects: 'a path to an ffmpeg executable',
    doc: 'ffmpeg to use. Unset: ffmpeg on PATH, else the @ffmpeg-installer binary.',
  }),
  FFPROBE_PATH: variable({
    schema: z.string().min(1).optional(),
    expects: 'a path to an ffprobe executable',
    doc: 'ffprobe to use. Unset: ffprobe on PATH, else the @ffprobe-installer binary.',
  }),
  MEDIA_IMAGE_MAX_BYTES: variable({
    schema: z.coerce.number().int().min(1024).max(1073741824).default(52428800),
    expects: 'an integer number of bytes from 1024 to 1073741824',
    default: '52428800',
    doc: 'Largest image upload (MEDIA_TOO_LARGE beyond, details.limit bytes).',
  }),
  MEDIA_IMAGE_MAX_PIXELS: variable({
    schema: z.coerce.number().int().min(1000000).max(268402689).default(50000000),
    expects: 'an integer number of pixels from 1000000 to 268402689',
    default: '50000000',
    doc: 'Most pixels an image may have (width x height, read from its header before it is decoded: decompression bombs get MEDIA_TOO_LARGE, details.limit pixels).',
  }),
  MEDIA_VIDEO_MAX_BYTES: variable({
    schema: z.coerce.number().int().min(1048576).max(68719476736).default(4294967296),
    expects: 'an integer number of bytes from 1048576 to 68719476736',
    default: '4294967296',
    doc: 'Largest video upload (MEDIA_TOO_LARGE beyond, details.limit bytes).',
  }),
  MEDIA_VIDEO_MAX_SECONDS: variable({
    schema: z.coerce.number().int().min(1).max(86400).default(600),
    expects: 'an integer number of seconds from 1 to 86400',
    default: '600',
    doc: 'Longest video (MEDIA_TOO_LARGE beyond, details.limit seconds).',
  }),
  MEDIA_VIDEO_MAX_PIXELS: variable({
    schema: z.coerce.number().int().min(65536).max(35389440).default(8847360),
    expects: 'an integer number of pixels from 65536 to 35389440',
    default: '8847360',
    doc: 'Most pixels per video frame (4096 x 2160 by default; MEDIA_TOO_LARGE beyond, details.limit pixels).',
  }),
  MEDIA_BYTES_PER_DAY: variable({
    schema: z.coerce.number().int().min(1048576).max(1099511627776).default(10737418240),
    expects: 'an integer number of bytes from 1048576 to 1099511627776',
    default: '10737418240',
    doc: "Bytes one user may upload per 24 hours, counted at each upload's start from its declared length (MEDIA_QUOTA_EXCEEDED beyond, details.scope bytes).",
  }),
  MEDIA_CONCURRENT_UPLOADS: variable({
    schema: z.coerce.number().int().min(1).max(100).default(5),
    expects: 'an integer from 1 to 100',
    default: '5',
    doc: 'Uploads one user may have in progress at once (MEDIA_QUOTA_EXCEEDED beyond, details.scope concurrent).',
  }),
  MEDIA_UPLOAD_EXPIRY_SECONDS: variable({
    schema: z.coerce.number().int().min(60).max(604800).default(86400),
    expects: 'an integer number of seconds from 60 to 604800',
    default: '86400',
    doc: 'An upload not finished within this expires (tus Upload-Expires): its parts are deleted and its media removed.',
  }),
  MEDIA_URL_TTL_SECONDS: variable({
    schema: z.coerce.number().int().min(60).max(86400).default(3600),
    expects: 'an integer number of seconds from 60 to 86400',
    default: '3600',
    doc: 'How long playback URLs in media views work; media:get gives fresh ones.',
  }),
  MEDIA_PUBLIC_URL: variable({
    schema: z.union([z.literal(''), z.url({ protocol: /^https?$/ })]).default(''),
    expects: 'an http(s) URL, or empty',
    default: "'' (URLs relative to the node)",
    doc: 'Where clients reach the nodes (the proxy in front of them): prefixes playback URLs.',
  }),
  MEDIA_WORK_DIR: variable({
    schema: z.string().min(1).optional(),
    expects: 'a directory path',
    default: 'the system temporary directory',
    doc: 'Where processing keeps its local files (a directory per run, removed after it); needs room for a few sources and their outputs.',
  }),
  STORAGE_WEBHOOK_TOKEN: variable({
    schema: z.string().min(16).max(256).optional(),
    expects: 'a random token of 16 to 256 characters',
    doc: 'The bearer token S3/MinIO bucket notifications must carry (POST /webhooks/storage). Unset: the route refuses every call; direct uploads then start processing at media:completeDirectUpload.',
    secret: 'value',
  }),
  ACTOR_LEASE_MS: variable({
    schema: z.coerce.number().int().min(500).max(60_000).default(5_000),
    expects: 'an integer number of milliseconds from 500 to 60000',
    default: '5000',
    doc: 'Node lease for actor placement: a node silent this long is presumed dead and its actors move. Also bounds failover time.',
  }),
  ACTOR_IDLE_MS: variable({
    schema: z.coerce
      .number()
      .int()
      .min(1_000)
      .max(24 * 3600_000)
      .default(300_000),
    expects: 'an integer number of milliseconds from 1000 to 86400000',
    default: '300000',
    doc: 'Actors without messages for this long are passivated (state saved, memory freed).',
  }),
  ACTOR_MAILBOX_CAPACITY: variable({
    schema: z.coerce.number().int().min(1).max(100_000).default(1_000),
    expects: 'an integer from 1 to 100000',
    default: '1000',
    doc: 'Messages queued per actor before senders get ACTOR_BUSY.',
  }),
  ACTOR_ASK_TIMEOUT_MS: variable({
    schema: z.coerce.number().int().min(100).max(120_000).default(5_000),
    expects: 'an integer number of milliseconds from 100 to 120000',
    default: '5000',
    doc: 'Default time an ask waits for its answer before ACTOR_TIMEOUT.',
  }),
  SOCIAL_MAX_FOLLOWING: variable({
    schema: z.coerce.number().int().min(1).max(1_000_000).default(5_000),
    expects: 'an integer from 1 to 1000000',
    default: '5000',
    doc: 'Follows plus pending follow requests one account may have (GRAPH_FOLLOW_LIMIT beyond).',
  }),
  FEED_FANOUT_THRESHOLD: variable({
    schema: z.coerce.number().int().min(1).max(100_000_000).default(5_000),
    expects: 'an integer from 1 to 100000000',
    default: '5000',
    doc: 'Authors with at least this many followers are merged into home timelines at read time instead of fanned out on write.',
  }),
  FEED_MAX_LENGTH: variable({
    schema: z.coerce.number().int().min(20).max(10_000).default(800),
    expects: 'an integer from 20 to 10000',
    default: '800',
    doc: 'Entries kept per stored home feed (Redis); older pages come from the merge path.',
  }),
  FEED_SHARDS: variable({
    schema: z.coerce.number().int().min(1).max(4_096).default(64),
    expects: 'an integer from 1 to 4096',
    default: '64',
    doc: 'FeedShard actors that own the stored home feeds (a post fans out in one batched message per shard); the same on every node.',
  }),
  CONVERSATION_MAX_MEMBERS: variable({
    schema: z.coerce.number().int().min(2).max(10_000).default(256),
    expects: 'an integer from 2 to 10000',
    default: '256',
    doc: 'Members of a group conversation, owner included, with pending invites (CONVERSATION_FULL beyond).',
  }),
  CONVERSATION_RESEND_WINDOW_HOURS: variable({
    schema: z.coerce.number().int().min(1).max(720).default(24),
    expects: 'an integer number of hours from 1 to 720',
    default: '24',
    doc: 'How long a clientMessageId names its message: a resend within it returns the stored message (duplicate: true) instead of a second one.',
  }),
  CONVERSATION_UNREAD_SCAN: variable({
    schema: z.coerce.number().int().min(1).max(10_000).default(100),
    expects: 'an integer from 1 to 10000',
    default: '100',
    doc: 'conversations:unread counts over this many of the most recently active conversations of the user (capped: true when there are more).',
  }),
  STREAM_MAX_BYTES: variable({
    schema: z.coerce.number().int().min(65_536).max(1_073_741_824).default(8_388_608),
    expects: 'an integer number of bytes from 65536 to 1073741824',
    default: '8388608',
    doc: 'Bytes one personal stream keeps (type and data of each event plus 64); the oldest events are trimmed beyond, and a client resuming from before them gets a resync.',
  }),
  STREAM_SENDER_BYTES_PER_MINUTE: variable({
    schema: z.coerce.number().int().min(65_536).max(1_073_741_824).default(16_777_216),
    expects: 'an integer number of bytes from 65536 to 1073741824',
    default: '16777216',
    doc: "Bytes one user's requests may append to other users' personal streams per minute, all recipients together (STREAM_QUOTA_EXCEEDED beyond; nothing is written).",
  }),
  STREAM_SENDER_BYTES_PER_RECIPIENT: variable({
    schema: z.coerce.number().int().min(65_536).max(1_073_741_824).default(2_097_152),
    expects: 'an integer number of bytes from 65536 to 1073741824',
    default: '2097152',
    doc: "Bytes one user's requests may append to one other user's personal stream per 24 hours (STREAM_QUOTA_EXCEEDED beyond; nothing is written).",
  }),
  JOBS_PROCESS_EVERY: variable({
    schema: duration.default('10 seconds'),
    expects: 'a duration such as "500 ms", "10 seconds" or "1 minute"',
    default: '10 seconds',
    doc: 'Agenda polling interval; jobs saved on any node are also announced at once over Redis.',
  }),
  HOUSEKEEPING_EVERY: variable({
    schema: duration.default('1 hour'),
    expects: 'a duration such as "10 minutes" or "1 hour"',
    default: '1 hour',
    doc: 'How often the housekeeping job runs.',
  }),
  JOBS_RETENTION_DAYS: variable({
    schema: z.coerce.number().int().min(1).max(3650).default(7),
    expects: 'an integer number of days from 1 to 3650',
    default: '7',
    doc: 'Finished one-off jobs older than this are deleted by housekeeping.',
  }),
} as const;

export type ConfigVariable = keyof typeof configVariables;
type Parsed = { [K in ConfigVariable]: z.output<(typeof configVariables)[K]['schema']> };

export interface Config {
  env: 'development' | 'test' | 'production';
  nodeId: string;
  host: string;
  port: number;
  logLevel: Parsed['LOG_LEVEL'];
  shutdownTimeoutMs: number;
  socketMaxPayloadBytes: number;
  socketEngine: Parsed['SOCKET_ENGINE'];
  allowedOrigins: '*' | readonly string[];
  auth: {
    jwtSecret: string | undefined;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
    /** Sign-in budgets (auth/throttle.ts). */
    login: { pairLimit: number; accountLimit: number; ipLimit: number; windowMs: number; knownIpTtlMs: number };
    /** Registration budget (auth/registration.ts). */
    registration: { ipLimit: number; windowMs: number };
    reauthMaxAgeSeconds: number;
  };
  oauth: OAuthSettings | undefined;
  /** Proxies in front of the node that append to X-Forwarded-For (0: trust none). */
  trustProxyHops: number;
  ipRatePerSecond: number;
  sockets: { perUser: number; perIp: number; signInSeconds: number; graceSeconds: number };
  opsToken: string | undefined;
  devServices: 'auto' | 'off';
  dataDir: string;
  cacheDir: string;
  mongo: { url: string | undefined; dbName: string; poolSize: number };
  redis: { url: string; keyPrefix: string };
  s3: {
    endpoint: string | undefined;
    region: string;
    accessKeyId: string | undefined;
    secretAccessKey: string | undefined;
    bucket: string;
    forcePathStyle: boolean;
  };
  stripe: { apiBase: string | undefined; secretKey: string | undefined; webhookSecret: string | undefined };
  media: {
    ffmpegPath: string | undefined;
    ffprobePath: string | undefined;
    limits: { image: { maxBytes: number; maxPixels: number }; video: { maxBytes: number; maxSeconds: number; maxPixels: number } };
    bytesPerDay: number;
    concurrentUploads: number;
    uploadExpirySeconds: number;
    urlTtlSeconds: number;
    publicUrl: string;
    workDir: string | undefined;
    storageWebhookToken: string | undefined;
  };
  jobs: { processEvery: string; housekeepingEvery: string; retentionDays: number };
  actors: { leaseMs: number; idleAfterMs: number; mailboxCapacity: number; askTimeoutMs: number };
  social: { maxFollowing: number };
  messaging: { maxMembers: number; resendWindowMs: number; unreadScan: number };
  streams: { maxBytes: number; senderBytesPerMinute: number; senderBytesPerRecipient: number };
  feeds: { fanoutThreshold: number; maxLength: number; shards: number };
}

/** Reads and validates the configuration; throws CONFIG_INVALID naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- the entries of the table are its variables.
  for (const [name, spec] of Object.entries(configVariables) as [ConfigVariable, VariableSpec<z.ZodType>][]) {
    const raw = env[name] === '' ? undefined : env[name];
    const result = spec.schema.safeParse(raw);
    if (result.success) values[name] = result.data;
    else problems.push(`${name}: expected ${spec.expects}, got ${shown(spec, raw, result.error)}`);
  }
  if (problems.length > 0) throw configError(problems);
  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- every variable was parsed by its own schema above.
  const v = values as Parsed;

  const devServices = v.FLOCK_DEV_SERVICES ?? (v.NODE_ENV === 'production' ? 'off' : 'auto');
  // Whatever provides the other services: a key generated into the data
  // directory would differ per node and vanish with the volume.
  if (v.NODE_ENV === 'production' && !v.JWT_SECRET) {
    problems.push('JWT_SECRET: expected at least 32 random bytes, base64 encoded, in production, got undefined');
  }
  if (devServices === 'off') {
    if (!v.MONGO_URL) problems.push('MONGO_URL: expected a mongodb:// or mongodb+srv:// URL when FLOCK_DEV_SERVICES=off, got undefined');
    if (!v.STRIPE_API_BASE && !v.STRIPE_SECRET_KEY) {
      problems.push('STRIPE_SECRET_KEY: expected a Stripe secret key when FLOCK_DEV_SERVICES=off and STRIPE_API_BASE is unset, got undefined');
    }
  }
  if (Boolean(v.S3_ACCESS_KEY_ID) !== Boolean(v.S3_SECRET_ACCESS_KEY)) {
    problems.push('S3_SECRET_ACCESS_KEY: expected S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY to be set together');
  }
  if (problems.length > 0) throw configError(problems);

  return {
    env: v.NODE_ENV,
    nodeId:
      v.NODE_ID ??
      `${os
        .hostname()
        .replace(/[^A-Za-z0-9._-]/g, '-')
        .slice(0, 40)}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    host: v.HOST,
    port: v.PORT,
    logLevel: v.LOG_LEVEL,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    socketMaxPayloadBytes: v.SOCKET_MAX_PAYLOAD_BYTES,
    socketEngine: v.SOCKET_ENGINE,
    allowedOrigins: v.SOCKET_ALLOWED_ORIGINS === '*' ? '*' : (v.SOCKET_ALLOWED_ORIGINS?.split(',') ?? (v.NODE_ENV === 'production' ? [] : '*')),
    trustProxyHops: v.TRUST_PROXY,
    auth: {
      jwtSecret: v.JWT_SECRET,
      accessTtlSeconds: v.ACCESS_TOKEN_TTL_SECONDS,
      refreshTtlSeconds: v.REFRESH_TOKEN_TTL_SECONDS,
      login: {
        pairLimit: v.AUTH_LOGIN_PAIR_LIMIT,
        accountLimit: v.AUTH_LOGIN_ACCOUNT_LIMIT,
        ipLimit: v.AUTH_LOGIN_IP_LIMIT,
        windowMs: v.AUTH_LOGIN_WINDOW_SECONDS * 1000,
        knownIpTtlMs: v.AUTH_KNOWN_IP_DAYS * 24 * 3600_000,
      },
      registration: { ipLimit: v.AUTH_REGISTER_IP_LIMIT, windowMs: v.AUTH_REGISTER_WINDOW_SECONDS * 1000 },
      reauthMaxAgeSeconds: v.AUTH_REAUTH_MAX_AGE_SECONDS,
    },
    oauth: v.OAUTH_CONFIG,
    ipRatePerSecond: v.RATE_LIMIT_IP_PER_SECOND,
    opsToken: v.OPS_TOKEN,
    sockets: {
      perUser: v.SOCKETS_PER_USER,
      perIp: v.SOCKETS_PER_IP,
      signInSeconds: v.SOCKET_SIGN_IN_SECONDS,
      graceSeconds: v.ACCESS_TOKEN_GRACE_SECONDS,
    },
    devServices,
    dataDir: path.resolve(v.FLOCK_DATA_DIR),
    cacheDir: path.resolve(v.FLOCK_CACHE_DIR ?? defaultCacheDir()),
    mongo: { url: v.MONGO_URL, dbName: v.MONGO_DB, poolSize: v.MONGO_POOL_SIZE },
    redis: { url: v.REDIS_URL, keyPrefix: v.REDIS_KEY_PREFIX },
    s3: {
      endpoint: v.S3_ENDPOINT,
      region: v.S3_REGION,
      accessKeyId: v.S3_ACCESS_KEY_ID,
      secretAccessKey: v.S3_SECRET_ACCESS_KEY,
      bucket: v.S3_BUCKET,
      forcePathStyle: v.S3_FORCE_PATH_STYLE,
    },
    stripe: { apiBase: v.STRIPE_API_BASE, secretKey: v.STRIPE_SECRET_KEY, webhookSecret: v.STRIPE_WEBHOOK_SECRET },
    media: {
      ffmpegPath: v.FFMPEG_PATH,
      ffprobePath: v.FFPROBE_PATH,
      limits: {
        image: { maxBytes: v.MEDIA_IMAGE_MAX_BYTES, maxPixels: v.MEDIA_IMAGE_MAX_PIXELS },
        video: { maxBytes: v.MEDIA_VIDEO_MAX_BYTES, maxSeconds: v.MEDIA_VIDEO_MAX_SECONDS, maxPixels: v.MEDIA_VIDEO_MAX_PIXELS },
      },
      bytesPerDay: v.MEDIA_BYTES_PER_DAY,
      concurrentUploads: v.MEDIA_CONCURRENT_UPLOADS,
      uploadExpirySeconds: v.MEDIA_UPLOAD_EXPIRY_SECONDS,
      urlTtlSeconds: v.MEDIA_URL_TTL_SECONDS,
      publicUrl: v.MEDIA_PUBLIC_URL,
      workDir: v.MEDIA_WORK_DIR,
      storageWebhookToken: v.STORAGE_WEBHOOK_TOKEN,
    },
    jobs: { processEvery: v.JOBS_PROCESS_EVERY, housekeepingEvery: v.HOUSEKEEPING_EVERY, retentionDays: v.JOBS_RETENTION_DAYS },
    actors: {
      leaseMs: v.ACTOR_LEASE_MS,
      idleAfterMs: v.ACTOR_IDLE_MS,
      mailboxCapacity: v.ACTOR_MAILBOX_CAPACITY,
      askTimeoutMs: v.ACTOR_ASK_TIMEOUT_MS,
    },
    social: { maxFollowing: v.SOCIAL_MAX_FOLLOWING },
    messaging: {
      maxMembers: v.CONVERSATION_MAX_MEMBERS,
      resendWindowMs: v.CONVERSATION_RESEND_WINDOW_HOURS * 3_600_000,
      unreadScan: v.CONVERSATION_UNREAD_SCAN,
    },
    streams: {
      maxBytes: v.STREAM_MAX_BYTES,
      senderBytesPerMinute: v.STREAM_SENDER_BYTES_PER_MINUTE,
      senderBytesPerRecipient: v.STREAM_SENDER_BYTES_PER_RECIPIENT,
    },
    feeds: { fanoutThreshold: v.FEED_FANOUT_THRESHOLD, maxLength: v.FEED_MAX_LENGTH, shards: v.FEED_SHARDS },
  };
}

/**
 * A bad value as an error may quote it: secrets never (their length and the
 * paths of the offending fields instead), URLs with credentials without them.
 */
function shown(spec: VariableSpec<z.ZodType>, raw: string | undefined, error: z.ZodError): string {
  if (raw === undefined || spec.secret === undefined) return JSON.stringify(raw);
  if (spec.secret === 'credentials') return JSON.stringify(withoutCredentials(raw));
  const paths = [...new Set(error.issues.map((i) => i.path.map(String).join('.')).filter((p) => p !== ''))];
  return `a value of ${raw.length} characters (not shown: secret)${paths.length > 0 ? `; check ${paths.join(', ')}` : ''}`;
}

/** The URL with any user info (user:password@) replaced; also for strings that do not parse as URLs. */
function withoutCredentials(raw: string): string {
  // Up to the last "@": a password may hold any character, escaped or not.
  return raw.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?.*@/s, (_match, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

function configError(problems: string[]): FlockError {
  return new FlockError('CONFIG_INVALID', `Invalid configuration:\n  ${problems.join('\n  ')}`, {
    details: { problems },
  });
}
