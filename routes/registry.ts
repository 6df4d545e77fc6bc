// Every HTTP route a node serves. Uploads and webhooks join this list.
import type { RouteDef } from './define.ts';
import { healthRoutes } from './health.ts';
import { oauthRoutes } from './oauth.ts';

export const routes: readonly RouteDef[] = [...healthRoutes, ...oauthRoutes];
