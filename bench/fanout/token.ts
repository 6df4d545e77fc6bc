// An access token for a bench user, signed with the nodes' JWT_SECRET the way
// the nodes sign them (auth/): the bench's sockets sign in without the
// sign-in flow, which is not what the fan-out bench measures.
import { SignJWT } from 'jose';

export async function accessToken(secret: string, userId: string): Promise<string> {
  const issuedAt = Math.floor(Date.now() / 1000);
  return new SignJWT({ sid: `s_${userId.slice(2)}`, roles: ['user'] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuer('flock')
    .setAudience('flock')
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + 3600)
    .sign(new Uint8Array(Buffer.from(secret, 'base64')));
}
