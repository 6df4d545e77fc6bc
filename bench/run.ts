// How every benchmark ends: run it, always clean up, exit 1 if either failed
// (a missed target is reported in the output, not through the exit code).
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
