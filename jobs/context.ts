// What a job handler gets besides its data. Only jobs/agenda.ts knows Agenda.
import type { Db } from 'mongodb';
import type { PushSender } from '../notifications/push.ts';
import type { Logger } from '../kernel/logger.ts';
import type { JobData, JobName } from './schemas.ts';

export interface JobContext {
  log: Logger;
  db: Db;
  settings: { retentionDays: number };
  /** Where pushOutbox sends mobile pushes. */
  push: PushSender;
  /** Reports progress (0-100) to whoever watches the job. */
  progress(percent: number): Promise<void>;
  /** Aborted when the node shuts down; long handlers should stop early. */
  signal: AbortSignal;
}

export type JobHandler<K extends JobName> = (data: JobData<K>, ctx: JobContext) => Promise<void>;
