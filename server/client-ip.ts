// The client's address as Flock trusts it, for the socket handshake and the
// HTTP routes alike: the connection's peer, or behind TRUST_PROXY hops of
// proxies the address the outermost trusted proxy saw. Each proxy appends the
// address it received the request from to X-Forwarded-For, so that address is
// the hops-th entry from the right; entries further left were written by the
// client and are never trusted (see README "Security model").

/** Longest address kept: an IPv6 address with a zone fits; anything longer is not an address. */
const MAX_IP_LENGTH = 64;
/** X-Forwarded-For entries read at most; a longer header is cut from the left (the client's side). */
const MAX_FORWARDED_ENTRIES = 32;

export function clientIp(peer: string, forwardedFor: string | string[] | undefined, trustedHops: number): string {
  if (trustedHops > 0 && forwardedFor !== undefined) {
    // Several X-Forwarded-For headers are one list, in order (RFC 9110 §5.3).
    const joined = Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor;
    const entries = joined
      .split(',')
      .slice(-MAX_FORWARDED_ENTRIES)
      .map((e) => e.trim())
      .filter((e) => e.length > 0);
    // Fewer entries than trusted hops: the request came through fewer proxies than configured, so the
    // leftmost entry is still one a trusted proxy wrote.
    const chosen = entries.length >= trustedHops ? entries[entries.length - trustedHops] : entries[0];
    if (chosen) return chosen.slice(0, MAX_IP_LENGTH);
  }
  return (peer || 'unknown').slice(0, MAX_IP_LENGTH);
}
