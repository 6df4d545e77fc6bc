// `npm test`: resolves the backing services once through the dev-services
// module (the same one `npm start` uses), then runs ava with their URLs in the
// environment so every test file and every node process it spawns shares them.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveServices, servicesEnv } from '../devservices/index.ts';
import { loadConfig } from '../server/config.ts';

const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'flock-test-'));
const config = loadConfig({ ...process.env, FLOCK_DATA_DIR: dataDir, NODE_ENV: 'test' });
const log = (message: string) => process.stderr.write(`[dev-services] ${message}\n`);

const started = performance.now();
const services = await resolveServices(config, { log });
for (const [name, using] of Object.entries(services.descriptions)) log(`${name}: ${using}`);
log(`ready in ${Math.round(performance.now() - started)} ms`);

const avaCli = fileURLToPath(new URL('../node_modules/ava/entrypoints/cli.mjs', import.meta.url));
const child = spawn(process.execPath, [avaCli, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: {
    ...process.env,
    ...servicesEnv(services),
    NODE_ENV: 'test',
    FLOCK_TEST_DATA_DIR: dataDir,
    // Every node of every test cluster signs and checks access tokens with one key.
    JWT_SECRET: process.env.JWT_SECRET ?? randomBytes(48).toString('base64'),
  },
});
const forward = (signal: NodeJS.Signals) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);

const code = await new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
await services.stop();
await fs.rm(dataDir, { recursive: true, force: true });
process.exit(code);
