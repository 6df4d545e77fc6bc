// tus 1.0 (https://tus.io/protocols/resumable-upload) under /uploads: the
// core protocol and the creation, creation-with-upload, termination and
// expiration extensions, as declared routes.
//   OPTIONS /uploads      capabilities (no token: clients and preflights ask before signing in)
//   POST    /uploads      creates an upload (Upload-Length, Upload-Metadata), with its first bytes if sent
//   HEAD    /uploads/:id  its offset, length and expiry
//   PATCH   /uploads/:id  bytes at Upload-Offset (application/offset+octet-stream)
//   DELETE  /uploads/:id  terminates it
// Every answer carries Tus-Resumable: 1.0.0, errors included; a request that
// speaks another version gets 412 with Tus-Version. Uploads are their
// owner's: anyone else's id is MEDIA_NOT_FOUND. The bytes go to S3 through
// media/upload-store.ts; errors are the framework's `{ error: { code, message } }`.
// On the uWS engine a Content-Length of 10^9 bytes or more drops the
// connection (uWS's parser refuses it): larger files go in several PATCHes
// (a tus client's chunkSize) or with chunked transfer encoding.
import { ROLES, type Session } from '../auth/session.ts';
import { FlockError, type ErrorCode } from '../kernel/errors.ts';
import { mediaIdInput } from '../kernel/ids.ts';
import { defineRoute, type RouteContext, type RouteDef, type RouteRequest, type RouteResult } from './define.ts';
import type { RouteServices } from './services.ts';
import { formatUploadMetadata, parseUploadMetadata } from '../media/tus-metadata.ts';
import type { UploadStore } from '../media/upload-store.ts';

export const TUS_VERSION = '1.0.0';
export const TUS_EXTENSIONS = 'creation,creation-with-upload,termination,expiration';
const OFFSET_STREAM = 'application/offset+octet-stream';
/** A ceiling for the framework's Content-Length check; the store reads no byte past Upload-Length. */
const MAX_BODY_BYTES = 64 * 1024 ** 3;

type Headers = [string, string][];
const RESUMABLE = [['tus-resumable', TUS_VERSION]] as const;
const signedIn = { kind: 'accessToken', roles: ROLES } as const;

export const tusRoutes: RouteDef[] = [
  defineRoute({
    method: 'OPTIONS',
    path: '/uploads',
    summary: 'tus capabilities: Tus-Version, Tus-Extension (creation, creation-with-upload, termination, expiration) and Tus-Max-Size.',
    auth: { kind: 'none' },
    body: { kind: 'none' },
    headers: RESUMABLE,
    rateLimit: { capacity: 30, perSecond: 2 },
    handler: async (_req, ctx) => ({
      status: 204,
      empty: true,
      headers: [
        ['tus-version', TUS_VERSION],
        ['tus-extension', TUS_EXTENSIONS],
        ['tus-max-size', String(uploadsOf(ctx).maxLength)],
      ],
    }),
  }),
  defineRoute({
    method: 'POST',
    path: '/uploads',
    summary:
      'Creates a tus upload of Upload-Length bytes (Upload-Metadata: filename, filetype, kind); 201 with its Location and Upload-Expires, and Upload-Offset when the body carried its first bytes (application/offset+octet-stream).',
    auth: signedIn,
    body: { kind: 'stream', maxBytes: MAX_BODY_BYTES },
    headers: RESUMABLE,
    rateLimit: { capacity: 60, perSecond: 1 },
    handler: async (req, ctx) => {
      const refused = refusedVersion(req);
      if (refused) return refused;
      const uploads = uploadsOf(ctx);
      const owner = ownerOf(req.session);
      if (req.header('upload-defer-length') !== '') throw new FlockError('MEDIA_UPLOAD_INVALID', 'Upload-Defer-Length is not supported: send Upload-Length');
      const length = count(req.header('upload-length'), 'Upload-Length');
      const metadata = parseUploadMetadata(req.header('upload-metadata'));
      const withBody = isOffsetStream(req.header('content-type'));
      if (!withBody && (req.body.declaredLength ?? (req.header('transfer-encoding') === '' ? 0 : 1)) > 0)
        return unsupportedContentType('A body sent with POST /uploads is the first bytes: Content-Type: application/offset+octet-stream');
      const created = await uploads.create(owner, { length, metadata });
      const headers: Headers = [['location', uploadUrl(req, created.mediaId)]];
      if (!withBody) return { status: 201, empty: true, headers: [...headers, expires(created.expiresAt)] };
      if (req.body.declaredLength === 0) return { status: 201, empty: true, headers: [...headers, ['upload-offset', '0'], expires(created.expiresAt)] };
      let offset: number;
      try {
        offset = (await uploads.write(owner, created.mediaId, 0, req.body)).offset;
      } catch (err) {
        // The upload exists; unless it is over (its head was refused), the client resumes it from what was stored.
        const stored = await uploads.status(owner, created.mediaId).catch(() => undefined);
        if (!stored) throw err;
        ctx.log.info({ err, mediaId: created.mediaId }, 'creation-with-upload stored part of its body');
        offset = stored.offset;
      }
      headers.push(['upload-offset', String(offset)]);
      if (offset < length) headers.push(expires(created.expiresAt));
      return { status: 201, empty: true, headers };
    },
  }),
  defineRoute({
    method: 'HEAD',
    path: '/uploads/:id',
    summary: "A tus upload's Upload-Offset, Upload-Length, Upload-Metadata and Upload-Expires (Cache-Control: no-store).",
    auth: signedIn,
    body: { kind: 'none' },
    headers: RESUMABLE,
    rateLimit: { capacity: 120, perSecond: 4 },
    handler: async (req, ctx) => {
      const refused = refusedVersion(req);
      if (refused) return refused;
      const status = await uploadsOf(ctx).status(ownerOf(req.session), mediaIdOf(req));
      const headers: Headers = [
        ['upload-offset', String(status.offset)],
        ['upload-length', String(status.length)],
        ['cache-control', 'no-store'],
      ];
      const metadata = formatUploadMetadata(status.metadata);
      if (metadata !== '') headers.push(['upload-metadata', metadata]);
      if (status.offset < status.length) headers.push(expires(status.expiresAt));
      return { status: 200, empty: true, headers };
    },
  }),
  defineRoute({
    method: 'PATCH',
    path: '/uploads/:id',
    summary:
      "Writes the body (application/offset+octet-stream) at Upload-Offset, which must be the upload's offset (409 otherwise, and while another request writes it); 204 with the new Upload-Offset.",
    auth: signedIn,
    body: { kind: 'stream', maxBytes: MAX_BODY_BYTES },
    headers: RESUMABLE,
    rateLimit: { capacity: 120, perSecond: 10 },
    handler: async (req, ctx) => {
      const refused = refusedVersion(req);
      if (refused) return refused;
      if (!isOffsetStream(req.header('content-type'))) return unsupportedContentType('PATCH bodies are Content-Type: application/offset+octet-stream');
      const offset = count(req.header('upload-offset'), 'Upload-Offset');
      const written = await uploadsOf(ctx).write(ownerOf(req.session), mediaIdOf(req), offset, req.body);
      const headers: Headers = [['upload-offset', String(written.offset)]];
      if (!written.completed) headers.push(expires(written.expiresAt));
      return { status: 204, empty: true, headers };
    },
  }),
  defineRoute({
    method: 'DELETE',
    path: '/uploads/:id',
    summary: 'Terminates a tus upload: its stored bytes are deleted and later requests for it answer MEDIA_UPLOAD_EXPIRED (410).',
    auth: signedIn,
    body: { kind: 'none' },
    headers: RESUMABLE,
    rateLimit: { capacity: 60, perSecond: 1 },
    handler: async (req, ctx) => {
      const refused = refusedVersion(req);
      if (refused) return refused;
      await uploadsOf(ctx).terminate(ownerOf(req.session), mediaIdOf(req), 'tus');
      return { status: 204, empty: true };
    },
  }),
];

function uploadsOf(ctx: RouteContext): UploadStore {
  const media: RouteServices['media'] = ctx.services.media;
  if (!media) throw new FlockError('HTTP_NOT_FOUND', 'This node serves no uploads');
  return media.uploads;
}

function ownerOf(session: Session | undefined): string {
  if (!session) throw new FlockError('AUTH_REQUIRED');
  return session.userId;
}

/** The path's upload id; one that cannot be a media id is nobody's upload. */
function mediaIdOf(req: RouteRequest): string {
  const parsed = mediaIdInput.safeParse(req.params.id);
  if (!parsed.success) throw new FlockError('MEDIA_NOT_FOUND');
  return parsed.data;
}

/** 412 with Tus-Version for a request that does not speak tus 1.0.0. */
function refusedVersion(req: RouteRequest): RouteResult | undefined {
  if (req.header('tus-resumable') === TUS_VERSION) return undefined;
  return refusal(412, 'MEDIA_UPLOAD_INVALID', `This server speaks Tus-Resumable: ${TUS_VERSION}`, [['tus-version', TUS_VERSION]]);
}

function unsupportedContentType(message: string): RouteResult {
  return refusal(415, 'MEDIA_UPLOAD_INVALID', message);
}

/** A refusal whose status tus fixes (412, 415), with the error body every route answers. */
function refusal(status: number, code: ErrorCode, message: string, headers: Headers = []): RouteResult {
  return { status, json: { error: { code, message } }, headers };
}

function isOffsetStream(contentType: string): boolean {
  return contentType.split(';')[0]?.trim().toLowerCase() === OFFSET_STREAM;
}

/** A tus length or offset header: a non-negative integer of at most 15 digits. */
function count(value: string, name: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new FlockError('MEDIA_UPLOAD_INVALID', `${name} must be a non-negative integer`);
  return Number(value);
}

function expires(at: Date): [string, string] {
  return ['upload-expires', at.toUTCString()];
}

/** The upload's URL: absolute when Host is a plain host[:port] (the scheme from X-Forwarded-Proto, else http), relative otherwise. */
function uploadUrl(req: RouteRequest, mediaId: string): string {
  const path = `/uploads/${mediaId}`;
  const host = req.header('host');
  if (!/^(?:[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/.test(host)) return path;
  const proto = req.header('x-forwarded-proto').split(',')[0]?.trim().toLowerCase();
  return `${proto === 'https' ? 'https' : 'http'}://${host}${path}`;
}
