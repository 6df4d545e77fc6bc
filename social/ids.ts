// Post ids. Random for an ordinary post; derived for a post the client names
// with an idempotency key (a resend after a lost ack finds the same post) and
// for reposts (one repost per user and post, and the viewer's "reposted" state
// is a point lookup).
import { createHash, randomBytes } from 'node:crypto';

export function newPostId(): string {
  return `p_${randomBytes(16).toString('base64url')}`;
}

function derived(...parts: string[]): string {
  return `p_${createHash('sha256').update(parts.join('\u0000')).digest().subarray(0, 16).toString('base64url')}`;
}

export function keyedPostId(authorId: string, idempotencyKey: string): string {
  return derived('post', authorId, idempotencyKey);
}

export function repostId(userId: string, postId: string): string {
  return derived('repost', userId, postId);
}
