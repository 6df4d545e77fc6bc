// The bench's own bound on the server's per-user token buckets
// (server/rate-limit.ts), so that no request it sends is refused for rate.
// Seeding waits for a token before each request; a measured run reserves every
// request it will send before it starts (waiting, unmeasured, until each user
// has them all), so nothing in a measured run depends on refill timing.
//
// A bucket that starts full and loses one token per request j (arriving at
// s_j) holds, just before request k+1 arrives at t,
//
//   min(capacity, min over j <= k of capacity + rate * (t - s_j) - (k - j + 1))
//
// The server takes request j's token somewhere between sending (c_j) and the
// answer (a_j), so putting the send time for t and the answer time for s_j
// gives a lower bound: the server's bucket is never emptier than this one. A
// request still unanswered counts as answered now.
import type { RateLimit } from '../../channels/define.ts';

interface Bucket {
  /** Answer time of each request so far (performance.now()); Infinity while unanswered. */
  answers: number[];
}

export class RateBudget {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly limits: Readonly<Record<string, RateLimit>>) {}

  private limit(event: string): RateLimit {
    const limit = this.limits[event];
    if (!limit) throw new Error(`no rate limit known for ${event}`);
    return limit;
  }

  private bucket(subject: string, event: string): Bucket {
    const key = `${event}|${subject}`;
    let b = this.buckets.get(key);
    if (!b) this.buckets.set(key, (b = { answers: [] }));
    return b;
  }

  /** The least number of tokens the server's bucket can hold for a request sent at `now`. */
  private tokens(b: Bucket, event: string, now: number): number {
    const { capacity, perSecond } = this.limit(event);
    const k = b.answers.length;
    let least = capacity;
    b.answers.forEach((answered, i) => {
      const since = Math.max(0, now - Math.min(answered, now));
      least = Math.min(least, capacity + (perSecond * since) / 1000 - (k - i));
    });
    return least;
  }

  /** Waits until the bound shows `n` tokens for (subject, event); at most maxWaitMs. */
  private async waitFor(subject: string, event: string, n: number, maxWaitMs: number): Promise<number> {
    const { capacity, perSecond } = this.limit(event);
    if (n > capacity) throw new Error(`${n} ${event} requests by one user exceed its burst of ${capacity}: use more users or fewer requests each`);
    const b = this.bucket(subject, event);
    const started = performance.now();
    for (;;) {
      const now = performance.now();
      const missing = n - this.tokens(b, event, now);
      if (missing <= 0) return now - started;
      if (now - started > maxWaitMs)
        throw new Error(`${event}: ${subject} would need more than ${maxWaitMs} ms of refill before it can send ${n} requests without REQUEST_RATE_LIMITED`);
      await sleep(Math.max(10, Math.ceil((missing / perSecond) * 1000)));
    }
  }

  /** Sends one request of `subject` (seeding), after waiting for its token. */
  async spend<T>(subject: string, event: string, request: () => Promise<T>, maxWaitMs = 60_000): Promise<T> {
    await this.waitFor(subject, event, 1, maxWaitMs);
    const b = this.bucket(subject, event);
    const i = b.answers.push(Infinity) - 1;
    try {
      return await request();
    } finally {
      b.answers[i] = performance.now();
    }
  }

  /**
   * Takes every token a measured run needs (`counts`: subject -> requests),
   * after waiting until all of them are there; returns how long it waited.
   * Call settle() when the run is over.
   */
  async reserve(event: string, counts: ReadonlyMap<string, number>, maxWaitMs: number): Promise<number> {
    let waited = 0;
    for (const [subject, n] of counts) waited += await this.waitFor(subject, event, n, maxWaitMs - waited);
    for (const [subject, n] of counts) this.bucket(subject, event).answers.push(...Array<number>(n).fill(Infinity));
    return waited;
  }

  /** A reserved run is over: its requests count as answered now. */
  settle(event: string, subjects: Iterable<string>): void {
    const now = performance.now();
    for (const subject of subjects) {
      const b = this.bucket(subject, event);
      b.answers = b.answers.map((a) => (a === Infinity ? now : a));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
