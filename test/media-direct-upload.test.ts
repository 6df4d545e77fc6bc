// Direct uploads (media/direct-upload.ts) and the storage webhook
// (routes/storage-webhook.ts) on the suite's real s3rver and FerretDB: the
// client PUTs its parts to presigned URLs with fetch, completes, and the
// object is checked byte for byte; lifecycle.complete is called once whether
// the client, the webhook (called with the notification S3/MinIO would send),
// or both report the object; refused objects are deleted.
import test from 'ava';
import { CompleteMultipartUploadCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { DirectUploads, type DirectUploadTicket } from '../media/direct-upload.ts';
import { storageWebhookRoutes } from '../routes/storage-webhook.ts';
import { UploadStore } from '../media/upload-store.ts';
import type { HttpEngine, Listening } from '../server/http-engine.ts';
import { RateLimiter } from '../server/rate-limit.ts';
import { openTestEngine } from './helpers/engines.ts';
import { keysUnder, multipartExists, NOT_MEDIA, readObject, s3Settings, TestLifecycle, testS3 } from './helpers/media.ts';
import { testServices } from './helpers/services.ts';

const MiB = 1024 * 1024;
const HOOK_TOKEN = randomBytes(24).toString('base64url');
const services = testServices('media_direct');
const lifecycle = new TestLifecycle();
let store: UploadStore;
let direct: DirectUploads;
let engine: HttpEngine | undefined;
let listening: Listening | undefined;
let base: string;

test.before(async () => {
  const connection = await services.mongo();
  const log = pino({ level: 'silent' });
  store = new UploadStore({ db: connection.db!, s3: testS3, bucket: s3Settings.bucket, lifecycle, nodeId: 'direct-test', log, maxLength: 256 * MiB });
  await store.init();
  direct = new DirectUploads(store);
  engine = await openTestEngine();
  engine.serveRoutes(storageWebhookRoutes, {
    services: {
      nodeId: 'direct-test',
      readiness: { report: async () => ({ ready: true, lifecycle: 'ready', services: {} }) },
      metrics: async () => ({ contentType: 'text/plain', body: '' }),
      asyncApi: {},
      oauth: undefined,
      media: { uploads: store, direct, storageWebhookToken: HOOK_TOKEN },
    },
    authenticate: async () => {
      throw new FlockError('AUTH_TOKEN_INVALID');
    },
    limiter: new RateLimiter(services.redis(), services.prefix),
    trustProxyHops: 0,
    log,
  });
  listening = await engine.listen('127.0.0.1', 0);
  base = `http://127.0.0.1:${listening.port}`;
});

test.after.always(async () => {
  listening?.stopAccepting();
  engine?.close();
  await services.cleanup();
});

const media = (size: number) => Buffer.concat([Buffer.from('FAKEMEDIA'), randomBytes(size - 9)]);

/** PUTs each part of `file` to its presigned URL, as a client would; the parts with their ETags. */
async function putParts(ticket: DirectUploadTicket, file: Buffer): Promise<{ number: number; etag: string }[]> {
  return Promise.all(
    ticket.parts.map(async ({ number, url }) => {
      const res = await fetch(url, { method: 'PUT', body: file.subarray((number - 1) * ticket.partSize, number * ticket.partSize) });
      if (res.status !== 200) throw new Error(`PUT part ${number} answered ${res.status}: ${await res.text()}`);
      return { number, etag: res.headers.get('etag') ?? '' };
    }),
  );
}

/** What MinIO posts for a completed multipart upload (S3's event JSON, plus MinIO's EventName and Key). */
function notification(key: string, size: number, eventName = 's3:ObjectCreated:CompleteMultipartUpload'): string {
  return JSON.stringify({
    EventName: eventName,
    Key: `${s3Settings.bucket}/${key}`,
    Records: [
      {
        eventVersion: '2.0',
        eventSource: 'minio:s3',
        eventName,
        s3: { s3SchemaVersion: '1.0', bucket: { name: s3Settings.bucket }, object: { key: encodeURIComponent(key), size } },
      },
    ],
  });
}

const hook = (body: string, token = HOOK_TOKEN) =>
  fetch(`${base}/webhooks/storage`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
const counts = async (res: Response) => z.object({ settled: z.number(), refused: z.number(), ignored: z.number() }).parse(await res.json());

test('a file PUT to presigned part URLs and completed is the object in S3; lifecycle.complete once, the webhook and a second complete after it notwithstanding', async (t) => {
  const file = media(13 * MiB + 17);
  const ticket = await direct.createDirectUpload('u_alice', { length: file.length, kind: 'video', filename: 'clip.mp4' });
  t.is(ticket.partSize, 8 * MiB);
  t.deepEqual(
    ticket.parts.map((p) => p.number),
    [1, 2],
  );
  t.true(ticket.expiresAt > Date.now() + 59 * 60_000 && ticket.expiresAt <= Date.now() + 3600_000);
  t.regex(ticket.parts[0]!.url, /X-Amz-Expires=3600/);
  const parts = await putParts(ticket, file);

  t.deepEqual(await direct.completeDirectUpload('u_alice', ticket.mediaId, parts), { mediaId: ticket.mediaId, bytes: file.length });
  const item = lifecycle.item(ticket.mediaId);
  t.true((await readObject(item.key)).equals(file));
  t.deepEqual(item.completed, [{ key: item.key, bytes: file.length }]);
  t.true(item.sniffed[0]!.equals(file.subarray(0, 4096)));

  const reported = await hook(notification(item.key, file.length));
  t.is(reported.status, 200);
  t.deepEqual(await counts(reported), { settled: 0, refused: 0, ignored: 1 });
  await direct.completeDirectUpload('u_alice', ticket.mediaId, parts);
  t.is(item.completed.length, 1, 'still once');
  t.is(item.sniffed.length, 1);
});

test('the webhook finishes an upload S3 completed while no one settled it (a node died); the client completing after it is fine', async (t) => {
  const file = media(6 * MiB);
  const ticket = await direct.createDirectUpload('u_alice', { length: file.length });
  const parts = await putParts(ticket, file);
  const key = lifecycle.item(ticket.mediaId).key;
  // What a node does before it settles: S3's complete. Then it is gone.
  await testS3.send(
    new CompleteMultipartUploadCommand({
      Bucket: s3Settings.bucket,
      Key: key,
      UploadId: ticket.uploadId,
      MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
    }),
  );
  const reported = await hook(notification(key, file.length));
  t.deepEqual(await counts(reported), { settled: 1, refused: 0, ignored: 0 });
  const again = await hook(notification(key, file.length));
  t.deepEqual(await counts(again), { settled: 0, refused: 0, ignored: 1 }, 'a repeated notification');
  await direct.completeDirectUpload('u_alice', ticket.mediaId, parts);
  const item = lifecycle.item(ticket.mediaId);
  t.is(item.completed.length, 1);
  t.true((await readObject(key)).equals(file));
});

test('the client completing and the webhook reporting at once call lifecycle.complete once', async (t) => {
  const file = media(5 * MiB + 1);
  const ticket = await direct.createDirectUpload('u_alice', { length: file.length, partSize: 5 * MiB });
  t.is(ticket.parts.length, 2);
  const parts = await putParts(ticket, file);
  const key = lifecycle.item(ticket.mediaId).key;
  const [, first, second] = await Promise.all([
    direct.completeDirectUpload('u_alice', ticket.mediaId, parts),
    hook(notification(key, file.length)).then(counts),
    new Promise((resolve) => setTimeout(resolve, 30)).then(async () => counts(await hook(notification(key, file.length)))),
  ]);
  t.is(first.refused + second.refused, 0);
  t.is(lifecycle.item(ticket.mediaId).completed.length, 1);
  t.true((await readObject(key)).equals(file));
});

test('the webhook refuses a wrong or missing token (401 AUTH_REQUIRED) and ignores other events and unknown keys', async (t) => {
  const wrong = await hook(notification('anything', 1), 'not-the-token');
  t.is(wrong.status, 401);
  t.is(z.object({ error: z.object({ code: z.string() }) }).parse(await wrong.json()).error.code, 'AUTH_REQUIRED');
  const none = await fetch(`${base}/webhooks/storage`, { method: 'POST', body: notification('anything', 1) });
  t.is(none.status, 401);
  t.deepEqual(await counts(await hook(notification('test-uploads/nobody/m_nothing/original', 10))), { settled: 0, refused: 0, ignored: 1 });
  t.deepEqual(await counts(await hook(notification('x', 10, 's3:ObjectRemoved:Delete'))), { settled: 0, refused: 0, ignored: 1 });
  t.is((await hook('{"Records": "nope"}')).status, 400);
});

test('abort: the multipart upload is gone, the media item abandoned, and complete is MEDIA_UPLOAD_EXPIRED after', async (t) => {
  const file = media(6 * MiB);
  const ticket = await direct.createDirectUpload('u_alice', { length: file.length });
  const parts = await putParts(ticket, file);
  const key = lifecycle.item(ticket.mediaId).key;
  t.true(await multipartExists(key, ticket.uploadId));
  await t.throwsAsync(direct.abortDirectUpload('u_bob', ticket.mediaId), { message: /No such media/ });
  await direct.abortDirectUpload('u_alice', ticket.mediaId);
  t.false(await multipartExists(key, ticket.uploadId));
  t.deepEqual(await keysUnder(key), []);
  t.is(lifecycle.item(ticket.mediaId).abandoned, 1);
  const late = await t.throwsAsync(direct.completeDirectUpload('u_alice', ticket.mediaId, parts));
  t.is(late instanceof FlockError ? late.code : undefined, 'MEDIA_UPLOAD_EXPIRED');
});

test('an object of another size than declared, or whose head is not media, is deleted and the upload refused', async (t) => {
  const file = media(6 * MiB);
  const short = await direct.createDirectUpload('u_alice', { length: file.length + 100 });
  const parts = await putParts(short, file);
  const shortKey = lifecycle.item(short.mediaId).key;
  const mismatch = await t.throwsAsync(direct.completeDirectUpload('u_alice', short.mediaId, parts));
  t.is(mismatch instanceof FlockError ? mismatch.code : undefined, 'MEDIA_UPLOAD_INVALID');
  t.deepEqual(await keysUnder(shortKey), []);
  t.is(lifecycle.item(short.mediaId).abandoned, 1);

  const fake = Buffer.concat([NOT_MEDIA, randomBytes(MiB)]);
  const refused = await direct.createDirectUpload('u_alice', { length: fake.length });
  const fakeParts = await putParts(refused, fake);
  const sniffed = await t.throwsAsync(direct.completeDirectUpload('u_alice', refused.mediaId, fakeParts));
  t.is(sniffed instanceof FlockError ? sniffed.code : undefined, 'MEDIA_UNSUPPORTED_TYPE');
  t.deepEqual(await keysUnder(lifecycle.item(refused.mediaId).key), []);
  t.is(lifecycle.item(refused.mediaId).completed.length, 0);
});

test('inputs are bounded: parts of at least 5 MiB, at most 10,000 of them, every part once, only the owner', async (t) => {
  const code = async (p: Promise<unknown>) => {
    const err = await t.throwsAsync(p);
    return err instanceof FlockError ? err.code : err?.message;
  };
  t.is(await code(direct.createDirectUpload('u_alice', { length: 10 * MiB, partSize: MiB })), 'MEDIA_UPLOAD_INVALID');
  t.is(await code(direct.createDirectUpload('u_alice', { length: 60 * 1024 * MiB, partSize: 5 * MiB })), 'MEDIA_UPLOAD_INVALID', '12,288 parts');
  t.is(await code(direct.createDirectUpload('u_alice', { length: 257 * MiB })), 'MEDIA_TOO_LARGE');
  const ticket = await direct.createDirectUpload('u_alice', { length: 20 * MiB, partSize: 5 * MiB });
  t.is(ticket.parts.length, 4);
  t.is(await code(direct.completeDirectUpload('u_alice', ticket.mediaId, [{ number: 1, etag: '"x"' }])), 'MEDIA_UPLOAD_INVALID');
  t.is(await code(direct.completeDirectUpload('u_bob', ticket.mediaId, [{ number: 1, etag: '"x"' }])), 'MEDIA_NOT_FOUND');
});
