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
const env = {
  ...process.env,
  ...servicesEnv(services),
  NODE_ENV: 'test',
  FLOCK_TEST_DATA_DIR: dataDir,
  // Every node of every test cluster signs and checks access tokens with one key.
  JWT_SECRET: process.env.JWT_SECRET ?? randomBytes(48).toString('base64'),
};
let running: ReturnType<typeof spawn> | undefined;
const forward = (signal: NodeJS.Signals) => running?.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);

function ava(args: string[]): Promise<number> {
  const child = spawn(process.execPath, [avaCli, ...args], { stdio: 'inherit', env });
  running = child;
  return new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
}

// Scale tests (*.scale.test.ts) load the shared embedded database for
// minutes, and the fault tests (test/chaos/) load the whole machine with two
// nodes and 200 users each: with no files named, they run after the rest,
// one file at a time, so they slow no other test down and measure recovery
// on a machine that is not also running the suite.
const args = process.argv.slice(2);
const named = args.some((a) => !a.startsWith('-'));
let code: number;
if (named) {
  code = await ava(args);
} else {
  const testDir = path.dirname(fileURLToPath(import.meta.url));
  const all = (await fs.readdir(testDir, { recursive: true }))
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.join('test', f))
    .sort();
  const heavy = all.filter((f) => f.endsWith('.scale.test.ts') || f.startsWith(path.join('test', 'chaos') + path.sep));
  code = await ava([...args, ...all.filter((f) => !heavy.includes(f))]);
  if (heavy.length > 0) code = Math.max(code, await ava([...args, '--concurrency', '1', ...heavy]));
}
await services.stop();
await fs.rm(dataDir, { recursive: true, force: true });
process.exit(code);
