// How a payload that fails its schema is reported, the same way everywhere
// (socket requests, HTTP bodies, actor messages, job data, auth input): a
// FlockError whose message names each offending field and whose details list
// them as { path, message }.
import type { z } from 'zod';
import { FlockError, type ErrorCode } from './errors.ts';

export interface Issue {
  /** Dotted path of the field ('' for the payload itself). */
  path: string;
  message: string;
}

export function issuesOf(error: z.ZodError): Issue[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
}

/** `what: field: problem; other.field: problem`. */
export function describeIssues(what: string, issues: readonly Issue[]): string {
  return `${what}: ${issues.map((i) => `${i.path || 'payload'}: ${i.message}`).join('; ')}`;
}

/** The error a failed parse becomes: `code` (REQUEST_INVALID by default) naming the fields. */
export function invalid(what: string, error: z.ZodError, code: ErrorCode = 'REQUEST_INVALID'): FlockError {
  const issues = issuesOf(error);
  return new FlockError(code, describeIssues(what, issues), { details: { issues } });
}

/** Parses `input` (anything that crossed a trust boundary) or throws `invalid(what, ...)`. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string, code: ErrorCode = 'REQUEST_INVALID'): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw invalid(what, parsed.error, code);
}
