// pushOutbox: hands pending push outbox entries (models/push-outbox.ts) to
// the push sender. Each entry is claimed with one atomic update (pending and
// due, or sending with an expired lock), so two runners never send it at once;
// a failed send is retried with exponential backoff up to PUSH_MAX_ATTEMPTS,
// then marked failed. Sent and failed entries are removed by housekeeping
// after the retention period. Safe to re-run.
import type { Collection } from 'mongodb';
import { PUSH_OUTBOX_COLLECTION, type PushOutboxDoc } from '../models/push-outbox.ts';
import type { JobHandler } from './context.ts';
import { messageOf } from '../kernel/errors.ts';

export const PUSH_MAX_ATTEMPTS = 5;
const PUSH_RETRY_BASE_MS = 5_000;
/** A send that takes longer than this may be taken over by another runner. */
const PUSH_LOCK_MS = 60_000;
/** Entries sent per run (the job runs every few seconds). */
const PUSH_BATCH = 200;

export const pushOutbox: JobHandler<'pushOutbox'> = async (_data, ctx) => {
  const outbox = ctx.db.collection<PushOutboxDoc>(PUSH_OUTBOX_COLLECTION);
  let sent = 0;
  let failed = 0;
  for (let i = 0; i < PUSH_BATCH && !ctx.signal.aborted; i++) {
    const entry = await claim(outbox);
    if (!entry) break;
    try {
      const notification: unknown = JSON.parse(entry.payload);
      await ctx.push.send({ id: entry._id, userId: entry.userId, notification });
      await outbox.updateOne({ _id: entry._id, status: 'sending' }, { $set: { status: 'sent', sentAt: new Date(), lockedUntil: null, lastError: null } });
      sent++;
    } catch (err) {
      const attempts = entry.attempts;
      const last = attempts >= PUSH_MAX_ATTEMPTS;
      await outbox.updateOne(
        { _id: entry._id, status: 'sending' },
        {
          $set: {
            status: last ? 'failed' : 'pending',
            lockedUntil: null,
            lastError: messageOf(err).slice(0, 500),
            nextAttemptAt: new Date(Date.now() + PUSH_RETRY_BASE_MS * 2 ** (attempts - 1)),
          },
        },
      );
      failed++;
    }
  }
  if (sent + failed > 0) ctx.log.info({ sent, failed, sender: ctx.push.name }, 'push outbox run');
};

/** Takes the next due entry (or one whose sender died) and marks it sending. */
async function claim(outbox: Collection<PushOutboxDoc>): Promise<PushOutboxDoc | null> {
  const now = new Date();
  return outbox.findOneAndUpdate(
    {
      $or: [
        { status: 'pending', nextAttemptAt: { $lte: now } },
        { status: 'sending', lockedUntil: { $lte: now } },
      ],
    },
    { $set: { status: 'sending', lockedUntil: new Date(now.getTime() + PUSH_LOCK_MS) }, $inc: { attempts: 1 } },
    { sort: { nextAttemptAt: 1 }, returnDocument: 'after' },
  );
}
