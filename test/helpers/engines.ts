// HTTP engines for tests that serve routes without a whole node: the one a
// node would pick on this Node (SOCKET_ENGINE=auto), or a named one.
import type { EngineName, HttpEngine } from '../../server/http-engine.ts';
import { createNodeHttpEngine } from '../../server/node-http.ts';
import { createUwsEngine, uwsUnavailable } from '../../server/uws.ts';

export { uwsUnavailable };

export async function openTestEngine(name: EngineName | 'auto' = 'auto'): Promise<HttpEngine> {
  const reason = uwsUnavailable();
  if (name === 'ws' || (name === 'auto' && reason !== undefined)) return createNodeHttpEngine();
  if (reason !== undefined) throw new Error(`the uws engine cannot run here: ${reason}`);
  return createUwsEngine();
}
