// Probes and documents: liveness, readiness with each backing service's
// status, Prometheus metrics, and the AsyncAPI document of the socket API.
// None is rate limited: load balancers and Prometheus poll them, and
// /healthz must answer while Redis is away.
import { FlockError } from '../kernel/errors.ts';
import { defineRoute } from './define.ts';
import type { RouteServices } from './services.ts';

function opsAllowed(authorization: string, services: RouteServices): boolean {
  return services.opsAccess?.(authorization) ?? true;
}

const none = { kind: 'none' } as const;

export const healthRoutes = [
  defineRoute({
    method: 'GET',
    path: '/healthz',
    summary: '200 while the process is up.',
    auth: none,
    body: none,
    handler: async (_req, { services }) => ({ status: 200, json: { status: 'ok', node: services.nodeId } }),
  }),
  defineRoute({
    method: 'GET',
    path: '/readyz',
    summary:
      "200 when every backing service answers and the node is neither starting nor draining; 503 otherwise, with each service's status. What each service is and why it failed only for `Authorization: Bearer <OPS_TOKEN>` when OPS_TOKEN is set.",
    auth: none,
    body: none,
    handler: async (req, { services }) => {
      const report = await services.readiness.report();
      const status = report.ready ? 200 : 503;
      if (opsAllowed(req.header('authorization'), services)) return { status, json: { node: services.nodeId, ...report } };
      // Others learn what a load balancer needs: which services answer, not where they are or how they failed.
      const answering = Object.fromEntries(Object.entries(report.services).map(([name, s]) => [name, { ok: s.ok }]));
      return { status, json: { node: services.nodeId, ready: report.ready, lifecycle: report.lifecycle, services: answering } };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/metrics',
    summary: 'Prometheus metrics of this node; with OPS_TOKEN set, only for `Authorization: Bearer <OPS_TOKEN>` (401 AUTH_REQUIRED otherwise).',
    auth: none,
    body: none,
    handler: async (req, { services }) => {
      if (!opsAllowed(req.header('authorization'), services)) throw new FlockError('AUTH_REQUIRED', 'metrics need Authorization: Bearer <OPS_TOKEN>');
      const { contentType, body } = await services.metrics();
      return { status: 200, text: body, contentType };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/asyncapi.json',
    summary: 'The AsyncAPI 3 document of the socket API.',
    auth: none,
    body: none,
    handler: async (_req, { services }) => ({ status: 200, json: services.asyncApi }),
  }),
];
