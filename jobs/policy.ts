// Retry, timeout and concurrency policy for every job, as data in one table.
import type { JobName } from './schemas.ts';

export interface JobPolicy {
  /** Runs of this job at once on one node. */
  concurrency: number;
  /** A lock older than this is considered abandoned and the job runs again elsewhere. */
  lockLifetimeMs: number;
  /** Retries after the first failure (0: none). */
  retries: number;
  /** First retry delay; doubles on each further retry. */
  retryDelayMs: number;
}

export const jobPolicies: { readonly [K in JobName]: JobPolicy } = {
  housekeeping: { concurrency: 1, lockLifetimeMs: 5 * 60_000, retries: 2, retryDelayMs: 30_000 },
  // Entries carry their own retries; a failed run simply runs again at the next interval.
  pushOutbox: { concurrency: 1, lockLifetimeMs: 2 * 60_000, retries: 0, retryDelayMs: 0 },
  // Transcoding takes a core: two at once per node. The run touches its lock every few seconds, so a
  // node that dies mid-run hands the job to another within the lock lifetime.
  mediaProcess: { concurrency: 2, lockLifetimeMs: 30_000, retries: 4, retryDelayMs: 5_000 },
  mediaExpireUploads: { concurrency: 1, lockLifetimeMs: 5 * 60_000, retries: 0, retryDelayMs: 0 },
  mediaPurge: { concurrency: 2, lockLifetimeMs: 60_000, retries: 5, retryDelayMs: 10_000 },
};
