// The dev-services module: resolves every backing service a node needs, used
// by `npm start` and by the test suite alike. For each service the URL from the
// environment wins; otherwise (FLOCK_DEV_SERVICES=auto) a real local server is
// started: FerretDB for MongoDB, s3rver for S3, stripe-mock for Stripe. Redis is
// always external (default 127.0.0.1:6379). ffmpeg/ffprobe are located.
import { FlockError } from '../kernel/errors.ts';
import { startEmbeddedMongo } from './ferretdb.ts';
import { findMediaTools, type MediaTools } from './ffmpeg.ts';
import { checkRedis, redactUrl } from './redis.ts';
import { S3RVER_CREDENTIALS, startEmbeddedS3 } from './s3.ts';
import type { RunningService } from './service.ts';
import { startStripeMock } from './stripe-mock.ts';

export const STRIPE_MOCK_SECRET_KEY = 'sk_test_123';

export interface ResolvedServices {
  mongoUrl: string;
  redisUrl: string;
  s3: {
    endpoint: string | undefined;
    region: string;
    bucket: string;
    forcePathStyle: boolean;
    credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  };
  stripe: { apiBase: string | undefined; secretKey: string; embedded: boolean };
  media: MediaTools;
  /** service name -> one line: URL, embedded, version. */
  descriptions: Record<'mongo' | 'redis' | 's3' | 'stripe' | 'media', string>;
  /** Stops whatever this process started, in parallel. */
  stop(): Promise<void>;
}

/** What the dev-services module reads of the node's configuration (server/config.ts `Config` has it all). */
export interface ServicesConfig {
  devServices: 'auto' | 'off';
  dataDir: string;
  cacheDir: string;
  mongo: { url: string | undefined };
  redis: { url: string };
  s3: {
    endpoint: string | undefined;
    region: string;
    bucket: string;
    forcePathStyle: boolean;
    accessKeyId: string | undefined;
    secretAccessKey: string | undefined;
  };
  stripe: { apiBase: string | undefined; secretKey: string | undefined };
  media: Parameters<typeof findMediaTools>[0];
}

export interface ResolveOptions {
  /** Progress lines (e.g. "building FerretDB ..."). */
  log?: (message: string) => void;
}

export async function resolveServices(config: ServicesConfig, options: ResolveOptions = {}): Promise<ResolvedServices> {
  const embedded = config.devServices === 'auto';
  const started: RunningService[] = [];
  const track = <T extends RunningService>(p: Promise<T>) =>
    p.then((s) => {
      started.push(s);
      return s;
    });
  const onBuild = options.log;

  const results = await Promise.allSettled([
    config.mongo.url
      ? Promise.resolve(external(config.mongo.url))
      : embedded
        ? track(startEmbeddedMongo({ dataDir: config.dataDir, cacheDir: config.cacheDir, ...(onBuild && { onBuild }) }))
        : Promise.reject(new FlockError('CONFIG_INVALID', 'MONGO_URL is required when FLOCK_DEV_SERVICES=off')),
    checkRedis(config.redis.url),
    config.s3.endpoint || !embedded
      ? Promise.resolve(external(config.s3.endpoint ?? 'AWS S3'))
      : track(startEmbeddedS3({ dataDir: config.dataDir, bucket: config.s3.bucket })),
    config.stripe.apiBase || !embedded
      ? Promise.resolve(external(config.stripe.apiBase ?? 'https://api.stripe.com'))
      : track(startStripeMock({ cacheDir: config.cacheDir, ...(onBuild && { onBuild }) })),
    findMediaTools(config.media),
  ]);

  const stop = async () => {
    await Promise.allSettled(started.map((s) => s.stop()));
  };
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) {
    await stop();
    throw failure.reason;
  }
  const [mongo, redis, s3, stripe, media] = [valueOf(results[0]), valueOf(results[1]), valueOf(results[2]), valueOf(results[3]), valueOf(results[4])];

  const s3Embedded = !config.s3.endpoint && embedded;
  const stripeEmbedded = !config.stripe.apiBase && embedded;
  const stripeKey = config.stripe.secretKey ?? (stripeEmbedded || config.stripe.apiBase ? STRIPE_MOCK_SECRET_KEY : undefined);
  if (!stripeKey) {
    await stop();
    throw new FlockError('CONFIG_INVALID', 'STRIPE_SECRET_KEY is required for the real Stripe API');
  }
  return {
    mongoUrl: mongo.url,
    redisUrl: redis.url,
    s3: {
      endpoint: s3Embedded ? s3.url : config.s3.endpoint,
      region: config.s3.region,
      bucket: config.s3.bucket,
      forcePathStyle: s3Embedded || config.s3.forcePathStyle,
      credentials: s3Embedded
        ? { ...S3RVER_CREDENTIALS }
        : config.s3.accessKeyId && config.s3.secretAccessKey
          ? { accessKeyId: config.s3.accessKeyId, secretAccessKey: config.s3.secretAccessKey }
          : undefined,
    },
    stripe: { apiBase: stripeEmbedded ? stripe.url : config.stripe.apiBase, secretKey: stripeKey, embedded: stripeEmbedded },
    media,
    descriptions: {
      mongo: mongo.description,
      redis: redis.description,
      s3: s3.description,
      stripe: stripe.description,
      media: media.description,
    },
    stop,
  };
}

type ServiceWithUrl = RunningService & { url: string };

function external(url: string): ServiceWithUrl {
  return { url, description: `external ${redactUrl(url)}`, stop: async () => {} };
}

/**
 * Environment that points another process (a second node, a test worker) at
 * the services resolved here, so they share them instead of starting their own.
 */
export function servicesEnv(services: ResolvedServices): Record<string, string> {
  const env: Record<string, string> = {
    MONGO_URL: services.mongoUrl,
    REDIS_URL: services.redisUrl,
    STRIPE_SECRET_KEY: services.stripe.secretKey,
    FFMPEG_PATH: services.media.ffmpegPath,
    FFPROBE_PATH: services.media.ffprobePath,
    S3_BUCKET: services.s3.bucket,
    S3_REGION: services.s3.region,
    S3_FORCE_PATH_STYLE: String(services.s3.forcePathStyle),
  };
  if (services.s3.endpoint) env.S3_ENDPOINT = services.s3.endpoint;
  if (services.s3.credentials) {
    env.S3_ACCESS_KEY_ID = services.s3.credentials.accessKeyId;
    env.S3_SECRET_ACCESS_KEY = services.s3.credentials.secretAccessKey;
  }
  if (services.stripe.apiBase) env.STRIPE_API_BASE = services.stripe.apiBase;
  return env;
}

/** A settled result's value (a rejection was handled before this is called). */
function valueOf<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}
