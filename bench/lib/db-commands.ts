// Counts the MongoDB commands a client sends, by command, collection and
// filter shape (`update posts {_id,epoch:$lte} upsert`), with the time each
// took as the driver saw it (waiting in the database included). The social
// bench tallies its own floor client and, through bench/lib/db-probe.ts,
// the Flock nodes' clients; the client must be made with monitorCommands: true.
import type { CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent, MongoClient } from 'mongodb';

/** Per shape: commands sent and their total time in ms. */
export type DbStats = Record<string, { n: number; ms: number }>;

// Commands of the driver's own housekeeping, not of the work measured.
const IGNORED = new Set(['hello', 'isMaster', 'ismaster', 'ping', 'buildInfo', 'endSessions', 'getMore', 'killCursors']);

export class CommandTally {
  private stats = new Map<string, { n: number; ms: number }>();
  private readonly inFlight = new Map<number, string>();

  attach(client: MongoClient): void {
    client.on('commandStarted', (e: CommandStartedEvent) => {
      if (!IGNORED.has(e.commandName)) this.inFlight.set(e.requestId, shapeOf(e.commandName, e.command));
    });
    const done = (e: CommandSucceededEvent | CommandFailedEvent) => {
      const key = this.inFlight.get(e.requestId);
      if (key === undefined) return;
      this.inFlight.delete(e.requestId);
      const s = this.stats.get(key) ?? { n: 0, ms: 0 };
      s.n += 1;
      s.ms += e.duration;
      this.stats.set(key, s);
    };
    client.on('commandSucceeded', done);
    client.on('commandFailed', done);
  }

  /** What was counted since the last reset. */
  take(reset: boolean): DbStats {
    const out = Object.fromEntries(this.stats);
    if (reset) this.stats = new Map();
    return out;
  }
}

export function mergeStats(all: DbStats[]): DbStats {
  const out: DbStats = {};
  for (const stats of all) {
    for (const [key, { n, ms }] of Object.entries(stats)) {
      const s = (out[key] ??= { n: 0, ms: 0 });
      s.n += n;
      s.ms += ms;
    }
  }
  return out;
}

/** A run's MongoDB commands per operation (request, message, post). */
export interface DbPerOp {
  commands: number;
  /** Time the commands took as the driver saw it (waiting for the database included). */
  ms: number;
  byShape: { shape: string; n: number; ms: number }[];
}

/** `stats` divided by `ops`, the costliest `shown` shapes first, rounded to `digits`. */
export function dbPerOp(stats: DbStats, ops: number, shown: number, digits = 2): DbPerOp {
  const f = 10 ** digits;
  const per = (x: number) => Math.round((x / Math.max(1, ops)) * f) / f;
  const shapes = Object.entries(stats).sort(([, a], [, b]) => b.ms - a.ms);
  return {
    commands: per(shapes.reduce((sum, [, v]) => sum + v.n, 0)),
    ms: per(shapes.reduce((sum, [, v]) => sum + v.ms, 0)),
    byShape: shapes.slice(0, shown).map(([shape, v]) => ({ shape, n: per(v.n), ms: per(v.ms) })),
  };
}

/** e.g. `update posts {_id,epoch:$lte} upsert`, `find posts {parentId,deleted} sort`. */
function shapeOf(name: string, command: Record<string, unknown>): string {
  const updates = command.updates as { q?: unknown; upsert?: boolean }[] | undefined;
  const deletes = command.deletes as { q?: unknown }[] | undefined;
  const filter = command.filter ?? command.query ?? updates?.[0]?.q ?? deletes?.[0]?.q;
  const batch = (updates ?? deletes ?? (command.documents as unknown[] | undefined))?.length ?? 1;
  const parts = [name, String(command[name])];
  if (filter !== undefined) parts.push(fields(filter));
  if (command.sort) parts.push('sort');
  if (updates?.[0]?.upsert || command.upsert) parts.push('upsert');
  if (batch > 1) parts.push(`x${batch}`);
  return parts.join(' ');
}

function fields(filter: unknown): string {
  if (filter === null || typeof filter !== 'object') return '{}';
  const out = Object.entries(filter as Record<string, unknown>).map(([key, value]) => {
    const ops =
      value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date)
        ? Object.keys(value).filter((k) => k.startsWith('$'))
        : [];
    return ops.length > 0 ? `${key}:${ops.join('|')}` : key;
  });
  return `{${out.join(',')}}`;
}
