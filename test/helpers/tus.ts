// A small tus 1.0 client over fetch, the way a stock mobile SDK talks to
// POST /uploads: create (optionally with the first bytes), HEAD for the
// offset, PATCH chunks, DELETE. Every call answers the raw Response.
export const TUS = { 'Tus-Resumable': '1.0.0' } as const;

const meta = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');

export interface TusTarget {
  base: string;
  token: string;
}

export async function tusCreate(to: TusTarget, length: number, metadata: Record<string, string> = {}, firstBytes?: Buffer): Promise<Response> {
  return fetch(`${to.base}/uploads`, {
    method: 'POST',
    headers: {
      ...TUS,
      authorization: `Bearer ${to.token}`,
      'upload-length': String(length),
      ...(Object.keys(metadata).length > 0 && { 'upload-metadata': meta(metadata) }),
      ...(firstBytes && { 'content-type': 'application/offset+octet-stream' }),
    },
    ...(firstBytes && { body: firstBytes }),
  });
}

/** The upload's path (`/uploads/<id>`) from a creation answer's Location. */
export function uploadPath(created: Response): string {
  const location = created.headers.get('location') ?? '';
  return new URL(location, 'http://x').pathname;
}

export async function tusHead(to: TusTarget, upload: string): Promise<Response> {
  return fetch(`${to.base}${upload}`, { method: 'HEAD', headers: { ...TUS, authorization: `Bearer ${to.token}` } });
}

export async function tusPatch(
  to: TusTarget,
  upload: string,
  offset: number,
  body: Buffer | ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${to.base}${upload}`, {
    method: 'PATCH',
    headers: { ...TUS, authorization: `Bearer ${to.token}`, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body,
    ...(signal && { signal }),
    // A stream body needs half duplex in Node's fetch.
    ...(!(body instanceof Buffer) && { duplex: 'half' }),
  });
}

/** Uploads `bytes` whole: creation, then PATCHes of `chunk` bytes; answers the media id. */
export async function tusUpload(to: TusTarget, bytes: Buffer, metadata: Record<string, string> = {}, chunk = 4 * 1024 * 1024): Promise<string> {
  const created = await tusCreate(to, bytes.length, metadata);
  if (created.status !== 201) throw new Error(`tus create answered ${created.status}: ${await created.text()}`);
  const upload = uploadPath(created);
  for (let offset = 0; offset < bytes.length; offset += chunk) {
    const res = await tusPatch(to, upload, offset, bytes.subarray(offset, offset + chunk));
    if (res.status !== 204) throw new Error(`tus PATCH at ${offset} answered ${res.status}: ${await res.text()}`);
  }
  return upload.split('/').pop() ?? '';
}
