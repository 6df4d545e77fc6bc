// Prometheus metrics of the actor runtime, per actor type.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isFlockError } from '../kernel/errors.ts';

export type AskOutcome = 'ok' | 'error' | 'timeout' | 'busy' | 'invalid' | 'cycle' | 'unavailable';

export interface ActorMetrics {
  activations: Counter<'type'>;
  active: Gauge<'type'>;
  mailboxDepth: Gauge<'type'>;
  turnSeconds: Histogram<'type'>;
  asks: Counter<'type' | 'outcome'>;
}

export function createActorMetrics(registry: Registry): ActorMetrics {
  return {
    activations: new Counter({ name: 'flock_actor_activations_total', help: 'Actor activations on this node', labelNames: ['type'], registers: [registry] }),
    active: new Gauge({ name: 'flock_actor_active', help: 'Actors active on this node', labelNames: ['type'], registers: [registry] }),
    mailboxDepth: new Gauge({
      name: 'flock_actor_mailbox_depth',
      help: 'Messages queued in active actors on this node',
      labelNames: ['type'],
      registers: [registry],
    }),
    turnSeconds: new Histogram({
      name: 'flock_actor_turn_seconds',
      help: 'Time to process one message, persistence included',
      labelNames: ['type'],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    asks: new Counter({ name: 'flock_actor_asks_total', help: 'Asks sent from this node by outcome', labelNames: ['type', 'outcome'], registers: [registry] }),
  };
}

/** Ask counters by type and outcome, with the labelled children cached (an ask is a hot path). */
export class AskCounters {
  private readonly cache = new Map<string, Map<AskOutcome, { inc(): void }>>();

  constructor(private readonly metrics: ActorMetrics) {}

  /** Counts an ask of `type` by its outcome, or by the error it failed with. */
  count(type: string, outcome: unknown): void {
    const key: AskOutcome = isOutcome(outcome) ? outcome : outcomeOf(outcome);
    let byOutcome = this.cache.get(type);
    if (!byOutcome) this.cache.set(type, (byOutcome = new Map<AskOutcome, { inc(): void }>()));
    let counter = byOutcome.get(key);
    if (!counter) byOutcome.set(key, (counter = this.metrics.asks.labels(type, key)));
    counter.inc();
  }
}

const OUTCOMES: readonly string[] = ['ok', 'error', 'timeout', 'busy', 'invalid', 'cycle', 'unavailable'] satisfies AskOutcome[];

function isOutcome(value: unknown): value is AskOutcome {
  return typeof value === 'string' && OUTCOMES.includes(value);
}

function outcomeOf(err: unknown): AskOutcome {
  switch (isFlockError(err) ? err.code : 'SERVER_INTERNAL') {
    case 'ACTOR_TIMEOUT':
      return 'timeout';
    case 'ACTOR_BUSY':
      return 'busy';
    case 'ACTOR_CYCLE':
      return 'cycle';
    case 'ACTOR_UNAVAILABLE':
    case 'ACTOR_FENCED':
      return 'unavailable';
    default:
      return 'error';
  }
}
