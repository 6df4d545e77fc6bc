// Micro-benchmark of the personal-stream append path (streams/personal-stream.ts)
// and the sender quota charged before it (streams/sender-quota.ts), against
// the Redis at REDIS_URL (default redis://127.0.0.1:6379; an idle one, since
// the Redis-side figure is read from INFO commandstats):
//
//   append               ~400-byte events over 100 users' streams, within every bound
//   append-count-trim    streams held at maxEvents (100): every append trims one by count
//   append-byte-trim     streams held at maxBytes (64 KiB): every append trims by bytes
//   quota-5, quota-255   one charge for an event to 5 (a small group) or 255 recipients
//
// Each scenario runs 16 calls outstanding after a warm-up that fills the
// streams. `node --import tsx bench/stream-append.ts`; stdout: one JSON line
// per scenario (client ops/s, and Redis CPU time per script call in µs),
// stderr: progress. Keys live under a random prefix, dropped at the end.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createPersonalStream } from '../streams/personal-stream.ts';
import { createSenderQuota } from '../streams/sender-quota.ts';
import { dropKeys, emit, intEnv, pool, progress, round, runBenchmark } from './lib/run.ts';

const N = intEnv('BENCH_APPENDS', 20_000);
const WARMUP = 2_000;
const CONCURRENCY = 16;
const USERS = 100;
const data = { conversationId: 'g_bench', message: { seq: 1, text: 'x'.repeat(300), senderId: 'u_bench' } };

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `bench${randomBytes(4).toString('hex')}`;

/** Calls and CPU time of EVALSHA so far (INFO commandstats). */
async function scriptStats(): Promise<{ calls: number; usec: number }> {
  const line = (await redis.info('commandstats')).split('\n').find((l) => l.startsWith('cmdstat_evalsha:')) ?? '';
  return { calls: Number(/calls=(\d+)/.exec(line)?.[1] ?? 0), usec: Number(/usec=(\d+)/.exec(line)?.[1] ?? 0) };
}

async function scenario(name: string, op: (i: number) => Promise<unknown>): Promise<void> {
  await pool(WARMUP, CONCURRENCY, op);
  const before = await scriptStats();
  const started = performance.now();
  await pool(N, CONCURRENCY, op);
  const elapsed = performance.now() - started;
  const after = await scriptStats();
  const result = {
    scenario: name,
    calls: N,
    concurrency: CONCURRENCY,
    opsPerSec: round(N / (elapsed / 1000)),
    redisUsPerScript: round((after.usec - before.usec) / Math.max(1, after.calls - before.calls), 1),
  };
  progress(JSON.stringify(result));
  emit(result);
}

await runBenchmark(
  async () => {
    const append = (settings: Parameters<typeof createPersonalStream>[0]['settings'], tag: string) => {
      const stream = createPersonalStream({ redis, prefix: `${prefix}:${tag}`, settings });
      return (i: number) => stream.append(`u_${i % USERS}`, { type: 'bench:event', data });
    };
    await scenario('append', append({}, 'a'));
    await scenario('append-count-trim', append({ maxEvents: 100 }, 'c'));
    await scenario('append-byte-trim', append({ maxBytes: 65_536 }, 'b'));
    const quota = createSenderQuota({ redis, prefix: `${prefix}:q`, settings: { bytesPerMinute: 2 ** 40, bytesPerRecipient: 2 ** 40 } });
    const recipients = (n: number) => Array.from({ length: n }, (_, i) => `r_${i}`);
    const five = recipients(5);
    const many = recipients(255);
    await scenario('quota-5', (i) => quota.charge(`s_${i % USERS}`, [{ to: five, bytes: 420 }]));
    await scenario('quota-255', (i) => quota.charge(`s_${i % USERS}`, [{ to: many, bytes: 420 }]));
  },
  async () => {
    await dropKeys(redis, `${prefix}:*`);
    redis.disconnect();
  },
  progress,
);
