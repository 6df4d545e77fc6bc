// Readiness: every backing service answers within a bound, and the node is
// neither starting nor draining. Served as /readyz; /healthz only says the
// process is up.
import { messageOf } from './errors.ts';
export type Lifecycle = 'starting' | 'ready' | 'draining';

export interface ServiceCheck {
  name: string;
  /** One line that says which server this is (URL, embedded, version). */
  description: string;
  check(): Promise<void>;
}

export interface ServiceStatus {
  ok: boolean;
  using: string;
  latencyMs: number;
  error?: string;
}

export interface ReadinessReport {
  ready: boolean;
  lifecycle: Lifecycle;
  services: Record<string, ServiceStatus>;
}

const CHECK_TIMEOUT_MS = 2_000;

export class Readiness {
  lifecycle: Lifecycle = 'starting';
  private readonly checks: ServiceCheck[] = [];

  add(check: ServiceCheck): void {
    this.checks.push(check);
  }

  async report(): Promise<ReadinessReport> {
    const entries = await Promise.all(
      this.checks.map(async (c): Promise<[string, ServiceStatus]> => {
        const started = performance.now();
        try {
          await withTimeout(c.check(), CHECK_TIMEOUT_MS);
          return [c.name, { ok: true, using: c.description, latencyMs: elapsed(started) }];
        } catch (err) {
          return [c.name, { ok: false, using: c.description, latencyMs: elapsed(started), error: messageOf(err) }];
        }
      }),
    );
    const services = Object.fromEntries(entries);
    const ready = this.lifecycle === 'ready' && entries.every(([, s]) => s.ok);
    return { ready, lifecycle: this.lifecycle, services };
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
