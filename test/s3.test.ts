// Object storage against the suite's real S3 server (s3rver unless S3_ENDPOINT).
import test from 'ava';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { createS3Client, ensureBucket, pingS3 } from '../server/s3.ts';
import { requireEnv } from './helpers/env.ts';

const settings = {
  endpoint: process.env.S3_ENDPOINT,
  region: requireEnv('S3_REGION'),
  bucket: requireEnv('S3_BUCKET'),
  forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true',
  credentials: process.env.S3_ACCESS_KEY_ID ? { accessKeyId: requireEnv('S3_ACCESS_KEY_ID'), secretAccessKey: requireEnv('S3_SECRET_ACCESS_KEY') } : undefined,
};
const s3 = createS3Client(settings);

test('an object written to S3 reads back byte for byte', async (t) => {
  const key = `test/${randomBytes(6).toString('hex')}.bin`;
  const body = randomBytes(256 * 1024);
  await s3.send(new PutObjectCommand({ Bucket: settings.bucket, Key: key, Body: body, ContentType: 'application/octet-stream' }));
  const got = await s3.send(new GetObjectCommand({ Bucket: settings.bucket, Key: key }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  t.is(got.ContentType, 'application/octet-stream');
  t.true(bytes.equals(body));
});

test('ensureBucket creates a missing bucket and is idempotent', async (t) => {
  const bucket = `flock-test-${randomBytes(4).toString('hex')}`;
  await t.throwsAsync(pingS3(s3, bucket));
  await ensureBucket(s3, bucket);
  await ensureBucket(s3, bucket);
  await t.notThrowsAsync(pingS3(s3, bucket));
});
