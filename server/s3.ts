// The S3 client and the start-up bucket check. Checksums are only sent where
// S3 requires them, which keeps S3-compatible servers (s3rver, MinIO) working.
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { ResolvedServices } from '../devservices/index.ts';

export function createS3Client(settings: ResolvedServices['s3']): S3Client {
  return new S3Client({
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    ...(settings.endpoint && { endpoint: settings.endpoint }),
    ...(settings.credentials && { credentials: settings.credentials }),
  });
}

export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (!(err instanceof Error && '$metadata' in err && isNotFound(err.$metadata))) throw err;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  }
}

export async function pingS3(client: S3Client, bucket: string): Promise<void> {
  await client.send(new HeadBucketCommand({ Bucket: bucket }));
}

function isNotFound(metadata: unknown): boolean {
  return typeof metadata === 'object' && metadata !== null && 'httpStatusCode' in metadata && metadata.httpStatusCode === 404;
}
