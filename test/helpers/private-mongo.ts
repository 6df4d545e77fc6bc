// A throwaway embedded FerretDB (the one `npm start` runs, devservices/) on a
// fixed free loopback port with its own data directory, for tests that stop
// and restart the database under a running cluster: the URL stays the same
// and the data survives the restart.
import { startEmbeddedMongo } from '../../devservices/ferretdb.ts';
import { loadConfig } from '../../server/config.ts';
import { tempDir } from './env.ts';
import { freePort } from './private-redis.ts';

export interface PrivateMongo {
  url: string;
  start(): Promise<void>;
  /** A graceful stop (SIGTERM): FerretDB closes its SQLite files. */
  stop(): Promise<void>;
}

export async function privateMongo(): Promise<PrivateMongo> {
  const [port, dataDir] = await Promise.all([freePort(), tempDir('mongo')]);
  const cacheDir = loadConfig(process.env).cacheDir;
  let stop: (() => Promise<void>) | undefined;
  const handle: PrivateMongo = {
    url: `mongodb://127.0.0.1:${port}/`,
    async start() {
      const server = await startEmbeddedMongo({ dataDir, cacheDir, port });
      stop = () => server.stop();
    },
    async stop() {
      await stop?.();
      stop = undefined;
    },
  };
  await handle.start();
  return handle;
}
