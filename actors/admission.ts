// How many activations a node loads from MongoDB at once. After a lease loss
// (Redis restarted or flushed, the node paused) every actor comes back on its
// next message, all at once: unbounded, their claims queued in the database
// behind each other, ahead of the saves of the turns already running, and
// asks waited past their deadlines while the queue grew. Here at most `limit`
// claims run at a time; the others wait in order, a waiter whose request's
// deadline passes leaves the queue without touching the database, and beyond
// `maxWaiting` a request is refused at once with the retryable
// ACTOR_UNAVAILABLE, so recovery stays bounded by the database's pace.
import { FlockError } from '../kernel/errors.ts';

/** How long a refused client waits before trying again. */
const RETRY_AFTER_MS = 500;

interface Waiter {
  deadline: number;
  start(): void;
  skip(): void;
}

export class Admission {
  private running = 0;
  private readonly waiting: Waiter[] = [];

  constructor(
    private readonly limit: number,
    private readonly maxWaiting: number,
  ) {}

  /** Activations waiting for a slot now (for metrics and tests). */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Runs `load` once a slot is free. Resolves with undefined if `deadline`
   * passed before its turn came (nothing was run); throws ACTOR_UNAVAILABLE
   * at once when too many wait already.
   */
  async run<T>(deadline: number, load: () => Promise<T>): Promise<T | undefined> {
    if (this.running >= this.limit) {
      if (this.waiting.length >= this.maxWaiting) {
        throw new FlockError('ACTOR_UNAVAILABLE', `${this.waiting.length} actors are waiting to be activated on this node; retry shortly`, {
          details: { retryAfterMs: RETRY_AFTER_MS },
        });
      }
      const admitted = await new Promise<boolean>((resolve) => this.waiting.push({ deadline, start: () => resolve(true), skip: () => resolve(false) }));
      if (!admitted) return undefined;
    } else {
      this.running += 1;
    }
    try {
      return await load();
    } finally {
      this.next();
    }
  }

  /** Hands the slot to the first waiter still within its deadline (the slot stays taken), or frees it. */
  private next(): void {
    const now = Date.now();
    for (let waiter = this.waiting.shift(); waiter; waiter = this.waiting.shift()) {
      if (waiter.deadline > now) {
        waiter.start();
        return;
      }
      waiter.skip();
    }
    this.running -= 1;
  }
}
