// The client's address as Flock trusts it, for the socket handshake and the
// HTTP routes alike: the connection's peer, or with TRUST_PROXY the first
// X-Forwarded-For entry (see README "Scaling out").
export function clientIp(peer: string, forwardedFor: string | string[] | undefined, trustProxy: boolean): string {
  if (trustProxy) {
    const first = (Array.isArray(forwardedFor) ? forwardedFor[0] : forwardedFor)?.split(',')[0]?.trim();
    if (first) return first.slice(0, 64);
  }
  return (peer || 'unknown').slice(0, 64);
}
