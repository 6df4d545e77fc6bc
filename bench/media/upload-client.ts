// The uploader of the upload scenario of bench/media.ts, in a process of its
// own so that neither its CPU nor its buffers count against the server's: it
// makes BENCH_MEDIA_SOURCE_BYTES random bytes once, then, on the bench's
// requests (bench/media/upload-protocol.ts), sends those same bytes as a tus
// upload through the server (POST /uploads, then PATCHes from offset 0) or
// straight to S3 with the SDK the server uses (one PutObject; a multipart
// upload with parts one after another), and times each. A larger upload
// sends the bytes again from the start.
//
// The tus requests go out through node:http, as the SDK's do
// (BENCH_MEDIA_TUS_CLIENT=fetch: through fetch instead). On this 2-core
// machine the client's CPU is taken from the server and s3rver, and fetch
// (undici) spends about 600 ms of CPU sending a 64 MiB body where node:http
// spends about 40: with fetch the tus path would pay for its client.
import { randomFillSync } from 'node:crypto';
import http from 'node:http';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { loadConfig } from '../../server/config.ts';
import { createS3Client } from '../../server/s3.ts';
import { clientRequestSchema, type ClientRequest } from './upload-protocol.ts';

const send = process.send?.bind(process);
if (!send) throw new Error('upload-client.ts reports over IPC: start it with fork()');
const sourceBytes = Number(process.env.BENCH_MEDIA_SOURCE_BYTES);
if (!Number.isSafeInteger(sourceBytes) || sourceBytes < 1) throw new Error('BENCH_MEDIA_SOURCE_BYTES must be a positive integer');

const config = loadConfig(process.env);
const bucket = config.s3.bucket;
const s3 = createS3Client({
  endpoint: config.s3.endpoint,
  region: config.s3.region,
  bucket,
  forcePathStyle: config.s3.forcePathStyle,
  credentials:
    config.s3.accessKeyId && config.s3.secretAccessKey ? { accessKeyId: config.s3.accessKeyId, secretAccessKey: config.s3.secretAccessKey } : undefined,
});

// Random, so that nothing on the way can compress or deduplicate it.
const source = Buffer.allocUnsafe(sourceBytes);
for (let at = 0; at < sourceBytes; at += 1 << 26) randomFillSync(source, at, Math.min(1 << 26, sourceBytes - at));

/** Bytes [offset, offset + n) of the file, the source repeated: a view when they lie within one copy of it. */
function slice(offset: number, n: number): Buffer {
  const at = offset % sourceBytes;
  if (at + n <= sourceBytes) return source.subarray(at, at + n);
  const out = Buffer.allocUnsafe(n);
  for (let filled = 0; filled < n;) {
    const from = (offset + filled) % sourceBytes;
    const take = Math.min(n - filled, sourceBytes - from);
    source.copy(out, filled, from, from + take);
    filled += take;
  }
  return out;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

const viaFetch = process.env.BENCH_MEDIA_TUS_CLIENT === 'fetch';

/** One HTTP request: its status, headers and body text. */
async function request(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<{ status: number; header(name: string): string; text: string }> {
  if (viaFetch) {
    const res = await fetch(url, { method, headers, ...(body && { body }) });
    const text = await res.text();
    return { status: res.status, header: (name) => res.headers.get(name) ?? '', text };
  }
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { ...headers, 'content-length': String(body?.length ?? 0) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const value = (name: string) => {
          const v = res.headers[name];
          return Array.isArray(v) ? v.join(', ') : (v ?? '');
        };
        resolve({ status: res.statusCode ?? 0, header: value, text: Buffer.concat(chunks).toString() });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function tus(base: string, token: string, bytes: number, patchBytes: number): Promise<Record<string, number>> {
  const headers = { 'tus-resumable': '1.0.0', authorization: `Bearer ${token}` };
  const started = performance.now();
  const created = await request(`${base}/uploads`, 'POST', {
    ...headers,
    'upload-length': String(bytes),
    'upload-metadata': `filename ${b64('bench.mp4')},kind ${b64('video')}`,
  });
  if (created.status !== 201) throw new Error(`POST /uploads answered ${created.status}: ${created.text}`);
  const location = created.header('location');
  if (!location) throw new Error('POST /uploads answered without a Location');
  const url = new URL(location, base).href;
  const createMs = performance.now() - started;
  let slowestPatchMs = 0;
  let patches = 0;
  for (let offset = 0; offset < bytes;) {
    const n = Math.min(patchBytes, bytes - offset);
    const patchStarted = performance.now();
    const res = await request(
      url,
      'PATCH',
      { ...headers, 'content-type': 'application/offset+octet-stream', 'upload-offset': String(offset) },
      slice(offset, n),
    );
    if (res.status !== 204) throw new Error(`PATCH at ${offset} answered ${res.status}: ${res.text}`);
    const stored = Number(res.header('upload-offset'));
    if (stored !== offset + n) throw new Error(`PATCH at ${offset} of ${n} bytes answered Upload-Offset ${stored}`);
    slowestPatchMs = Math.max(slowestPatchMs, performance.now() - patchStarted);
    patches++;
    offset += n;
  }
  return { createMs, patches, slowestPatchMs };
}

async function put(key: string, bytes: number): Promise<Record<string, number>> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: slice(0, bytes), ContentLength: bytes, ContentType: 'application/octet-stream' }));
  return {};
}

async function multipart(key: string, bytes: number, partSize: number): Promise<Record<string, number>> {
  let mark = performance.now();
  const lap = () => {
    const now = performance.now();
    const ms = now - mark;
    mark = now;
    return ms;
  };
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: 'application/octet-stream' }));
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error('S3 started a multipart upload without an upload id');
  const createMs = lap();
  const parts: { PartNumber: number; ETag: string }[] = [];
  for (let offset = 0, number = 1; offset < bytes; offset += partSize, number++) {
    const body = slice(offset, Math.min(partSize, bytes - offset));
    const stored = await s3.send(
      new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: number, Body: body, ContentLength: body.length }),
    );
    if (!stored.ETag) throw new Error(`S3 stored part ${number} without an ETag`);
    parts.push({ PartNumber: number, ETag: stored.ETag });
  }
  const partsMs = lap();
  await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
  return { createMs, partsMs, completeMs: lap(), parts: parts.length };
}

async function answer(request: ClientRequest): Promise<object> {
  if (request.op === 'remove') {
    for (const key of request.keys) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    return {};
  }
  const started = performance.now();
  const steps =
    request.op === 'tus'
      ? await tus(request.base, request.token, request.bytes, request.patchBytes)
      : request.op === 'put'
        ? await put(request.key, request.bytes)
        : await multipart(request.key, request.bytes, request.partSize);
  return { wallMs: performance.now() - started, steps };
}

process.on('message', (message: unknown) => {
  const parsed = clientRequestSchema.safeParse(message);
  if (!parsed.success) {
    process.stderr.write(`upload-client: not a bench request: ${JSON.stringify(message)}\n`);
    return;
  }
  const { id } = parsed.data;
  answer(parsed.data).then(
    (reply) => send({ id, ...reply }),
    (err: unknown) => send({ id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
process.once('disconnect', () => process.exit(0));

send({ ready: true, sourceBytes });
