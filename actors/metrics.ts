// Prometheus metrics of the actor runtime, per actor type.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

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
    mailboxDepth: new Gauge({ name: 'flock_actor_mailbox_depth', help: 'Messages queued in active actors on this node', labelNames: ['type'], registers: [registry] }),
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
