// Recognises a unique-index violation, however the server words it. MongoDB
// answers code 11000 and names the index (keyPattern, or "index: email_1" in
// the message). FerretDB v1 answers 11000 without naming anything on insert,
// and reports updates as an internal error quoting SQLite ("UNIQUE constraint
// failed: index '..._email_1'").

interface ServerError {
  code?: unknown;
  message?: unknown;
  keyPattern?: unknown;
}

function fields(err: unknown): { code: unknown; message: string; keyPattern: Record<string, unknown> } {
  const e: ServerError = typeof err === 'object' && err !== null ? err : {};
  const keyPattern = typeof e.keyPattern === 'object' && e.keyPattern !== null ? { ...e.keyPattern } : {};
  return { code: e.code, message: typeof e.message === 'string' ? e.message : '', keyPattern };
}

export function isDuplicateKey(err: unknown): boolean {
  const { code, message } = fields(err);
  return code === 11000 || /duplicate key|UNIQUE constraint failed/i.test(message);
}

/**
 * What the server says about the violated index (key names and index name,
 * space separated), '' when it names nothing; null when `err` is not a
 * unique-index violation.
 */
export function duplicateKeyIndex(err: unknown): string | null {
  if (!isDuplicateKey(err)) return null;
  const { message, keyPattern } = fields(err);
  return [...Object.keys(keyPattern), /\bindex:? '?([^\s']+)/.exec(message)?.[1] ?? ''].join(' ').trim();
}
