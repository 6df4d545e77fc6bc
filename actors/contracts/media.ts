// MediaActor's interface: one per media item (key = media id). It owns the
// media document (models/media.ts) and its state machine; the upload
// transports and the processing job only send it messages, so progress
// reaches the owner's personal stream in order and one processing run wins.
import { z } from 'zod';
import { userIdInput } from '../../kernel/ids.ts';
import { CONTAINERS, MEDIA_KINDS, MEDIA_STATES, mediaOutputSchema } from '../../models/media.ts';
import { defineActorInterface } from '../define.ts';

const attemptId = z.string().regex(/^[A-Za-z0-9_-]{8,40}$/);
const nothing = z.object({});

export const MediaActor = defineActorInterface({
  type: 'media',
  messages: {
    /** A new upload (state uploading). Idempotent for the same owner; another owner's id is MEDIA_NOT_FOUND. */
    create: {
      input: z.object({
        owner: userIdInput,
        declaredBytes: z.number().int().nonnegative(),
        kind: z.enum(MEDIA_KINDS).nullable(),
        filename: z.string().max(255).nullable(),
        sourceKey: z.string().max(512),
      }),
      output: z.object({ created: z.boolean() }),
    },
    /** The content's first bytes decided the kind and container. */
    sniffed: { input: z.object({ kind: z.enum(MEDIA_KINDS), container: z.enum(CONTAINERS) }), output: nothing },
    /** The whole original is stored: processing is scheduled, once however often this comes. */
    uploaded: { input: z.object({ bytes: z.number().int().nonnegative() }), output: z.object({ changed: z.boolean(), owner: z.string() }) },
    /**
     * A processing run asks to be the one: it is when nothing runs or the
     * running attempt's lease lapsed (or it is that attempt, renewing). `go`
     * false: ready, failed, deleted, or another attempt holds it.
     */
    claim: {
      input: z.object({ attemptId, leaseMs: z.number().int().min(1_000).max(3_600_000) }),
      output: z.object({
        go: z.boolean(),
        state: z.enum(MEDIA_STATES),
        owner: z.string(),
        kind: z.enum(MEDIA_KINDS).nullable(),
        container: z.enum(CONTAINERS).nullable(),
        sourceKey: z.string(),
        outputPrefix: z.string(),
      }),
    },
    /** The running attempt's progress; ignored from any other attempt, and when it does not grow. */
    progress: { input: z.object({ attemptId, percent: z.number().int().min(0).max(100) }), output: z.object({ current: z.boolean() }) },
    /** The attempt finished: its outputs become the media's, if it still holds the claim. */
    finish: { input: z.object({ attemptId, output: mediaOutputSchema }), output: z.object({ won: z.boolean() }) },
    /** The attempt failed for a passing reason: it lets go of its claim (state uploaded again) so the next run starts at once. */
    release: { input: z.object({ attemptId }), output: z.object({ changed: z.boolean() }) },
    /** Processing refused the file or failed for good. */
    fail: {
      input: z.object({ attemptId: attemptId.nullable(), code: z.string().max(64), message: z.string().max(500) }),
      output: z.object({ changed: z.boolean(), owner: z.string() }),
    },
    /** Deleted by its owner (userId), or given up by its upload (userId null: only while uploading or failed): its objects are removed by a job. */
    remove: { input: z.object({ userId: userIdInput.nullable() }), output: z.object({ changed: z.boolean(), owner: z.string() }) },
  },
});
