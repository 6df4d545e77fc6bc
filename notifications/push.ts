// Mobile push: the sender the `pushOutbox` job hands each outbox entry to.
// Pluggable: a deployment supplies its own (APNs, FCM...) to the job runner;
// the default only logs. A sender must be safe to call twice with one entry
// (the job may retry an entry whose send succeeded but was not recorded):
// pass `id` to the provider as its collapse or deduplication id.
import type { Logger } from '../kernel/logger.ts';

export interface PushMessage {
  /** The outbox entry's id: stable across retries. */
  id: string;
  userId: string;
  /** The notification view (notifications/views.ts). */
  notification: unknown;
}

export interface PushSender {
  readonly name: string;
  /** Throws to have the entry retried later. */
  send(message: PushMessage): Promise<void>;
}

export class LoggingPushSender implements PushSender {
  readonly name = 'log';

  constructor(private readonly log: Logger) {}

  async send(message: PushMessage): Promise<void> {
    this.log.info({ push: message.id, userId: message.userId }, 'push notification (logging sender)');
  }
}
