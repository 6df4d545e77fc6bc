// Test helpers shared by many files.
import type { Readable } from 'node:stream';
import { FlockRequestError } from '../../client/flock-client.ts';
import { FlockError } from '../../kernel/errors.ts';

/** 'ok', or the error code a promise rejected with (FlockError or a client FlockRequestError). */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof FlockError || err instanceof FlockRequestError) return err.code;
    return String(err);
  }
}

/** Calls `onEntry` for every JSON line a child process writes (its pino logs). */
export function onJsonLines(stream: Readable, onEntry: (entry: Record<string, unknown>) => void): void {
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // not a log line
      }
      onEntry(entry);
    }
  });
}
