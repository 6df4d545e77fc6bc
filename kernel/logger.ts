// Structured JSON logs (pino) for the node and its subsystems.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level: string; nodeId: string }): Logger {
  return pino({
    level: options.level,
    base: { node: options.nodeId, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
