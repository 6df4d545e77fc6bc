// What actor handlers may use besides their own state: the stores of the
// domain documents they own (ctx.services). The node supplies them when it
// starts the runtime; runtimes started without them (tests of the runtime
// itself) refuse any handler that reaches for them (actors/context.ts).
import type { FeedStore } from '../feeds/store.ts';
import type { MessagingStore } from '../messaging/store.ts';
import type { MediaFields } from '../models/media.ts';
import type { NotificationStore } from '../notifications/store.ts';
import type { StreamDelivery } from '../streams/catalogue.ts';
import type { SenderQuota } from '../streams/sender-quota.ts';
import type { SocialStore } from '../social/store.ts';

export interface ActorServices {
  social: SocialStore;
  messaging: MessagingStore;
  notifications: NotificationStore;
  /** The stored home feeds (written only by the feed shards) and how many shards own them. */
  feeds: FeedStore;
  feedShards: number;
  /** Whether the user has a socket open on any node (presence). */
  isOnline(userId: string): Promise<boolean>;
  /** Appends an event to a user's personal stream and pushes it to their sockets on every node. */
  deliver: StreamDelivery['deliver'];
  /** What a user's requests may write into other users' personal streams: charged in the turn, before anything is stored. */
  streamQuota: SenderQuota;
  /** What MediaActor's effects do outside its document. */
  media: MediaEffects;
}

/** The effects of media changes (server/media.ts implements them); each is idempotent. */
export interface MediaEffects {
  /** Tells the owner about the change just saved, on their personal stream. */
  notify(mediaId: string, doc: MediaFields, event: 'uploaded' | 'processing' | 'ready' | 'failed'): Promise<void>;
  /** Schedules the processing job (a second one finds the media claimed or done). */
  process(mediaId: string): Promise<void>;
  /** Deletes these objects and everything under these prefixes from S3 (now or by a job). */
  purge(mediaId: string, keys: readonly string[], prefixes: readonly string[]): Promise<void>;
}
