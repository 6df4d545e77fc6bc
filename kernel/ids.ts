// The shapes of every id that crosses a trust boundary, as zod schemas: socket
// payloads, actor messages and stored documents all check ids against these,
// so an id accepted in one place is accepted everywhere. How ids are made
// (random, derived) stays with the domain that makes them.
import { z } from 'zod';

/** What may follow an actor type in an address, and what a personal stream or presence key may be. */
export const ACTOR_KEY = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Account ids: "u_" and up to 64 base64url characters (16 random bytes when Flock makes them). */
export const userIdInput = z.string().regex(/^u_[A-Za-z0-9_-]{1,64}$/, 'is not a user id');

/** Post ids: "p_" and 16 bytes, base64url (random, or derived from an idempotency key or a repost). */
export const postIdInput = z.string().regex(/^p_[A-Za-z0-9_-]{22}$/, 'must be a post id');

/** Conversation ids: "d_" (1:1, derived from the two members) or "g_" (group, random) and 16 bytes, base64url. */
export const conversationIdInput = z.string().regex(/^[dg]_[A-Za-z0-9_-]{22}$/, 'must be a conversation id');

/** Media ids from the upload API. */
export const mediaIdInput = z.string().regex(/^m_[A-Za-z0-9_-]{6,40}$/, 'must be a media id');

/** A key a client chooses so that a resend after a lost ack does the work once (posts, messages). */
export const idempotencyKeyInput = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, 'must be 8 to 64 letters, digits, _ or -');
