// POST /webhooks/storage: the bucket's notifications (S3 event JSON, which
// MinIO sends too: { Records: [{ eventName, s3: { bucket: { name }, object:
// { key, size } } }] }), authenticated by the shared STORAGE_WEBHOOK_TOKEN
// that MinIO sends as `Authorization: Bearer <token>`, compared in constant
// time. An ObjectCreated record for the key of a direct upload not yet
// completed finishes it (media/direct-upload.ts: size check, sniff,
// lifecycle.complete, once however often it is reported); every other record
// is acknowledged and ignored. A backing service that fails answers 503 so
// the sender tries again.
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { invalid } from '../kernel/zod-issues.ts';
import { defineRoute } from './define.ts';
import type { RouteServices } from './services.ts';

const MAX_BODY_BYTES = 1024 * 1024;
const MAX_RECORDS = 1_000;

const notificationSchema = z.object({
  Records: z
    .array(
      z.object({
        eventName: z.string().max(256),
        s3: z.object({
          bucket: z.object({ name: z.string().max(255) }),
          object: z.object({ key: z.string().max(4096) }),
        }),
      }),
    )
    .max(MAX_RECORDS)
    .default([]),
});

export const storageWebhookRoutes = [
  defineRoute({
    method: 'POST',
    path: '/webhooks/storage',
    summary:
      'Bucket notifications from S3 or MinIO (Authorization: Bearer <STORAGE_WEBHOOK_TOKEN>): an ObjectCreated record finishes the direct upload of its key; the rest is acknowledged and ignored.',
    auth: { kind: 'signature', verify: async ({ header }, services) => verifyToken(header('authorization'), services) },
    body: { kind: 'raw', maxBytes: MAX_BODY_BYTES },
    rateLimit: { capacity: 600, perSecond: 100 },
    handler: async (req, { services }) => {
      const media = services.media;
      if (!media) throw new FlockError('HTTP_NOT_FOUND', 'This node serves no uploads');
      let json: unknown;
      try {
        json = JSON.parse(req.body.toString('utf8'));
      } catch {
        throw new FlockError('REQUEST_INVALID', 'The body is not JSON');
      }
      const parsed = notificationSchema.safeParse(json);
      if (!parsed.success) throw invalid('body', parsed.error);
      const counts = { settled: 0, refused: 0, ignored: 0 };
      for (const record of parsed.data.Records) {
        if (!/^(s3:)?ObjectCreated:/.test(record.eventName) || record.s3.bucket.name !== media.uploads.objects.bucket) {
          counts.ignored++;
          continue;
        }
        counts[await media.direct.objectCreated(objectKey(record.s3.object.key))]++;
      }
      return { status: 200, json: counts };
    },
  }),
];

/** AUTH_REQUIRED unless the header carries the configured token (and one is configured). */
function verifyToken(authorization: string, services: RouteServices): void {
  const token = services.media?.storageWebhookToken;
  const given = /^Bearer (\S{1,4096})$/i.exec(authorization)?.[1];
  // Digests have one length, so the comparison takes the same time whatever was sent.
  const digest = (value: string) => createHash('sha256').update(value).digest();
  if (!token || given === undefined || !timingSafeEqual(digest(given), digest(token)))
    throw new FlockError('AUTH_REQUIRED', 'Storage notifications carry Authorization: Bearer <STORAGE_WEBHOOK_TOKEN>');
}

/** Event keys are URL-encoded, spaces as '+'. */
function objectKey(encoded: string): string {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '));
  } catch {
    return encoded;
  }
}
