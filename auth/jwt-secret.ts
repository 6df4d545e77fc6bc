// The access-token key: JWT_SECRET, or outside production a key generated
// once into the data directory, so nodes sharing FLOCK_DATA_DIR agree on it
// and restarts do not sign everyone out.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { systemCode } from '../kernel/errors.ts';

export async function loadJwtSecret(configured: string | undefined, dataDir: string): Promise<Uint8Array> {
  if (configured) return new Uint8Array(Buffer.from(configured, 'base64'));
  const file = path.join(dataDir, 'jwt-secret');
  await fs.mkdir(dataDir, { recursive: true });
  try {
    await fs.writeFile(file, randomBytes(48).toString('base64'), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if (systemCode(err) !== 'EEXIST') throw err;
  }
  return new Uint8Array(Buffer.from((await fs.readFile(file, 'utf8')).trim(), 'base64'));
}
