// Which engine carries this node's sockets and HTTP routes (SOCKET_ENGINE):
// uWebSockets.js where its native binary loads, otherwise Node's http server
// with Socket.IO's default ws engine, announced by one warning naming the
// reason and by the gauge flock_socket_engine. Forcing uws where it cannot
// load stops the node at start-up instead of falling back.
import { Gauge, type Registry } from 'prom-client';
import { FlockError } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import type { Config } from './config.ts';
import type { EngineName, HttpEngine } from './http-engine.ts';
import { createNodeHttpEngine } from './node-http.ts';
import { createUwsEngine, uwsUnavailable } from './uws.ts';

export async function openEngine(choice: Config['socketEngine'], log: Logger): Promise<HttpEngine> {
  if (choice === 'ws') {
    log.info({ engine: 'ws', requested: choice }, 'socket engine: ws on node:http (SOCKET_ENGINE=ws)');
    return createNodeHttpEngine();
  }
  const reason = uwsUnavailable();
  if (reason === undefined) {
    log.info({ engine: 'uws', requested: choice }, 'socket engine: uWebSockets.js');
    return createUwsEngine();
  }
  if (choice === 'uws') throw new FlockError('SERVER_ENGINE_UNAVAILABLE', `SOCKET_ENGINE=uws, but ${reason}`, { details: { reason } });
  log.warn({ engine: 'ws', requested: choice, reason }, `socket engine: falling back to ws on node:http because ${reason}`);
  return createNodeHttpEngine();
}

/** flock_socket_engine{engine}: 1 for the engine this node runs, 0 for the other. */
export function registerEngineMetric(registry: Registry, engine: EngineName): void {
  const gauge = new Gauge({
    name: 'flock_socket_engine',
    help: 'Engine carrying Socket.IO and the HTTP routes on this node (1: in use); ws means uWebSockets.js did not load',
    labelNames: ['engine'],
    registers: [registry],
  });
  for (const name of ['uws', 'ws'] as const) gauge.set({ engine: name }, name === engine ? 1 : 0);
}
