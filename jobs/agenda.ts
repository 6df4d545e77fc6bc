// Glue between Flock's typed job registry and Agenda 6: MongoDB storage
// (@agendajs/mongo-backend) and Redis notifications, so a job saved on any node
// is picked up at once instead of at the next poll (channel
// {REDIS_KEY_PREFIX}:jobs, so clusters sharing a Redis do not wake each
// other). Nothing else imports Agenda.
import { Agenda, backoffStrategies, type Job } from 'agenda';
import { MongoBackend } from '@agendajs/mongo-backend';
import { RedisNotificationChannel } from '@agendajs/redis-backend';
import type { Db } from 'mongodb';
import { FlockError } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import { createRedis } from '../kernel/redis.ts';
import { LoggingPushSender, type PushSender } from '../notifications/push.ts';
import type { JobContext, MediaJobServices } from './context.ts';
import { JOBS_COLLECTION } from './collections.ts';
import { jobPolicies } from './policy.ts';
import { jobHandlers } from './registry.ts';
import { jobSchemas, type JobData, type JobName } from './schemas.ts';

/** Names of recurring jobs before 0.2.0; their stored entries are removed at start. */
const RENAMED_JOBS = ['push-outbox'] as const;

export interface JobRunnerOptions {
  db: Db;
  redisUrl: string;
  /** REDIS_KEY_PREFIX: the notification channel is `${keyPrefix}:jobs`. */
  keyPrefix: string;
  nodeId: string;
  processEvery: string;
  housekeepingEvery: string;
  retentionDays: number;
  /** How often due push notifications are sent (pushOutbox). */
  pushEvery?: string;
  /** The mobile push sender; the default logs each push. */
  push?: PushSender;
  /** What the media jobs use; set once the node has built it (jobs start after). */
  media?: () => MediaJobServices;
  log: Logger;
}

export interface JobRunner {
  /** Starts processing jobs on this node. Scheduling works without it. */
  start(): Promise<void>;
  /** Stops taking jobs, waits up to `timeoutMs` for running ones, unlocks the rest. */
  stop(timeoutMs: number): Promise<void>;
  now<K extends JobName>(name: K, data: JobData<K>): Promise<string>;
  schedule<K extends JobName>(when: Date | string, name: K, data: JobData<K>): Promise<string>;
  /** Emits after each finished run of a job on this node (for tests and metrics). */
  onComplete(listener: (name: JobName, ok: boolean) => void): () => void;
}

export function createJobRunner(options: JobRunnerOptions): JobRunner {
  const { log } = options;
  const push = options.push ?? new LoggingPushSender(log.child({ subsystem: 'push' }));
  const shutdown = new AbortController();
  // Our own client, so connection errors are handled and logged once; the
  // channel duplicates it for subscribing.
  const redis = createRedis(options.redisUrl, `flock:${options.nodeId}:jobs`, log);
  const notificationChannel = new RedisNotificationChannel({ redis, channelName: `${options.keyPrefix}:jobs` });
  // Without a listener an 'error' (Redis restarting) would crash the node; the
  // channel reconnects by itself and polling covers the gap. Its clients report
  // every reconnection attempt: logged once per outage (thousands a minute otherwise).
  let channelDown = false;
  notificationChannel.on('error', (err: Error) => {
    if (!channelDown) log.warn({ err: err.message }, 'job notification channel error; polling covers the gap until Redis is back');
    channelDown = true;
  });
  redis.on('ready', () => {
    channelDown = false;
  });
  const agenda = new Agenda({
    name: options.nodeId,
    backend: new MongoBackend({ mongo: options.db, collection: JOBS_COLLECTION }),
    notificationChannel,
    processEvery: options.processEvery,
    maxConcurrency: 20,
    defaultConcurrency: 1,
    logging: true,
  });
  agenda.on('error', (err: Error) => log.error({ err }, 'agenda error'));

  // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- the keys of the table are the job names.
  for (const name of Object.keys(jobSchemas) as JobName[]) {
    const policy = jobPolicies[name];
    agenda.define(name, (job: Job<unknown>) => runJob(name, job), {
      concurrency: policy.concurrency,
      lockLifetime: policy.lockLifetimeMs,
      ...(policy.retries > 0 && {
        backoff: backoffStrategies.exponential({ delay: policy.retryDelayMs, maxRetries: policy.retries }),
      }),
    });
  }

  async function runJob<K extends JobName>(name: K, job: Job<unknown>): Promise<void> {
    const parsed = jobSchemas[name].safeParse(job.attrs.data ?? {});
    if (!parsed.success) {
      throw new FlockError('JOB_DATA_INVALID', `${name}: ${parsed.error.message}`);
    }
    const jobLog = log.child({ job: name, jobId: String(job.attrs._id) });
    const ctx: JobContext = {
      log: jobLog,
      db: options.db,
      settings: { retentionDays: options.retentionDays },
      push,
      get media(): MediaJobServices {
        if (!options.media) throw new FlockError('SERVICE_UNAVAILABLE', 'media processing is not set up on this node');
        return options.media();
      },
      progress: async (percent) => {
        await job.touch(Math.max(0, Math.min(100, percent)));
      },
      lastTry: (job.attrs.failCount ?? 0) >= jobPolicies[name].retries,
      signal: shutdown.signal,
    };
    // TypeScript cannot relate jobSchemas[K] to jobHandlers[K] for a generic K; the tables are keyed alike.
    const handler = jobHandlers[name] as (data: JobData<K>, ctx: JobContext) => Promise<void>;
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- parsed by jobSchemas[K], whose output JobData<K> is.
    await handler(parsed.data as JobData<K>, ctx);
  }

  const validate = <K extends JobName>(name: K, data: JobData<K>): JobData<K> => {
    const schema = jobSchemas[name];
    if (!schema) throw new FlockError('JOB_UNKNOWN', `No job named ${String(name)}`);
    const parsed = schema.safeParse(data);
    if (!parsed.success) throw new FlockError('JOB_DATA_INVALID', `${name}: ${parsed.error.message}`);
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- parsed by jobSchemas[K], whose output JobData<K> is.
    return parsed.data as JobData<K>;
  };

  return {
    async start() {
      await agenda.start();
      // Jobs renamed in 0.2.0 (push-outbox is pushOutbox): their recurring entries would wait forever for a handler.
      await agenda.cancel({ names: [...RENAMED_JOBS] });
      await agenda.every(options.housekeepingEvery, 'housekeeping');
      await agenda.every(options.pushEvery ?? '5 seconds', 'pushOutbox');
      if (options.media) await agenda.every('10 minutes', 'mediaExpireUploads');
      log.info({ processEvery: options.processEvery }, 'job runner started');
    },
    async stop(timeoutMs) {
      shutdown.abort();
      // Running jobs get timeoutMs to finish; any still running keep their lock
      // until it expires and then run again elsewhere (handlers are re-runnable).
      const result = await agenda.drain({ timeout: timeoutMs, closeConnection: false }).catch((err: unknown) => {
        log.warn({ err }, 'job drain failed');
        return undefined;
      });
      if (result?.timedOut) log.warn({ running: result.running }, 'jobs still running at shutdown');
      await notificationChannel.disconnect().catch(() => {});
      redis.disconnect();
    },
    async now(name, data) {
      const job = await agenda.now(name, validate(name, data));
      return String(job.attrs._id);
    },
    async schedule(when, name, data) {
      const job = await agenda.schedule(when, name, validate(name, data));
      return String(job.attrs._id);
    },
    onComplete(listener) {
      // Only runs on this node: events relayed from other nodes carry remote=true.
      const onSuccess = (job: { attrs: { name: string } }, remote?: boolean) => {
        if (!remote && isJobName(job.attrs.name)) listener(job.attrs.name, true);
      };
      const onFail = (_err: unknown, job: { attrs: { name: string } }, remote?: boolean) => {
        if (!remote && isJobName(job.attrs.name)) listener(job.attrs.name, false);
      };
      agenda.on('success', onSuccess);
      agenda.on('fail', onFail);
      return () => {
        agenda.off('success', onSuccess);
        agenda.off('fail', onFail);
      };
    },
  };
}

function isJobName(name: string): name is JobName {
  return Object.hasOwn(jobSchemas, name);
}
