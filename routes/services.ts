// What route handlers may use, handed to them in their context by the route
// server (server/http-engine.ts). Routes stay static declarations; the node supplies
// the implementations.
import type { OAuthService } from '../auth/oauth/oauth-service.ts';
import type { ReadinessReport } from '../kernel/readiness.ts';
import type { DirectUploads } from '../media/direct-upload.ts';
import type { PlaybackFiles } from '../media/playback-files.ts';
import type { UploadStore } from '../media/upload-store.ts';

export interface RouteServices {
  nodeId: string;
  /** Backing services and lifecycle, for /readyz. */
  readiness: { report(): Promise<ReadinessReport> };
  /** The Prometheus exposition of this node's metrics. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** The AsyncAPI document of the socket API. */
  asyncApi: unknown;
  /** Undefined when no OAuth provider is configured. */
  oauth: OAuthService | undefined;
  /**
   * Whether a request with this Authorization header may read operator data
   * (/metrics, the detail of /readyz): OPS_TOKEN (server/ops-access.ts).
   * Unset: everyone may.
   */
  opsAccess?: (authorization: string) => boolean;
  /**
   * Uploads: the tus routes (routes/uploads.ts) and the storage webhook
   * (routes/storage-webhook.ts). Unset where the node serves no uploads;
   * those routes then answer HTTP_NOT_FOUND.
   */
  media?: {
    /** Uploads' state in `media_uploads` and their bytes in S3; holds the UploadLifecycle it reports to (uploads.lifecycle). */
    uploads: UploadStore;
    /** Direct-to-S3 uploads over the same store, which the storage webhook finishes. */
    direct: DirectUploads;
    /** STORAGE_WEBHOOK_TOKEN, the bearer token bucket notifications carry; unset: the webhook refuses every call (AUTH_REQUIRED). */
    storageWebhookToken: string | undefined;
  };
  /** Files of processed media behind signed playback URLs (routes/media.ts). */
  playback?: PlaybackFiles;
}
