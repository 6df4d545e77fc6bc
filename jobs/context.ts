// What a job handler gets besides its data. Only jobs/agenda.ts knows Agenda.
import type { Db } from 'mongodb';
import type { ActorSystem } from '../actors/ref.ts';
import type { Bucket } from '../media/objects.ts';
import type { MediaLimits } from '../models/media.ts';
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
  /** What the media jobs use; MEDIA_UNAVAILABLE-free only on nodes started with media (every node). */
  media: MediaJobServices;
  /** This run is the job's last: no retry follows if it fails. */
  lastTry: boolean;
  /** Aborted when the node shuts down; long handlers should stop early. */
  signal: AbortSignal;
}

export type JobHandler<K extends JobName> = (data: JobData<K>, ctx: JobContext) => Promise<void>;

export interface MediaJobServices {
  actors: ActorSystem;
  bucket: Bucket;
  ffmpegPath: string;
  ffprobePath: string;
  limits: MediaLimits;
  /** Where runs keep their local files (one directory per run, removed after it). */
  workDir: string;
  /** How long a processing run's claim lasts without renewal (renewed every third of it). */
  attemptLeaseMs: number;
  /** Gives up unfinished uploads past their expiry (media/upload-store.ts). */
  expireUploads(now: Date): Promise<{ expired: number }>;
}
