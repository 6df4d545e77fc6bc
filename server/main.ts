// Entry point of a Flock node (`npm start`): configuration, dev services,
// the node, and signal handling with a bounded graceful shutdown.
import { resolveServices } from '../devservices/index.ts';
import { loadConfig, type Config } from './config.ts';
import { isFlockError, messageOf } from '../kernel/errors.ts';
import { createLogger } from '../kernel/logger.ts';
import { startNode, type FlockNode } from './node.ts';

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  process.stderr.write(`flock: ${messageOf(err)}\n`);
  process.exit(78); // EX_CONFIG
}

const log = createLogger({ level: config.logLevel, nodeId: config.nodeId });
let node: FlockNode | undefined;
let stopServices: (() => Promise<void>) | undefined;
let shuttingDown = false;

async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down');
  const timer = setTimeout(() => {
    log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs);
  timer.unref();
  try {
    await node?.close();
    await stopServices?.();
    log.info('shutdown complete');
    process.exit(0);
  } catch (err) {
    log.error({ err }, 'shutdown failed');
    process.exit(1);
  }
}

process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));

try {
  const services = await resolveServices(config, { log: (message) => log.info(message) });
  stopServices = () => services.stop();
  for (const [name, using] of Object.entries(services.descriptions)) log.info({ service: name, using }, 'service');
  node = await startNode(config, services, log);
  if (shuttingDown) await node.close();
} catch (err) {
  log.fatal({ err, code: isFlockError(err) ? err.code : undefined }, 'start-up failed');
  await stopServices?.();
  process.exit(1);
}
