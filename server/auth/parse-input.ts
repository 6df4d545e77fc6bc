// Validation of what enters the auth layer: callers (socket handlers, OAuth
// callbacks) pass `unknown`, and a mismatch becomes REQUEST_INVALID naming the
// offending fields, in the same shape the dispatcher uses for socket payloads.
import type { z } from 'zod';
import { FlockError } from '../errors.ts';

export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  throw new FlockError('REQUEST_INVALID', `${what}: ${issues.map((i) => `${i.path || 'input'}: ${i.message}`).join('; ')}`, {
    details: { issues },
  });
}
