// Who may read operator data over HTTP (/metrics, the detail of /readyz):
// with OPS_TOKEN set, requests that carry it as a bearer token; without it,
// everyone (a deployment keeps these paths internal at its proxy, as
// deploy/nginx.conf does).
import { createHash, timingSafeEqual } from 'node:crypto';

export function opsAccess(token: string | undefined): ((authorization: string) => boolean) | undefined {
  if (token === undefined) return undefined;
  const expected = digest(`Bearer ${token}`);
  // Digests have one length, so the comparison takes the same time whatever was sent.
  return (authorization) => timingSafeEqual(digest(authorization), expected);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
