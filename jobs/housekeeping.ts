// Housekeeping: deletes finished one-off jobs older than the retention period,
// so the jobs collection does not grow without bound. Safe to re-run.
import type { JobHandler } from './context.ts';
import { JOBS_COLLECTION } from './agenda.ts';

export const housekeeping: JobHandler<'housekeeping'> = async (_data, ctx) => {
  const cutoff = new Date(Date.now() - ctx.settings.retentionDays * 24 * 3600_000);
  const result = await ctx.db.collection(JOBS_COLLECTION).deleteMany({
    nextRunAt: null,
    lastFinishedAt: { $lt: cutoff },
    lockedAt: null,
  });
  ctx.log.info({ deletedJobs: result.deletedCount, cutoff }, 'housekeeping done');
};
