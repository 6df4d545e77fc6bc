// What route handlers may use, handed to them in their context by the route
// server (server/http-engine.ts). Routes stay static declarations; the node supplies
// the implementations.
import type { OAuthService } from '../auth/oauth/oauth-service.ts';
import type { ReadinessReport } from '../kernel/readiness.ts';

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
}
