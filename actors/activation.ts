// One active actor on this node: its state, its mailbox and its turn loop.
// Turns run one at a time (an awaiting handler keeps the mailbox closed), and
// state reaches MongoDB only through fenced, versioned writes.
import { FlockError, isFlockError } from '../kernel/errors.ts';
import type { ActorContext, ActorType } from './define.ts';
import type { ActorMetrics } from './metrics.ts';
import type { StateStore } from './state-store.ts';
import type { Logger } from '../kernel/logger.ts';

export interface Turn {
  message: string;
  input: unknown;
  /** Call chain of the sender, for cycle detection of asks made by this turn. */
  chain: string[];
  deadline: number;
  hops: number;
  resolve(output: unknown): void;
  reject(err: unknown): void;
}

export type CloseReason = 'passivate' | 'shutdown' | 'lease-lost' | 'fenced';

/** What an activation needs from its runtime. */
export interface ActivationHost {
  readonly store: StateStore;
  readonly log: Logger;
  readonly metrics: ActorMetrics;
  leaseValid(): boolean;
  /** Builds the handler context of an activation, once; it reads the current turn. */
  context(activation: Activation): ActorContext<unknown>;
  /** Called when a write was refused: this activation is stale. */
  fenced(activation: Activation): void;
  /** Called when the node lease is no longer valid. */
  leaseLost(): void;
  /** Sends a turn that cannot run here back through routing. */
  reroute(turn: Turn): void;
}

export class Activation {
  status: 'active' | 'closing' | 'closed' = 'active';
  lastActive = Date.now();
  /** Set by the runtime when it starts deactivating this activation. */
  ended: Promise<void> | undefined;
  readonly timers = new Map<string, NodeJS.Timeout>();
  /** The turn being handled and its staged state (turns never overlap). */
  currentTurn: Turn | undefined;
  readonly staged: { state: unknown; changed: boolean; effects: Array<() => Promise<void>> } = { state: undefined, changed: false, effects: [] };
  /** Whether the definition's onActivate hook has completed for this activation. */
  private activated = false;
  private ctx: ActorContext<unknown> | undefined;
  private readonly depthGauge: { inc(n?: number): void; dec(n?: number): void };
  private readonly turnHistogram: { observe(v: number): void };
  private readonly queue: Turn[] = [];
  private running: Promise<void> | undefined;
  private dirty = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(
    readonly def: ActorType,
    readonly key: string,
    readonly address: string,
    readonly epoch: number,
    private version: number,
    private state: unknown,
    private readonly host: ActivationHost,
    private readonly capacity: number,
  ) {
    this.depthGauge = host.metrics.mailboxDepth.labels(def.type);
    this.turnHistogram = host.metrics.turnSeconds.labels(def.type);
  }

  get depth(): number {
    return this.queue.length;
  }

  get idle(): boolean {
    return this.queue.length === 0 && this.running === undefined;
  }

  submit(turn: Turn): void {
    if (this.queue.length >= this.capacity) {
      throw new FlockError('ACTOR_BUSY', `${this.address}: mailbox full (${this.capacity} messages)`);
    }
    this.queue.push(turn);
    this.depthGauge.inc();
    this.lastActive = Date.now();
    this.running ??= this.pump();
  }

  /** Stops taking turns, flushes cached state, and hands queued turns back for rerouting. */
  close(reason: CloseReason): Promise<void> {
    this.closing ??= (async () => {
      this.status = 'closing';
      await this.running;
      for (const timer of this.timers.values()) clearTimeout(timer);
      this.timers.clear();
      clearTimeout(this.flushTimer);
      if (reason !== 'fenced') await this.flush().catch((err: unknown) => this.host.log.warn({ err, actor: this.address }, 'final flush failed'));
      this.status = 'closed';
      const queued = this.queue.splice(0);
      this.depthGauge.dec(queued.length);
      for (const turn of queued) this.host.reroute(turn);
    })();
    return this.closing;
  }

  /** Writes cached state if it changed (fenced); no-op for durable actors. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (!this.dirty) return;
      const snapshot = this.state;
      this.dirty = false;
      const ok = await this.host.store.save(this.def.type, this.key, this.epoch, this.version, snapshot).catch((err: unknown) => {
        this.dirty = true;
        throw err;
      });
      if (!ok) {
        this.host.fenced(this);
        return;
      }
      this.version += 1;
    });
    return this.flushing;
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0 && this.status === 'active') {
      const turn = this.queue.shift()!;
      this.depthGauge.dec();
      await this.run(turn);
    }
    this.running = undefined;
    this.lastActive = Date.now();
  }

  private async run(turn: Turn): Promise<void> {
    if (Date.now() > turn.deadline) {
      turn.reject(new FlockError('ACTOR_TIMEOUT', `${this.address}: ${turn.message} expired before it ran`));
      return;
    }
    if (!this.host.leaseValid()) {
      // This node may have been presumed dead: never act on possibly stale state.
      this.host.reroute(turn);
      this.host.leaseLost();
      return;
    }
    const started = performance.now();
    const staged = this.staged;
    this.currentTurn = turn;
    this.ctx ??= this.host.context(this);
    try {
      if (!this.activated && this.def.onActivate) {
        staged.state = this.state;
        staged.changed = false;
        staged.effects = [];
        try {
          await this.def.onActivate(this.ctx);
        } catch (err) {
          throw new FlockError('ACTOR_UNAVAILABLE', `${this.address}: activation hook failed`, { cause: err });
        }
        if (staged.changed && !(await this.commit(staged.state))) {
          turn.reject(new FlockError('ACTOR_FENCED', `${this.address}: ownership moved to another node`));
          return;
        }
        await this.runEffects(staged.effects);
      }
      this.activated = true;
      staged.state = this.state;
      staged.changed = false;
      staged.effects = [];
      const handler = this.def.handlers[turn.message]!;
      const raw = await handler(this.ctx, turn.input);
      const parsed = this.def.messages[turn.message]!.output.safeParse(raw);
      if (!parsed.success) {
        throw new FlockError('ACTOR_HANDLER_FAILED', `${this.address}: ${turn.message} returned output that fails its schema`);
      }
      if (staged.changed && !(await this.commit(staged.state))) {
        turn.reject(new FlockError('ACTOR_FENCED', `${this.address}: ownership moved to another node`));
        return;
      }
      await this.runEffects(staged.effects);
      turn.resolve(parsed.data);
    } catch (err) {
      if (!isFlockError(err)) this.host.log.error({ err, actor: this.address, message: turn.message }, 'actor handler failed');
      turn.reject(isFlockError(err) ? err : new FlockError('ACTOR_HANDLER_FAILED', `${this.address}: ${turn.message} failed`, { cause: err }));
    } finally {
      this.currentTurn = undefined;
      this.turnHistogram.observe((performance.now() - started) / 1000);
      this.lastActive = Date.now();
    }
  }

  private async runEffects(effects: Array<() => Promise<void>>): Promise<void> {
    this.staged.effects = [];
    for (const effect of effects) {
      try {
        await effect();
      } catch (err) {
        // The state is saved but its effects are not all done: redo them (onActivate) before the next turn.
        this.activated = false;
        if (isFlockError(err)) throw err;
        throw new FlockError('ACTOR_UNAVAILABLE', `${this.address}: an effect of ${this.currentTurn?.message ?? 'the turn'} failed after its state was saved`, { cause: err });
      }
    }
  }

  /** Applies a turn's new state; false if this activation turned out to be stale. */
  private async commit(next: unknown): Promise<boolean> {
    const policy = this.def.persistence;
    if (policy.kind === 'durable') {
      let ok: boolean;
      try {
        ok = await this.host.store.save(this.def.type, this.key, this.epoch, this.version, next);
      } catch (err) {
        throw new FlockError('ACTOR_UNAVAILABLE', `${this.address}: state could not be saved`, { cause: err });
      }
      if (!ok) {
        this.host.fenced(this);
        return false;
      }
      this.version += 1;
      this.state = next;
      return true;
    }
    this.state = next;
    this.dirty = true;
    this.armFlush(policy.flushAfterMs);
    return true;
  }

  private armFlush(delayMs: number): void {
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flush().catch((err: unknown) => {
        this.host.log.warn({ err, actor: this.address }, 'write-behind flush failed; retrying');
        if (this.status === 'active') this.armFlush(delayMs);
      });
    }, delayMs);
  }
}
