// S3 for nodes without S3_ENDPOINT in development and for the tests: s3rver
// on loopback with its objects on disk, run as a child process.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess } from './child-process.ts';
import type { RunningService } from './service.ts';

const entry = fileURLToPath(new URL('./s3rver-main.ts', import.meta.url));

/** s3rver accepts any credentials; these only have to be well-formed. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

export async function startEmbeddedS3(options: { dataDir: string; bucket: string }): Promise<RunningService & { url: string }> {
  const dir = path.join(options.dataDir, 's3');
  const proc = await startProcess({
    name: 's3rver',
    command: process.execPath,
    args: ['--import', import.meta.resolve('tsx'), entry, dir, options.bucket],
    ready: /^ready (http:\/\/\S+)$/m,
    timeoutMs: 30_000,
  });
  return {
    url: proc.match[1]!,
    description: `embedded s3rver (objects in ${dir})`,
    stop: () => proc.stop(),
  };
}
