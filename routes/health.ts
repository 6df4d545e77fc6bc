// Probes and documents: liveness, readiness with each backing service's
// status, Prometheus metrics, and the AsyncAPI document of the socket API.
// None is rate limited: load balancers and Prometheus poll them, and
// /healthz must answer while Redis is away.
import { defineRoute } from './define.ts';

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
    summary: "200 when every backing service answers and the node is neither starting nor draining; 503 otherwise, with each service's status.",
    auth: none,
    body: none,
    handler: async (_req, { services }) => {
      const report = await services.readiness.report();
      return { status: report.ready ? 200 : 503, json: { node: services.nodeId, ...report } };
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/metrics',
    summary: 'Prometheus metrics of this node.',
    auth: none,
    body: none,
    handler: async (_req, { services }) => {
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
