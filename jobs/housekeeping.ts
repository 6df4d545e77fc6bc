// Housekeeping: deletes finished one-off jobs and job log entries older than
// the retention period, sent or failed push outbox entries older than it, and
// expired refresh tokens and session revocations (FerretDB has no TTL
// indexes), so no collection grows without bound. Safe to re-run.
import type { JobHandler } from './context.ts';
import { JOB_LOG_COLLECTION, JOBS_COLLECTION } from './collections.ts';
import { PUSH_OUTBOX_COLLECTION } from '../models/push-outbox.ts';
import { REFRESH_TOKEN_COLLECTION } from '../models/refresh-token.ts';
import { REVOKED_SESSION_COLLECTION } from '../models/revoked-session.ts';

export const housekeeping: JobHandler<'housekeeping'> = async (_data, ctx) => {
  const cutoff = new Date(Date.now() - ctx.settings.retentionDays * 24 * 3600_000);
  const result = await ctx.db.collection(JOBS_COLLECTION).deleteMany({
    nextRunAt: null,
    lastFinishedAt: { $lt: cutoff },
    lockedAt: null,
  });
  const logs = await ctx.db.collection(JOB_LOG_COLLECTION).deleteMany({ timestamp: { $lt: cutoff } });
  const tokens = await ctx.db.collection(REFRESH_TOKEN_COLLECTION).deleteMany({ expiresAt: { $lte: new Date() } });
  const revocations = await ctx.db.collection(REVOKED_SESSION_COLLECTION).deleteMany({ expiresAt: { $lte: new Date() } });
  const pushes = await ctx.db.collection(PUSH_OUTBOX_COLLECTION).deleteMany({ status: { $in: ['sent', 'failed'] }, createdAt: { $lt: cutoff } });
  ctx.log.info(
    {
      deletedJobs: result.deletedCount,
      deletedJobLogs: logs.deletedCount,
      deletedRefreshTokens: tokens.deletedCount,
      deletedRevocations: revocations.deletedCount,
      deletedPushes: pushes.deletedCount,
      cutoff,
    },
    'housekeeping done',
  );
};
