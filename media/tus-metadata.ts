// tus's Upload-Metadata header: comma-separated `key base64value` pairs (the
// value may be absent), keys unique. Flock keeps three keys, `filename`,
// `filetype` and `kind`, and ignores the rest; the header is at most 4 KiB and
// each value it keeps has its own bound.
import { FlockError } from '../kernel/errors.ts';
import { MEDIA_KINDS } from './types.ts';
import type { UploadMetadata } from './upload-records.ts';

export const MAX_METADATA_BYTES = 4096;
const MAX_VALUE_CHARS = 255;
const PAIR = /^([\x21-\x2b\x2d-\x7e]{1,64})(?: ([A-Za-z0-9+/]*={0,2}))?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The metadata Flock keeps from an Upload-Metadata header; MEDIA_UPLOAD_INVALID when the header is malformed or a kept value is out of bounds. */
export function parseUploadMetadata(header: string): UploadMetadata {
  if (header.length > MAX_METADATA_BYTES) throw invalid(`Upload-Metadata is limited to ${MAX_METADATA_BYTES} bytes`);
  const metadata: UploadMetadata = {};
  if (header.trim() === '') return metadata;
  const seen = new Set<string>();
  for (const pair of header.split(',')) {
    const match = PAIR.exec(pair.trim());
    if (!match) throw invalid('Upload-Metadata pairs are a key, a space and a base64 value');
    const [, key = '', encoded = ''] = match;
    if (seen.has(key)) throw invalid(`Upload-Metadata names ${key} twice`);
    seen.add(key);
    if (key !== 'filename' && key !== 'filetype' && key !== 'kind') continue;
    const value = decode(key, encoded);
    if (key === 'kind') {
      const kind = MEDIA_KINDS.find((k) => k === value);
      if (kind === undefined) throw invalid(`Upload-Metadata kind is one of ${MEDIA_KINDS.join(', ')}`);
      metadata.kind = kind;
    } else {
      metadata[key] = value;
    }
  }
  return metadata;
}

/** The header for HEAD answers. */
export function formatUploadMetadata(metadata: UploadMetadata): string {
  return Object.entries(metadata)
    .map(([key, value]) => `${key} ${Buffer.from(String(value), 'utf8').toString('base64')}`)
    .join(',');
}

function decode(key: string, encoded: string): string {
  if (encoded.length % 4 !== 0) throw invalid(`Upload-Metadata ${key} is not base64`);
  let value: string;
  try {
    value = utf8.decode(Buffer.from(encoded, 'base64'));
  } catch {
    throw invalid(`Upload-Metadata ${key} is not UTF-8`);
  }
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (value.length === 0 || [...value].length > MAX_VALUE_CHARS || /[\x00-\x1f\x7f]/.test(value))
    throw invalid(`Upload-Metadata ${key} is 1 to ${MAX_VALUE_CHARS} characters without control characters`);
  return value;
}

function invalid(message: string): FlockError {
  return new FlockError('MEDIA_UPLOAD_INVALID', message);
}
