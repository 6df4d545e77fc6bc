// What a test needs to reach the suite's shared services (set by run-suite.ts).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
// Every test runs with the node's mongoose settings (strictQuery, sanitizeFilter).
import '../../kernel/mongo.ts';

export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\``);
  return value;
}

/** A database name no other test uses, so test files can run in parallel. */
export function uniqueDbName(prefix: string): string {
  return `t_${prefix.replace(/[^A-Za-z0-9]/g, '_').slice(0, 30)}_${randomBytes(4).toString('hex')}`;
}

export async function tempDir(prefix: string): Promise<string> {
  const base = process.env.FLOCK_TEST_DATA_DIR ?? os.tmpdir();
  return fs.mkdtemp(path.join(base, `${prefix}-`));
}
