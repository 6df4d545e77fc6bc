// tus 1.0 uploads (routes/uploads.ts over media/upload-store.ts) on two engines
// that stand for two nodes: each has its own store object and database
// connection, on the suite's one FerretDB and s3rver. Real HTTP requests
// create, write, interrupt, resume, terminate and expire uploads; the object
// S3 ends up with is compared byte for byte, and what S3 still holds of an
// upload that was given up is listed. The media side is the in-memory
// TestLifecycle, which records each call.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { pino } from 'pino';
import { z } from 'zod';
import type { Session } from '../auth/session.ts';
import { FlockError } from '../kernel/errors.ts';
import { DirectUploads } from '../media/direct-upload.ts';
import { TUS_EXTENSIONS, tusRoutes } from '../routes/uploads.ts';
import type { UploadRecord } from '../media/upload-records.ts';
import { UploadStore } from '../media/upload-store.ts';
import type { HttpEngine, Listening } from '../server/http-engine.ts';
import { RateLimiter } from '../server/rate-limit.ts';
import { openTestEngine } from './helpers/engines.ts';
import { keysUnder, multipartExists, NOT_MEDIA, readObject, s3Settings, TestLifecycle, testS3 } from './helpers/media.ts';
import { testServices } from './helpers/services.ts';

const MiB = 1024 * 1024;
const services = testServices('media_tus');
const lifecycle = new TestLifecycle();
const log = pino({ level: 'silent' });
const TOKENS: Record<string, string> = { 'alice-token': 'u_alice', 'bob-token': 'u_bob' };

interface Node {
  store: UploadStore;
  engine: HttpEngine;
  listening: Listening;
  base: string;
}
const nodes: Node[] = [];
let a: Node;
let b: Node;

test.before(async () => {
  for (const name of ['node-a', 'node-b']) {
    const connection = await services.mongo();
    const store = new UploadStore({ db: connection.db!, s3: testS3, bucket: s3Settings.bucket, lifecycle, nodeId: name, log, maxLength: 256 * MiB });
    await store.init();
    const engine = await openTestEngine();
    engine.serveRoutes(tusRoutes, {
      services: {
        nodeId: name,
        readiness: { report: async () => ({ ready: true, lifecycle: 'ready', services: {} }) },
        metrics: async () => ({ contentType: 'text/plain', body: '' }),
        asyncApi: {},
        oauth: undefined,
        media: { uploads: store, direct: new DirectUploads(store), storageWebhookToken: undefined },
      },
      authenticate: async (token): Promise<Session> => {
        const userId = TOKENS[token];
        if (!userId) throw new FlockError('AUTH_TOKEN_INVALID');
        return { userId, sessionId: `s-${userId}`, roles: ['user'], expiresAt: Date.now() + 600_000 };
      },
      limiter: new RateLimiter(services.redis(), services.prefix),
      trustProxyHops: 0,
      log,
    });
    const listening = await engine.listen('127.0.0.1', 0);
    nodes.push({ store, engine, listening, base: `http://127.0.0.1:${listening.port}` });
  }
  [a, b] = [nodes[0]!, nodes[1]!];
});

test.after.always(async () => {
  for (const node of nodes) {
    node.listening.stopAccepting();
    node.engine.close();
  }
  await services.cleanup();
});

const TUS = { 'tus-resumable': '1.0.0' };
const auth = (token = 'alice-token') => ({ ...TUS, authorization: `Bearer ${token}` });
const octets = { 'content-type': 'application/offset+octet-stream' };
const errorCode = async (res: Response) => z.object({ error: z.object({ code: z.string() }) }).parse(await res.json()).error.code;

async function create(
  node: Node,
  length: number,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<{ url: string; mediaId: string; res: Response }> {
  const res = await fetch(`${node.base}/uploads`, { method: 'POST', headers: { ...auth(), 'upload-length': String(length), ...headers }, body });
  if (res.status !== 201) throw new Error(`POST /uploads answered ${res.status}: ${await res.text()}`);
  const url = res.headers.get('location') ?? '';
  return { url, mediaId: url.split('/').pop() ?? '', res };
}

/** The same upload's URL on another node. */
const on = (node: Node, url: string) => `${node.base}${new URL(url).pathname}`;

const patch = (url: string, offset: number, body: Buffer, token = 'alice-token') =>
  fetch(url, { method: 'PATCH', headers: { ...auth(token), ...octets, 'upload-offset': String(offset) }, body });

const head = (url: string, token = 'alice-token') => fetch(url, { method: 'HEAD', headers: auth(token) });

async function record(mediaId: string): Promise<UploadRecord> {
  const found = await a.store.records.get(mediaId);
  if (!found) throw new Error(`no record of ${mediaId}`);
  return found;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A file lifecycle.sniffed accepts (the test lifecycle refuses only NOT_MEDIA heads). */
const media = (size: number) => Buffer.concat([Buffer.from('FAKEMEDIA'), randomBytes(size - 9)]);

test.serial('OPTIONS /uploads states the version, the extensions and the largest upload', async (t) => {
  const res = await fetch(`${a.base}/uploads`, { method: 'OPTIONS' });
  t.is(res.status, 204);
  t.is(res.headers.get('tus-resumable'), '1.0.0');
  t.is(res.headers.get('tus-version'), '1.0.0');
  t.is(res.headers.get('tus-extension'), TUS_EXTENSIONS);
  t.is(res.headers.get('tus-max-size'), String(256 * MiB));
});

test.serial('a 13 MiB file in PATCHes to two nodes, one interrupted mid-body, resumed from HEAD: S3 holds it byte for byte', async (t) => {
  const file = media(13 * MiB);
  const { url, mediaId, res } = await create(a, file.length, { 'upload-metadata': `filename ${Buffer.from('clip.mp4').toString('base64')},kind dmlkZW8=` });
  t.regex(url, new RegExp(`^${a.base}/uploads/m_[A-Za-z0-9_-]+$`), 'an absolute Location built from Host');
  t.truthy(Date.parse(res.headers.get('upload-expires') ?? '') > Date.now());
  t.deepEqual(lifecycle.item(mediaId).declared, { length: file.length, kind: 'video', filename: 'clip.mp4' });

  // Node A: the first 3 MiB (less than a part: kept as the incomplete part).
  const first = await patch(url, 0, file.subarray(0, 3 * MiB));
  t.is(first.status, 204);
  t.is(first.headers.get('upload-offset'), String(3 * MiB));
  t.is(first.headers.get('tus-resumable'), '1.0.0');

  // Node B: 7 MiB more of a body that claims the rest, then the connection drops.
  const socket = net.connect(b.listening.port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(
    `PATCH ${new URL(url).pathname} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer alice-token\r\nTus-Resumable: 1.0.0\r\n` +
      `Content-Type: application/offset+octet-stream\r\nUpload-Offset: ${3 * MiB}\r\nContent-Length: ${file.length - 3 * MiB}\r\n\r\n`,
  );
  socket.write(file.subarray(3 * MiB, 10 * MiB));
  await until('node B recorded its first part', async () => (await record(mediaId)).parts.length === 1);
  socket.destroy();
  await until('node B released the upload', async () => (await record(mediaId)).lock === null);

  const stored = await record(mediaId);
  const offered = await head(on(a, url));
  t.is(offered.status, 200);
  t.is(offered.headers.get('cache-control'), 'no-store');
  t.is(offered.headers.get('upload-length'), String(file.length));
  const offset = Number(offered.headers.get('upload-offset'));
  t.is(offset, stored.offset, 'HEAD says what was stored');
  t.true(offset >= 8 * MiB && offset <= 10 * MiB, `kept ${offset} bytes: the recorded part and what arrived after it`);

  // Node A again: the rest, from HEAD's offset.
  const last = await patch(on(a, url), offset, file.subarray(offset));
  t.is(last.status, 204);
  t.is(last.headers.get('upload-offset'), String(file.length));

  const item = lifecycle.item(mediaId);
  t.deepEqual(item.completed, [{ key: item.key, bytes: file.length }], 'lifecycle.complete once');
  t.is(item.sniffed.length, 1);
  t.true(item.sniffed[0]!.equals(file.subarray(0, 4096)), 'sniffed the first 4 KiB');
  t.true((await readObject(item.key)).equals(file), 'the object equals the file');
  t.deepEqual(await keysUnder(item.key), [item.key], 'the incomplete part is gone');
  const done = await head(url);
  t.is(done.headers.get('upload-offset'), String(file.length));
  t.is(done.headers.get('upload-expires'), null, 'a finished upload does not expire');
});

test.serial('creation-with-upload: POST carries the first bytes and answers their offset', async (t) => {
  const file = media(2 * MiB + 123);
  const { url, mediaId, res } = await create(a, file.length, octets, file.subarray(0, MiB));
  t.is(res.headers.get('upload-offset'), String(MiB));
  t.is((await patch(on(b, url), MiB, file.subarray(MiB))).status, 204);
  t.true((await readObject(lifecycle.item(mediaId).key)).equals(file));

  const small = media(1000);
  const whole = await create(b, small.length, octets, small);
  t.is(whole.res.headers.get('upload-offset'), String(small.length));
  t.is(whole.res.headers.get('upload-expires'), null);
  const item = lifecycle.item(whole.mediaId);
  t.is(item.completed.length, 1);
  t.true(item.sniffed[0]!.equals(small), 'a file under 4 KiB is sniffed whole');
  t.true((await readObject(item.key)).equals(small));
});

test.serial('an upload whose last step failed (the media side away) is finished by the next HEAD, on another node', async (t) => {
  const file = media(6 * MiB);
  const { url, mediaId } = await create(a, file.length);
  lifecycle.failNextComplete = true;
  const failed = await patch(url, 0, file);
  t.is(failed.status, 503);
  t.is((await record(mediaId)).state, 'completing');
  t.is(lifecycle.item(mediaId).completed.length, 0);

  const offered = await head(on(b, url));
  t.is(offered.status, 200);
  t.is(offered.headers.get('upload-offset'), String(file.length));
  const item = lifecycle.item(mediaId);
  t.deepEqual(item.completed, [{ key: item.key, bytes: file.length }]);
  t.is((await record(mediaId)).state, 'completed');
  t.true((await readObject(item.key)).equals(file));
  t.is((await patch(url, file.length, Buffer.alloc(0))).status, 204, 'a PATCH at the end of a finished upload changes nothing');
});

test.serial('a PATCH at another offset than the stored one is MEDIA_UPLOAD_CONFLICT (409)', async (t) => {
  const file = media(64 * 1024);
  const { url } = await create(a, file.length);
  t.is((await patch(url, 0, file.subarray(0, 1000))).status, 204);
  const wrong = await patch(url, 0, file.subarray(0, 1000));
  t.is(wrong.status, 409);
  t.is(await errorCode(wrong), 'MEDIA_UPLOAD_CONFLICT');
  t.is(wrong.headers.get('tus-resumable'), '1.0.0');
  t.is((await head(url)).headers.get('upload-offset'), '1000');
});

test.serial('of two concurrent PATCHes to one upload on two nodes, the second is MEDIA_UPLOAD_CONFLICT while the first writes', async (t) => {
  const file = media(2 * MiB);
  const { url, mediaId } = await create(a, file.length);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let step = 0;
  const slow = fetch(url, {
    method: 'PATCH',
    headers: { ...auth(), ...octets, 'upload-offset': '0', 'content-length': String(file.length) },
    duplex: 'half',
    body: new ReadableStream({
      async pull(controller) {
        if (step === 0) controller.enqueue(file.subarray(0, MiB));
        else if (step === 1) {
          await gate;
          controller.enqueue(file.subarray(MiB));
        } else controller.close();
        step++;
      },
    }),
  });
  await until('the first PATCH holds the lock', async () => (await record(mediaId)).lock !== null);
  const second = await patch(on(b, url), 0, file);
  t.is(second.status, 409);
  t.is(await errorCode(second), 'MEDIA_UPLOAD_CONFLICT');
  open();
  const first = await slow;
  t.is(first.status, 204);
  t.is(first.headers.get('upload-offset'), String(file.length));
  t.true((await readObject(lifecycle.item(mediaId).key)).equals(file));
});

test.serial('another Tus-Resumable (or none) is 412 with Tus-Version; a PATCH without the tus Content-Type is 415', async (t) => {
  const { url } = await create(a, 1000);
  for (const version of ['0.2.2', '']) {
    const res = await fetch(url, {
      method: 'PATCH',
      headers: { authorization: 'Bearer alice-token', ...octets, 'upload-offset': '0', 'tus-resumable': version },
      body: 'x',
    });
    t.is(res.status, 412);
    t.is(res.headers.get('tus-version'), '1.0.0');
    t.is(res.headers.get('tus-resumable'), '1.0.0');
    t.is(await errorCode(res), 'MEDIA_UPLOAD_INVALID');
  }
  const untyped = await fetch(url, { method: 'PATCH', headers: { ...auth(), 'upload-offset': '0' }, body: 'x' });
  t.is(untyped.status, 415);
  t.is(await errorCode(untyped), 'MEDIA_UPLOAD_INVALID');
  const deferred = await fetch(`${a.base}/uploads`, { method: 'POST', headers: { ...auth(), 'upload-defer-length': '1' } });
  t.is(deferred.status, 400);
  const tooLarge = await fetch(`${a.base}/uploads`, { method: 'POST', headers: { ...auth(), 'upload-length': String(256 * MiB + 1) } });
  t.is(tooLarge.status, 413);
  t.is(await errorCode(tooLarge), 'MEDIA_TOO_LARGE');
  const anonymous = await fetch(`${a.base}/uploads`, { method: 'POST', headers: { ...TUS, 'upload-length': '10' } });
  t.is(anonymous.status, 401);
  t.is(anonymous.headers.get('tus-resumable'), '1.0.0', 'refusals by the framework carry Tus-Resumable too');
});

test.serial('termination: DELETE is 204, the upload then answers 410, and S3 holds nothing of it', async (t) => {
  const file = media(13 * MiB);
  const { url, mediaId } = await create(a, file.length);
  t.is((await patch(url, 0, file.subarray(0, 9 * MiB))).status, 204);
  const { key, s3UploadId, pendingKey } = await record(mediaId);
  t.true(await multipartExists(key, s3UploadId), 'a part is stored');
  t.deepEqual(await keysUnder(key), [pendingKey], 'and the incomplete part');

  const deleted = await fetch(on(b, url), { method: 'DELETE', headers: auth() });
  t.is(deleted.status, 204);
  t.is(deleted.headers.get('tus-resumable'), '1.0.0');
  t.is((await head(url)).status, 410);
  const late = await patch(url, 9 * MiB, file.subarray(9 * MiB));
  t.is(late.status, 410);
  t.is(await errorCode(late), 'MEDIA_UPLOAD_EXPIRED');
  t.false(await multipartExists(key, s3UploadId), 'the multipart upload is gone');
  t.deepEqual(await keysUnder(key), []);
  t.is(lifecycle.item(mediaId).abandoned, 1);
});

test.serial("someone else's upload is MEDIA_NOT_FOUND (404) to HEAD, PATCH and DELETE", async (t) => {
  const { url } = await create(a, 1000);
  t.is((await head(url, 'bob-token')).status, 404);
  const written = await patch(url, 0, Buffer.alloc(10), 'bob-token');
  t.is(written.status, 404);
  t.is(await errorCode(written), 'MEDIA_NOT_FOUND');
  t.is((await fetch(url, { method: 'DELETE', headers: auth('bob-token') })).status, 404);
  t.is((await head(url)).status, 200, 'the owner still has it');
  t.is((await head(`${a.base}/uploads/not-an-id`)).status, 404);
});

test.serial('expiry: the sweep aborts what S3 holds of an unfinished upload and abandons it; the upload then answers 410', async (t) => {
  const file = media(13 * MiB);
  const { url, mediaId } = await create(a, file.length);
  t.is((await patch(url, 0, file.subarray(0, 9 * MiB))).status, 204);
  const { key, s3UploadId } = await record(mediaId);
  t.true(await multipartExists(key, s3UploadId));

  const swept = await b.store.expireUploads(new Date(Date.now() + 25 * 60 * 60 * 1000));
  t.true(swept.expired >= 1);
  t.is((await head(url)).status, 410);
  const late = await patch(url, 9 * MiB, file.subarray(9 * MiB));
  t.is(late.status, 410);
  t.is(await errorCode(late), 'MEDIA_UPLOAD_EXPIRED');
  t.false(await multipartExists(key, s3UploadId));
  t.deepEqual(await keysUnder(key), []);
  t.is(lifecycle.item(mediaId).abandoned, 1);
  t.is(lifecycle.item(mediaId).completed.length, 0);
});

test.serial('a head lifecycle.sniffed refuses ends the upload with its error, and S3 keeps nothing of it', async (t) => {
  const file = Buffer.concat([NOT_MEDIA, randomBytes(13 * MiB - NOT_MEDIA.length)]);
  const { url, mediaId } = await create(a, file.length);
  // 2 KiB first: too little to sniff, kept as the incomplete part.
  t.is((await patch(url, 0, file.subarray(0, 2048))).status, 204);
  const { key, s3UploadId, pendingKey } = await record(mediaId);
  t.deepEqual(await keysUnder(key), [pendingKey]);

  const refused = await patch(on(b, url), 2048, file.subarray(2048));
  t.is(refused.status, 415);
  t.is(await errorCode(refused), 'MEDIA_UNSUPPORTED_TYPE');
  t.is((await head(url)).status, 410);
  t.false(await multipartExists(key, s3UploadId));
  t.deepEqual(await keysUnder(key), []);
  const item = lifecycle.item(mediaId);
  t.is(item.sniffed.length, 1);
  t.true(item.sniffed[0]!.equals(file.subarray(0, 4096)), 'the head joins the stored 2 KiB and the new bytes');
  t.is(item.abandoned, 1);
  t.is(item.completed.length, 0);
});
