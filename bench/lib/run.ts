// How every benchmark ends (run it, always clean up, exit 1 if either failed;
// a missed target is reported in the output, not through the exit code), and
// the small helpers every benchmark shares.
import type { Redis } from 'ioredis';

export async function runBenchmark(main: () => Promise<void>, cleanup: () => Promise<void>, progress: (line: string) => void): Promise<never> {
  let failed = false;
  try {
    await main();
  } catch (err) {
    failed = true;
    progress(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  } finally {
    await cleanup().catch((err: unknown) => {
      failed = true;
      progress(`cleanup failed: ${String(err)}`);
    });
  }
  process.exit(failed ? 1 : 0);
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** A positive integer parameter from the environment (BENCH_*), or its default. */
export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw ? Number(raw) : fallback;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

/** Deletes the keys matching a pattern (a run's own namespace) with SCAN, never KEYS; returns how many there were. */
export async function dropKeys(client: Pick<Redis, 'scan' | 'del'>, pattern: string): Promise<number> {
  let cursor = '0';
  let removed = 0;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) removed += await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  return removed;
}

/** A progress line on stderr. */
export function progress(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Runs `fn` over 0..n-1 with at most `limit` at once. */
export async function pool<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

/** One JSON line on stdout (the machine-readable result of a scenario). */
export function emit(result: object): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
