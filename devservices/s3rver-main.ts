// Child-process entry for the embedded s3rver (kept out of the node process
// because s3rver's logger hooks process-wide exception handling).
// Usage: s3rver-main.ts <directory> <bucket>; prints "ready <endpoint>".
import S3rver from 's3rver';
import { z } from 'zod';

const [directory, bucket] = process.argv.slice(2);
if (!directory || !bucket) {
  process.stderr.write('usage: s3rver-main.ts <directory> <bucket>\n');
  process.exit(2);
}
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket }],
});
const address = z.object({ address: z.string(), port: z.number() }).parse(await server.run());
process.stdout.write(`ready http://${address.address}:${address.port}\n`);
const stop = () => void server.close().finally(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdin.resume();
process.stdin.once('end', stop);
