// One zod schema per background job: job data is validated when it is
// scheduled and again when it runs (it crosses the database, a trust boundary).
import { z } from 'zod';

export const jobSchemas = {
  /** Periodic clean-up; takes no data. */
  housekeeping: z.object({}).strict(),
  /** Sends due push outbox entries; takes no data. */
  pushOutbox: z.object({}).strict(),
} as const;

export type JobName = keyof typeof jobSchemas;
export type JobData<K extends JobName> = z.output<(typeof jobSchemas)[K]>;
