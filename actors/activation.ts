// One active actor on this node: its state, its mailbox, its turn loop and
// the effects of its last commit. Turns run one at a time (an awaiting
// handler keeps the mailbox closed); state reaches MongoDB only through the
// fenced writes of its StateStore, and effects run only after the write that
// recorded them.
//
// Effects and crashes: a turn's effects are saved with its state, then run
// before the reply. They stay listed in the stored state until the next write
// replaces them (the next commit, or the final write when the actor
// passivates), so a crash anywhere after the save leaves them to be redone
// when the actor next activates: at least once, never lost. Until they are
// known done, no other turn runs. Effects that failed (a backing service was
// away) are redone before the next turn, and also by themselves when the
// mailbox is empty, after 1 s, 2 s, ... up to 30 s, so that what a turn saved
// (a count) and what its effects write (the edges counted) agree again
// without waiting for another message.
import { FlockError, isFlockError, serviceUnavailable } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import type { ActorContext, ActorType } from './define.ts';
import type { ActorMetrics } from './metrics.ts';
import type { StateStore } from './state-store.ts';

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

/** First wait before effects left undone are redone without a turn; doubled while they fail, up to REDO_MAX_MS. */
const REDO_FIRST_MS = 1_000;
const REDO_MAX_MS = 30_000;

export type CloseReason = 'passivate' | 'shutdown' | 'lease-lost' | 'fenced';

/** What an activation needs from its runtime. */
export interface ActivationHost {
  readonly log: Logger;
  readonly metrics: ActorMetrics;
  leaseValid(): boolean;
  /** Builds the handler context of an activation, once; it reads the current turn and the staged state. */
  context(activation: Activation): ActorContext<unknown, unknown>;
  /** Called when a write was refused: this activation is stale. */
  fenced(activation: Activation): void;
  /** Called when the node lease is no longer valid; `activation` found out, and is dropped with every other one. */
  leaseLost(activation: Activation): void;
  /** Sends a turn that cannot run here back through routing. */
  reroute(turn: Turn): void;
}

/** What the turn in progress has done so far: its state, whether it changed, the effects it recorded. */
export interface Staged {
  state: unknown;
  changed: boolean;
  effects: unknown[];
  /** True while an effect runs: effects record no effects. */
  inEffect: boolean;
}

export class Activation {
  status: 'active' | 'closing' | 'closed' = 'active';
  lastActive = Date.now();
  /** Set by the runtime when it starts deactivating this activation. */
  ended: Promise<void> | undefined;
  readonly timers = new Map<string, NodeJS.Timeout>();
  /** The turn being handled (turns never overlap). */
  currentTurn: Turn | undefined;
  readonly staged: Staged = { state: undefined, changed: false, effects: [], inEffect: false };
  /** Whether the redo of left-over effects and the onActivate hook have completed for this activation. */
  private activated = false;
  /** Effects of the last commit, and whether they may still be undone. */
  private pending: unknown[];
  private pendingUndone: boolean;
  /** Whether the stored state still lists effects (done or not). */
  private pendingStored: boolean;
  private ctx: ActorContext<unknown, unknown> | undefined;
  private readonly depthGauge: { inc(n?: number): void; dec(n?: number): void };
  private readonly turnHistogram: { observe(v: number): void };
  private readonly queue: Turn[] = [];
  private running: Promise<void> | undefined;
  /** The redo of effects left undone, between turns (see armRedo). */
  private redoTimer: NodeJS.Timeout | undefined;
  private redoDelayMs = 0;
  private redoDue = false;
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
    /** Effects the stored state lists, parsed. */
    pending: unknown[],
    private readonly store: StateStore,
    private readonly host: ActivationHost,
    private readonly capacity: number,
    /** The stored effects are known done (this node ran them before it lost its lease): no redo. */
    effectsDone = false,
  ) {
    this.pending = pending;
    this.pendingUndone = pending.length > 0 && !effectsDone;
    this.pendingStored = pending.length > 0;
    this.depthGauge = host.metrics.mailboxDepth.labels(def.type);
    this.turnHistogram = host.metrics.turnSeconds.labels(def.type);
  }

  get depth(): number {
    return this.queue.length;
  }

  get idle(): boolean {
    return this.queue.length === 0 && this.running === undefined;
  }

  /** The version the state gets at the next commit. */
  get nextVersion(): number {
    return this.version + 1;
  }

  /** The stored state's version, if the effects it lists are all done (a passivation's final write would clear them); else undefined. */
  get doneAtVersion(): number | undefined {
    return this.pendingStored && !this.pendingUndone ? this.version : undefined;
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

  /** Stops taking turns, writes what is left to write, and hands queued turns back for rerouting. */
  close(reason: CloseReason): Promise<void> {
    this.closing ??= (async () => {
      this.status = 'closing';
      await this.running;
      for (const timer of this.timers.values()) clearTimeout(timer);
      this.timers.clear();
      clearTimeout(this.flushTimer);
      clearTimeout(this.redoTimer);
      if (reason !== 'fenced') await this.finalWrite(reason).catch((err: unknown) => this.host.log.warn({ err, actor: this.address }, 'final write failed'));
      this.status = 'closed';
      const queued = this.queue.splice(0);
      this.depthGauge.dec(queued.length);
      for (const turn of queued) this.host.reroute(turn);
    })();
    return this.closing;
  }

  /** Writes cached state if it changed (fenced); no-op for durable and document actors. */
  flush(): Promise<void> {
    // After a failed flush (its caller got the error) the next one tries again: the chain must not stay rejected.
    this.flushing = this.flushing
      .catch(() => undefined)
      .then(async () => {
        if (!this.dirty) return;
        const snapshot = this.state;
        this.dirty = false;
        const ok = await this.store.save(this.key, this.epoch, this.version, snapshot, snapshot, []).catch((err: unknown) => {
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

  /**
   * Cached state, and the list of effects that are done (so the next
   * activation does not redo them); an activation that never saved anything
   * drops its claim instead. After a lease loss only the cached state: every
   * actor of the node would write at once (seconds of queued writes on the
   * embedded database, asks timing out behind them). The runtime remembers
   * `doneAtVersion` instead, so the activation that comes back here skips the
   * redo; one on another node redoes the effects (at least once, as after a
   * crash), and passivating that one releases a claim without state.
   */
  private async finalWrite(reason: CloseReason): Promise<void> {
    await this.flush();
    if (reason === 'lease-lost') return;
    if (this.version === 0) {
      await this.store.release?.(this.key, this.epoch);
      return;
    }
    if (!this.pendingStored || this.pendingUndone) return;
    if (await this.store.save(this.key, this.epoch, this.version, this.state, this.state, [])) {
      this.version += 1;
      this.pendingStored = false;
    }
  }

  private async pump(): Promise<void> {
    if (this.redoDue) {
      this.redoDue = false;
      await this.redo();
    }
    while (this.queue.length > 0 && this.status === 'active') {
      const turn = this.queue.shift()!;
      this.depthGauge.dec();
      await this.run(turn);
    }
    this.running = undefined;
    this.lastActive = Date.now();
    if (!this.activated && this.pendingUndone && this.status === 'active') this.armRedo();
  }

  /** Schedules a redo of the effects left undone, backing off while it fails; a turn that comes first redoes them itself. */
  private armRedo(): void {
    if (this.redoTimer !== undefined) return;
    this.redoDelayMs = Math.min(this.redoDelayMs === 0 ? REDO_FIRST_MS : 2 * this.redoDelayMs, REDO_MAX_MS);
    this.redoTimer = setTimeout(() => {
      this.redoTimer = undefined;
      if (this.status !== 'active' || this.activated) return;
      this.redoDue = true;
      this.running ??= this.pump();
    }, this.redoDelayMs);
    this.redoTimer.unref();
  }

  /** Runs the effects left undone (and the activation hook), as the next turn would before its handler. */
  private async redo(): Promise<void> {
    if (this.activated || !this.host.leaseValid()) return;
    try {
      await this.activate((this.ctx ??= this.host.context(this)));
      this.redoDelayMs = 0;
    } catch (err) {
      this.host.log.warn({ err, actor: this.address }, 'effects left undone could not be redone yet; trying again later');
    }
  }

  private async run(turn: Turn): Promise<void> {
    if (Date.now() > turn.deadline) {
      turn.reject(new FlockError('ACTOR_TIMEOUT', `${this.address}: ${turn.message} expired before it ran`));
      return;
    }
    if (!this.host.leaseValid()) {
      // This node may have been presumed dead: never act on possibly stale state. Losing the lease
      // first marks this activation closing (even one activated while an earlier loss was being
      // handled), so the rerouted turn waits for a new owner instead of landing here again: that
      // re-entered submit -> pump -> run -> reroute until the stack overflowed.
      this.host.leaseLost(this);
      this.host.reroute(turn);
      return;
    }
    const started = performance.now();
    this.currentTurn = turn;
    const ctx = (this.ctx ??= this.host.context(this));
    try {
      if (!this.activated) await this.activate(ctx);
      this.stage();
      const handler = this.def.handlers[turn.message]!;
      const raw = await handler(ctx, turn.input);
      const parsed = this.def.messages[turn.message]!.output.safeParse(raw);
      if (!parsed.success) {
        throw new FlockError('ACTOR_HANDLER_FAILED', `${this.address}: ${turn.message} returned output that fails its schema`);
      }
      if (!(await this.commitStaged())) {
        turn.reject(new FlockError('ACTOR_FENCED', `${this.address}: ownership moved to another node`));
        return;
      }
      await this.runEffects(ctx, 'turn');
      turn.resolve(parsed.data);
    } catch (err) {
      // A backing service that is away (a read in the handler) is SERVICE_UNAVAILABLE: retryable, and no bug to log.
      const failure = isFlockError(err) ? err : serviceUnavailable(err);
      if (!failure) this.host.log.error({ err, actor: this.address, message: turn.message }, 'actor handler failed');
      turn.reject(failure ?? new FlockError('ACTOR_HANDLER_FAILED', `${this.address}: ${turn.message} failed`, { cause: err }));
    } finally {
      this.currentTurn = undefined;
      this.turnHistogram.observe((performance.now() - started) / 1000);
      this.lastActive = Date.now();
    }
  }

  /** Before the first turn: redo what the last commit may have left undone, then the type's hook. */
  private async activate(ctx: ActorContext<unknown, unknown>): Promise<void> {
    await this.runEffects(ctx, 'redo');
    if (this.def.onActivate) {
      this.stage();
      try {
        await this.def.onActivate(ctx);
      } catch (err) {
        throw serviceUnavailable(err) ?? new FlockError('ACTOR_UNAVAILABLE', `${this.address}: activation hook failed`, { cause: err });
      }
      if (!(await this.commitStaged())) throw new FlockError('ACTOR_FENCED', `${this.address}: ownership moved to another node`);
      await this.runEffects(ctx, 'redo');
    }
    this.activated = true;
  }

  private stage(): void {
    const staged = this.staged;
    staged.state = this.state;
    staged.changed = false;
    staged.effects = [];
  }

  /** Commits the staged state and effects if the turn made any; false if this activation turned out to be stale. */
  private commitStaged(): Promise<boolean> {
    const { staged } = this;
    if (!staged.changed && staged.effects.length === 0) return Promise.resolve(true);
    return this.commit(staged.state, staged.effects);
  }

  private async commit(next: unknown, effects: unknown[]): Promise<boolean> {
    const policy = this.def.persistence;
    if (policy.kind === 'cached') {
      this.state = next;
      this.dirty = true;
      this.armFlush(policy.flushAfterMs);
      return true;
    }
    const stored = effects.map((effect) => this.serialize(effect));
    let ok: boolean;
    try {
      ok = await this.store.save(this.key, this.epoch, this.version, this.state, next, stored);
    } catch (err) {
      throw serviceUnavailable(err) ?? new FlockError('ACTOR_UNAVAILABLE', `${this.address}: state could not be saved`, { cause: err });
    }
    if (!ok) {
      this.host.fenced(this);
      return false;
    }
    this.version += 1;
    this.state = next;
    this.pending = effects;
    this.pendingUndone = effects.length > 0;
    this.pendingStored = stored.length > 0;
    return true;
  }

  private serialize(effect: unknown): string {
    const schema = this.def.effects?.schema;
    if (!schema) throw new Error(`${this.def.type} records an effect but declares no effects`);
    // Checked now: an effect that could not be read back would stop the actor at its next activation.
    return JSON.stringify(schema.parse(effect));
  }

  /**
   * Runs the effects of the last commit if they may be undone. `turn`: the
   * sender gets an effect's error. `redo` (before the first turn): an effect
   * that compensated (set a state and threw) has done its part, and the turn
   * that woke the actor goes on.
   */
  private async runEffects(ctx: ActorContext<unknown, unknown>, mode: 'turn' | 'redo'): Promise<void> {
    if (!this.pendingUndone) return;
    const { staged } = this;
    const run = this.def.effects?.run;
    if (!run) throw new FlockError('ACTOR_STATE_INVALID', `${this.address}: effects are stored but the type declares none`);
    for (const effect of this.pending) {
      this.stage();
      staged.inEffect = true;
      try {
        await run(ctx, effect);
      } catch (err) {
        if (staged.changed) {
          // Compensation: the effect cannot succeed, and the state it set replaces whatever was left to do.
          staged.inEffect = false;
          if (!(await this.commit(staged.state, []))) throw new FlockError('ACTOR_FENCED', `${this.address}: ownership moved to another node`);
          if (mode === 'redo') return;
          throw err;
        }
        // The state is saved but its effects are not all done: redo them before the next turn.
        this.activated = false;
        if (isFlockError(err)) throw err;
        throw (
          serviceUnavailable(err) ??
          new FlockError('ACTOR_UNAVAILABLE', `${this.address}: an effect of ${this.currentTurn?.message ?? 'the turn'} failed after its state was saved`, {
            cause: err,
          })
        );
      } finally {
        staged.inEffect = false;
      }
    }
    this.pendingUndone = false;
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
