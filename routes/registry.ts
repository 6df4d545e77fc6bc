// Every HTTP route a node serves. Uploads and webhooks join this list.
import type { RouteDef } from './define.ts';
import { healthRoutes } from './health.ts';
import { mediaRoutes } from './media.ts';
import { storageWebhookRoutes } from './storage-webhook.ts';
import { tusRoutes } from './uploads.ts';
import { oauthRoutes } from './oauth.ts';

export const routes: readonly RouteDef[] = [...healthRoutes, ...oauthRoutes, ...tusRoutes, ...storageWebhookRoutes, ...mediaRoutes];
