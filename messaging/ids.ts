// Conversation ids: derived from the two members for a 1:1 (the same two
// people always get the same conversation), random for a group.
import { createHash, randomBytes } from 'node:crypto';

export function directConversationId(a: string, b: string): string {
  const [x, y] = [a, b].sort();
  return `d_${createHash('sha256').update(`direct\u0000${x}\u0000${y}`).digest().subarray(0, 16).toString('base64url')}`;
}

export function newGroupId(): string {
  return `g_${randomBytes(16).toString('base64url')}`;
}
