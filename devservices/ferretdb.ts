// MongoDB for nodes without MONGO_URL: FerretDB v1 embedded (SQLite backend),
// built from the Go module proxy through FerretDB's embeddable package, or,
// where Go is missing, mongodb-memory-server when it can provide a mongod.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlockError, isFlockError } from '../kernel/errors.ts';
import { startProcess } from './child-process.ts';
import { ensureGoBinary } from './go-binary.ts';
import type { RunningService } from './service.ts';

export const FERRETDB_VERSION = 'v1.24.2';
const sourceDir = fileURLToPath(new URL('./ferretdb/', import.meta.url));

/**
 * FerretDB v1's SQLite backend creates each collection's `_id` index on the
 * expression `_ferretdb_sjson->"_id"` but looks documents up by
 * `_ferretdb_sjson->'$._id'`. Both select the same value, yet SQLite only uses
 * an expression index for the identical expression, so every find, update and
 * delete by `_id` scanned the whole table (a hit with `limit 1` stopped at its
 * row; a miss always read everything). Looking up by the index's expression
 * makes them index searches; `test/ferretdb-pushdown.test.ts` checks the plan.
 */
const SQLITE_ID_INDEX_PATCH = {
  module: 'github.com/FerretDB/FerretDB',
  file: 'internal/backends/sqlite/metadata/metadata.go',
  find: `IDColumn = DefaultColumn + "->'$._id'"`,
  replace: `IDColumn = DefaultColumn + "->'_id'"`,
} as const;

export async function startEmbeddedMongo(options: {
  dataDir: string;
  cacheDir: string;
  onBuild?: (message: string) => void;
  /** A fixed loopback port (a test that restarts the server keeps its URL); default: any free one. */
  port?: number;
}): Promise<RunningService & { url: string }> {
  let binary: string;
  try {
    binary = await ensureGoBinary({ kind: 'source', name: 'flock-ferretdb', dir: sourceDir, patches: [SQLITE_ID_INDEX_PATCH] }, options);
  } catch (err) {
    if (isFlockError(err) && err.code === 'DEVSERVICES_UNAVAILABLE') return startMemoryServer(err);
    throw err;
  }
  const dir = path.join(options.dataDir, 'ferretdb');
  const proc = await startProcess({
    name: 'ferretdb',
    command: binary,
    args: ['-sqlite-dir', dir, '-listen', `127.0.0.1:${options.port ?? 0}`, '-exit-on-stdin-close'],
    ready: /^ready (mongodb:\/\/\S+)$/m,
  });
  return {
    url: proc.match[1]!,
    description: `embedded FerretDB ${FERRETDB_VERSION} (SQLite in ${dir})`,
    stop: () => proc.stop(),
  };
}

/** Fallback for machines with internet and no Go: downloads a real mongod on first use. */
async function startMemoryServer(goMissing: FlockError): Promise<RunningService & { url: string }> {
  let MongoMemoryServer: Awaited<ReturnType<typeof loadMemoryServer>>;
  try {
    MongoMemoryServer = await loadMemoryServer();
  } catch {
    throw new FlockError(
      'DEVSERVICES_UNAVAILABLE',
      `${goMissing.message}. Set MONGO_URL, install Go (FerretDB is built from the Go module proxy), ` +
        'or install mongodb-memory-server-core on a machine with internet access.',
    );
  }
  try {
    const server = await MongoMemoryServer.create();
    return {
      url: server.getUri(),
      description: 'mongodb-memory-server (downloaded mongod)',
      stop: async () => {
        await server.stop();
      },
    };
  } catch (err) {
    throw new FlockError(
      'DEVSERVICES_UNAVAILABLE',
      `${goMissing.message}, and mongodb-memory-server could not provide a mongod (${String(err)}). ` + 'Set MONGO_URL or install Go.',
      { cause: err },
    );
  }
}

async function loadMemoryServer() {
  return (await import('mongodb-memory-server-core')).MongoMemoryServer;
}
