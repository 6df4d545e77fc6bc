// Post text: limits, and the hashtags and mentions parsed from it. Parsing is
// Unicode-aware: a hashtag is `#` followed by letters, marks, digits or `_`
// in any script (at least one letter), a mention is `@username`; neither may
// follow a letter, digit or `_` (so e-mail addresses and `a#b` are not tags).
// Hashtags are normalized (NFKC, lowercase) so #Café, #CAFÉ and #café are one.
import { z } from 'zod';

export const POST_MAX_CHARS = 2000;
export const MAX_MEDIA_PER_POST = 4;
export const MAX_HASHTAGS_PER_POST = 10;
export const MAX_MENTIONS_PER_POST = 10;
export const MAX_HASHTAG_CHARS = 64;

/** Post text: trimmed, 1 to POST_MAX_CHARS characters (code points). */
export const postText = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .refine((s) => [...s].length <= POST_MAX_CHARS, `must be at most ${POST_MAX_CHARS} characters`);

const HASHTAG = /(?<![\p{L}\p{M}\p{N}_&])#([\p{L}\p{M}\p{N}_]+)/gu;
const MENTION = /(?<![\p{L}\p{M}\p{N}_@.])@([A-Za-z0-9_]{3,30})(?![A-Za-z0-9_])/gu;

export function normalizeHashtag(tag: string): string {
  return tag.normalize('NFKC').toLowerCase();
}

/** A hashtag as a request field (without the `#`). */
export const hashtagInput = z
  .string()
  .transform((s) => normalizeHashtag(s.replace(/^#/, '')))
  .refine((s) => /^[\p{L}\p{M}\p{N}_]+$/u.test(s) && /\p{L}/u.test(s) && [...s].length <= MAX_HASHTAG_CHARS, 'must be a hashtag: letters, digits or _');

/** Distinct normalized hashtags in order of appearance, at most MAX_HASHTAGS_PER_POST. */
export function parseHashtags(text: string): string[] {
  const tags = new Set<string>();
  for (const match of text.matchAll(HASHTAG)) {
    const tag = normalizeHashtag(match[1]!);
    if (!/\p{L}/u.test(tag) || [...tag].length > MAX_HASHTAG_CHARS) continue;
    tags.add(tag);
    if (tags.size === MAX_HASHTAGS_PER_POST) break;
  }
  return [...tags];
}

/** Distinct lowercase usernames mentioned, in order, at most MAX_MENTIONS_PER_POST. */
export function parseMentions(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(MENTION)) {
    names.add(match[1]!.toLowerCase());
    if (names.size === MAX_MENTIONS_PER_POST) break;
  }
  return [...names];
}
