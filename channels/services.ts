// What channel handlers may use, handed to them in their context by the
// dispatcher. Channels stay static declarations (the typed client and the
// AsyncAPI document read them); the node supplies the implementations.
import type { ActorSystem } from '../actors/ref.ts';
import type { AccountService } from '../auth/accounts.ts';
import type { LoginService } from '../auth/login.ts';
import type { RegistrationService } from '../auth/registration.ts';
import type { RecentAuth } from '../auth/recent-auth.ts';
import type { TokenService } from '../auth/tokens.ts';
import type { OAuthService } from '../auth/oauth/oauth-service.ts';
import type { Presence } from '../presence/presence.ts';
import type { StreamDelivery } from '../streams/catalogue.ts';
import type { ServerEventName, ServerEventPayload } from './server-events.ts';
import type { PersonalStream } from '../streams/personal-stream.ts';
import type { MessagingStore } from '../messaging/store.ts';
import type { NotificationStore } from '../notifications/store.ts';
import type { HomeFeeds } from '../feeds/home.ts';
import type { SocialReads } from '../social/reads.ts';
import type { SocialStore } from '../social/store.ts';
import type { DirectUploads } from '../media/direct-upload.ts';
import type { MediaReads } from '../media/reads.ts';

export interface GatewayServices {
  actors: ActorSystem;
  streams: PersonalStream;
  presence: Presence;
  accounts: AccountService;
  login: LoginService;
  /** Registration with its per-IP budget. */
  registration: RegistrationService;
  /** Re-authentication before sensitive account changes. */
  recentAuth: RecentAuth;
  tokens: TokenService;
  /** Undefined when no OAuth provider is configured. */
  oauth: OAuthService | undefined;
  /** The social stores (edges, posts, profiles, trending, events). */
  social: SocialStore;
  /** The social read paths, with blocks and privacy applied. */
  reads: SocialReads;
  /** Appends an event to a user's personal stream and pushes it to their sockets on every node. */
  deliver: StreamDelivery['deliver'];
  /** Conversations and messages (read paths; writes go through ConversationActor). */
  messaging: MessagingStore;
  /** The notification inbox (read path; writes go through NotificationsActor). */
  notifications: NotificationStore;
  /** Home timelines (stored feeds, merge path, for you). */
  feeds: HomeFeeds;
  /** Adds an author to (or removes one from) the live home timeline of the user's watching sockets, on every node. */
  watchAuthor(userId: string, authorId: string, watch: boolean): void;
  /** Pushes an ephemeral event (never stored) to the users' sockets on every node. */
  toUsers<E extends ServerEventName>(userIds: readonly string[], event: E, payload: ServerEventPayload<E>): void;
  /** Media documents (read path; writes go through MediaActor) and direct-to-S3 uploads. */
  media: { reads: MediaReads; direct: DirectUploads };
}
