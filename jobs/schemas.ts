// One zod schema per background job: job data is validated when it is
// scheduled and again when it runs (it crosses the database, a trust boundary).
import { z } from 'zod';
import { mediaIdInput } from '../kernel/ids.ts';

export const jobSchemas = {
  /** Periodic clean-up; takes no data. */
  housekeeping: z.object({}).strict(),
  /** Sends due push outbox entries; takes no data. */
  pushOutbox: z.object({}).strict(),
  /** Processes one uploaded media item (probe, transcode or variants, upload outputs); idempotent. */
  mediaProcess: z.object({ mediaId: mediaIdInput }).strict(),
  /** Gives up unfinished uploads past their expiry: their parts are deleted and their media removed; takes no data. */
  mediaExpireUploads: z.object({}).strict(),
  /** Removes a media item's objects from S3: these keys and everything under these prefixes. */
  mediaPurge: z.object({ mediaId: mediaIdInput, keys: z.array(z.string().max(512)).max(100), prefixes: z.array(z.string().max(512)).max(100) }).strict(),
} as const;

export type JobName = keyof typeof jobSchemas;
export type JobData<K extends JobName> = z.output<(typeof jobSchemas)[K]>;
