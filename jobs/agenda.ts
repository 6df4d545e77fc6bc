// Glue between Flock's typed job registry and Agenda 6: MongoDB storage
// (@agendajs/mongo-backend) and Redis notifications, so a job saved on any node
// is picked up at once instead of at the next poll. Nothing else imports Agenda.
import { Agenda, backoffStrategies, type Job } from 'agenda';
import { MongoBackend } from '@agendajs/mongo-backend';
import { RedisNotificationChannel } from '@agendajs/redis-backend';
import type { Db } from 'mongodb';
import { FlockError } from '../server/errors.ts';
import type { Logger } from '../server/logger.ts';
import type { JobContext } from './context.ts';
import { jobPolicies } from './policy.ts';
import { jobHandlers } from './registry.ts';
import { jobSchemas, type JobData, type JobName } from './schemas.ts';

export const JOBS_COLLECTION = 'agendaJobs';

export interface JobRunnerOptions {
  db: Db;
  redisUrl: string;
  nodeId: string;
  processEvery: string;
  housekeepingEvery: string;
  retentionDays: number;
  log: Logger;
}

export interface JobRunner {
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
  const shutdown = new AbortController();
  const notificationChannel = new RedisNotificationChannel({ connectionString: options.redisUrl });
  const agenda = new Agenda({
    name: options.nodeId,
    backend: new MongoBackend({ mongo: options.db, collection: JOBS_COLLECTION }),
    notificationChannel,
    processEvery: options.processEvery,
    maxConcurrency: 20,
    defaultConcurrency: 1,
  });
  agenda.on('error', (err: Error) => log.error({ err }, 'agenda error'));

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
      progress: async (percent) => {
        await job.touch(Math.max(0, Math.min(100, percent)));
      },
      signal: shutdown.signal,
    };
    const handler = jobHandlers[name] as (data: JobData<K>, ctx: JobContext) => Promise<void>;
    await handler(parsed.data as JobData<K>, ctx);
  }

  const validate = <K extends JobName>(name: K, data: JobData<K>): JobData<K> => {
    const schema = jobSchemas[name];
    if (!schema) throw new FlockError('JOB_UNKNOWN', `No job named ${String(name)}`);
    const parsed = schema.safeParse(data);
    if (!parsed.success) throw new FlockError('JOB_DATA_INVALID', `${name}: ${parsed.error.message}`);
    return parsed.data as JobData<K>;
  };

  return {
    async start() {
      await agenda.start();
      await agenda.every(options.housekeepingEvery, 'housekeeping', {} as never);
      log.info({ processEvery: options.processEvery }, 'job runner started');
    },
    async stop(timeoutMs) {
      shutdown.abort();
      try {
        await agenda.drain(timeoutMs);
      } catch (err) {
        log.warn({ err }, 'job drain incomplete');
      }
      await agenda.stop(false);
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
      const onSuccess = (job: { attrs: { name: string } }) => listener(job.attrs.name as JobName, true);
      const onFail = (_err: unknown, job: { attrs: { name: string } }) => listener(job.attrs.name as JobName, false);
      agenda.on('success', onSuccess);
      agenda.on('fail', onFail);
      return () => {
        agenda.off('success', onSuccess);
        agenda.off('fail', onFail);
      };
    },
  };
}
