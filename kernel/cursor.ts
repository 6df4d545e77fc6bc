// Cursors of every social list: opaque to clients, (time, id) inside, so a
// page starts strictly after the last item of the previous one even when
// several items share a timestamp. A cursor that does not decode is a typed
// error, never a silent first page.
import { z } from 'zod';
import { FlockError } from './errors.ts';

const cursorBody = z.object({ t: z.number().int().min(0), id: z.string().min(1).max(200) }).strict();
export type Cursor = z.infer<typeof cursorBody>;

/** The request field: an opaque string, bounded. */
export const cursorInput = z
  .string()
  .min(1)
  .max(400)
  .regex(/^[A-Za-z0-9_-]+$/, 'must be a cursor returned by an earlier page');

/** The request field for page size. */
export const pageLimit = z.number().int().min(1).max(50).default(20);

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

export function decodeCursor(raw: string | undefined): Cursor | undefined {
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw new FlockError('REQUEST_CURSOR_INVALID');
  }
  const result = cursorBody.safeParse(parsed);
  if (!result.success) throw new FlockError('REQUEST_CURSOR_INVALID');
  return result.data;
}

/** A page of items and the cursor of the next one (null at the end). */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}
