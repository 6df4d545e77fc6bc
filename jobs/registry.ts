// Every job's handler. The mapped type makes a job without a handler a
// compile error.
import type { JobHandler } from './context.ts';
import { housekeeping } from './housekeeping.ts';
import { mediaExpireUploads, mediaProcess, mediaPurge } from './media.ts';
import { pushOutbox } from './push-outbox.ts';
import type { JobName } from './schemas.ts';

export const jobHandlers: { readonly [K in JobName]: JobHandler<K> } = {
  housekeeping,
  pushOutbox,
  mediaProcess,
  mediaPurge,
  mediaExpireUploads,
};
