// The open-redirect guard of browser flows. A returnTo is accepted only if it
// falls under one of the configured prefixes once both are parsed as URLs:
// same scheme, same host and port, and a path under the prefix's path at a
// segment boundary. Comparing parsed URLs rather than strings is what stops
// "https://app.example.com.evil.test", "https://app.example.com@evil.test",
// backslashes and "/app/../elsewhere"; and the caller redirects to the
// normalised URL returned here, never to the raw input.

export interface ReturnToPolicy {
  /** The normalised URL, or null if it is not allowed. */
  check(raw: string): string | null;
}

const MAX_LENGTH = 2048;

export function createReturnToPolicy(prefixes: readonly string[]): ReturnToPolicy {
  const allowed = prefixes.map((p) => new URL(p));
  return {
    check(raw) {
      if (raw.length > MAX_LENGTH) return null;
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return null; // relative or malformed
      }
      // Credentials confuse people reading the URL; the fragment is ours to fill.
      if (url.username !== '' || url.password !== '' || url.hash !== '') return null;
      return allowed.some((prefix) => under(url, prefix)) ? url.href : null;
    },
  };
}

function under(url: URL, prefix: URL): boolean {
  if (url.protocol !== prefix.protocol || url.host !== prefix.host) return false;
  if (url.pathname === prefix.pathname) return true;
  const base = prefix.pathname.endsWith('/') ? prefix.pathname : `${prefix.pathname}/`;
  return url.pathname.startsWith(base);
}
