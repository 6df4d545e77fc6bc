// The actor runtime of one node: addresses actors by type and key, activates
// each on exactly one node (directory + node lease in Redis, fencing epochs in
// MongoDB), routes messages to wherever an actor lives over Redis pub/sub, and
// passivates idle actors. See README "Actor runtime" for the whole protocol.
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import { Registry } from 'prom-client';
import { FlockError, isFlockError, toErrorBody, type ErrorCode } from '../server/errors.ts';
import type { Logger } from '../server/logger.ts';
import { createRedis, untilReady, type Redis } from '../server/redis.ts';
import { Activation, type ActivationHost, type CloseReason, type Turn } from './activation.ts';
import { ACTOR_KEY, type ActorContext, type ActorType, type InputOf, type MessageName, type OutputOf } from './define.ts';
import { Directory } from './directory.ts';
import { MAX_ENVELOPE_BYTES, replyEnvelope, requestEnvelope, type ReplyEnvelope, type RequestEnvelope } from './envelope.ts';
import { createActorMetrics, type ActorMetrics, type AskOutcome } from './metrics.ts';
import { ActorRef, type ActorSender, type AskOptions } from './ref.ts';
import { Reminders, type ReminderDelivery } from './reminders.ts';
import { StateStore } from './state-store.ts';

export interface RuntimeOptions {
  redisUrl: string;
  /** MongoDB connection holding actor state and reminders. */
  connection: Connection;
  nodeId: string;
  types: readonly ActorType[];
  log: Logger;
  /** Key prefix in Redis; separate clusters sharing one Redis use different namespaces. */
  namespace?: string;
  registry?: Registry;
  /** Node lease: after this long without renewal the node's actors may move elsewhere. */
  leaseMs?: number;
  idleAfterMs?: number;
  mailboxCapacity?: number;
  defaultTimeoutMs?: number;
  reminderPollMs?: number;
}

interface Request {
  def: ActorType;
  key: string;
  address: string;
  message: string;
  input: unknown;
  chain: string[];
  deadline: number;
  hops: number;
}

interface PendingReply {
  def: ActorType;
  message: string;
  address: string;
  resolve(output: unknown): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout;
}

const MAX_HOPS = 4;
const MAX_ROUTES = 100_000;
const UNDELIVERED = Symbol('undelivered');

export class ActorRuntime implements ActorSender, ActivationHost, ReminderDelivery {
  readonly id: string;
  readonly store: StateStore;
  readonly log: Logger;
  readonly metrics: ActorMetrics;
  readonly registry: Registry;
  readonly reminders: Reminders;
  private readonly types = new Map<string, ActorType>();
  private readonly activations = new Map<string, Activation>();
  /** In-flight directory lookups (and activations), one per actor. */
  private readonly resolving = new Map<string, Promise<void>>();
  /** Last known owner of remote actors. */
  private readonly routes = new Map<string, string>();
  private readonly pending = new Map<string, PendingReply>();
  private readonly directory: Directory;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly leaseMs: number;
  private readonly idleAfterMs: number;
  private readonly mailboxCapacity: number;
  readonly defaultTimeoutMs: number;
  private leaseValidUntil = 0;
  private losingLease: Promise<void> | undefined;
  private stopping = false;
  private intervals: NodeJS.Timeout[] = [];
  private requestSeq = 0;
  private readonly askCounters = new Map<string, Map<AskOutcome, { inc(): void }>>();

  private constructor(options: RuntimeOptions) {
    this.id = `${options.nodeId}.${randomBytes(4).toString('hex')}`;
    this.log = options.log.child({ subsystem: 'actors', runtime: this.id });
    this.registry = options.registry ?? new Registry();
    this.metrics = createActorMetrics(this.registry);
    this.leaseMs = options.leaseMs ?? 5_000;
    this.idleAfterMs = options.idleAfterMs ?? 5 * 60_000;
    this.mailboxCapacity = options.mailboxCapacity ?? 1_000;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 5_000;
    for (const def of options.types) {
      if (this.types.has(def.type)) throw new Error(`actor type ${def.type} registered twice`);
      this.types.set(def.type, def);
    }
    this.store = new StateStore(options.connection);
    this.cmd = createRedis(options.redisUrl, `flock:${this.id}:actors`, this.log);
    this.sub = createRedis(options.redisUrl, `flock:${this.id}:actors-sub`, this.log);
    this.directory = new Directory(this.cmd, options.namespace ?? 'flock', this.id, randomBytes(8).toString('hex'), this.leaseMs);
    this.reminders = new Reminders(options.connection, this, this.log, options.reminderPollMs ?? 1_000);
  }

  static async start(options: RuntimeOptions): Promise<ActorRuntime> {
    const runtime = new ActorRuntime(options);
    await runtime.open();
    return runtime;
  }

  ref<D extends ActorType>(def: D, key: string): ActorRef<D> {
    return new ActorRef(this, def, key);
  }

  ask<D extends ActorType, K extends MessageName<D>>(def: D, key: string, message: K, input: InputOf<D, K>, options?: AskOptions): Promise<OutputOf<D, K>> {
    return this.send(def, key, message, input, [], options?.timeoutMs) as Promise<OutputOf<D, K>>;
  }

  async tell<D extends ActorType, K extends MessageName<D>>(def: D, key: string, message: K, input: InputOf<D, K>): Promise<void> {
    const request = this.validate(def, key, message, input, [], this.defaultTimeoutMs);
    void this.deliver(request).catch((err: unknown) => this.log.warn({ err: toErrorBody(err), actor: request.address, message }, 'tell failed'));
  }

  /** Graceful stop: passivates every actor (flushing cached state) and leaves the cluster. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const interval of this.intervals) clearInterval(interval);
    this.reminders.stop();
    await Promise.allSettled([...this.activations.values()].map((a) => this.deactivate(a, 'shutdown')));
    await this.directory.unregister().catch(() => {});
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new FlockError('ACTOR_UNAVAILABLE', 'node shutting down'));
      this.pending.delete(id);
    }
    await Promise.allSettled([this.sub.quit(), this.cmd.quit()]);
  }

  typeNamed(type: string): ActorType | undefined {
    return this.types.get(type);
  }

  /** Actors active on this node (for tests and diagnostics). */
  activeAddresses(): string[] {
    return [...this.activations.keys()];
  }

  // ---- ActivationHost ----

  leaseValid(): boolean {
    return Date.now() < this.leaseValidUntil;
  }

  leaseLost(): void {
    this.losingLease ??= (async () => {
      this.log.warn({ activations: this.activations.size }, 'node lease lost: dropping every activation');
      this.leaseValidUntil = 0;
      this.routes.clear();
      await Promise.allSettled([...this.activations.values()].map((a) => this.deactivate(a, 'lease-lost')));
      if (!this.stopping) await this.registerLease();
    })().finally(() => {
      this.losingLease = undefined;
    });
  }

  fenced(activation: Activation): void {
    this.log.warn({ actor: activation.address, epoch: activation.epoch }, 'activation fenced out: another node owns the actor');
    void this.deactivate(activation, 'fenced');
  }

  reroute(turn: Turn): void {
    // Turns handed back by a closing activation: deliver again from the top.
    const found = this.findRequestOf(turn);
    if (!found) return;
    this.deliver({ ...found, hops: turn.hops + 1 }).then(turn.resolve, turn.reject);
  }

  context(activation: Activation): ActorContext<unknown> {
    // Built once per activation; it reads the turn in progress (turns never overlap).
    const chain = () => [...(activation.currentTurn?.chain ?? []), activation.address];
    let log: Logger | undefined;
    const runtime = this;
    return {
      type: activation.def.type,
      key: activation.key,
      get state() {
        return activation.staged.state;
      },
      setState(next: unknown) {
        activation.staged.state = next;
        activation.staged.changed = true;
      },
      get log() {
        return (log ??= runtime.log.child({ actor: activation.address }));
      },
      ask: (def, key, message, input, options) => this.send(def, key, message, input, chain(), options?.timeoutMs) as never,
      tell: async (def, key, message, input) => {
        const request = this.validate(def, key, message, input, [], this.defaultTimeoutMs);
        void this.deliver(request).catch((err: unknown) => this.log.warn({ err: toErrorBody(err), actor: request.address }, 'tell failed'));
      },
      setTimer: (name, delayMs, message, input, options) => {
        this.validate(activation.def, activation.key, message, input, [], this.defaultTimeoutMs);
        clearTimeout(activation.timers.get(name));
        const fire = () => {
          if (activation.status !== 'active') return;
          if (options?.repeat) activation.timers.set(name, setTimeout(fire, delayMs));
          else activation.timers.delete(name);
          const request = this.validate(activation.def, activation.key, message, input, [], this.defaultTimeoutMs);
          void this.deliver(request).catch((err: unknown) => this.log.warn({ err: toErrorBody(err), actor: activation.address, timer: name }, 'timer delivery failed'));
        };
        activation.timers.set(name, setTimeout(fire, delayMs));
      },
      clearTimer: (name) => {
        clearTimeout(activation.timers.get(name));
        activation.timers.delete(name);
      },
      setReminder: (name, options) => {
        this.validate(activation.def, activation.key, options.message, options.input, [], this.defaultTimeoutMs);
        return this.reminders.set(activation.def.type, activation.key, name, options);
      },
      cancelReminder: (name) => this.reminders.cancel(activation.def.type, activation.key, name),
    };
  }

  // ---- sending ----

  /** Validates at the sender: a bad message never reaches the actor. */
  validate(def: ActorType, key: string, message: string, input: unknown, chain: string[], timeoutMs: number): Request {
    const registered = this.types.get(def.type);
    if (!registered) throw new FlockError('ACTOR_UNKNOWN_TYPE', `actor type ${def.type} is not registered on this node`);
    if (typeof key !== 'string' || !ACTOR_KEY.test(key)) {
      throw new FlockError('ACTOR_MESSAGE_INVALID', `actor key ${JSON.stringify(key)} must match ${ACTOR_KEY}`);
    }
    const spec = Object.hasOwn(registered.messages, message) ? registered.messages[message] : undefined;
    if (!spec) throw new FlockError('ACTOR_UNKNOWN_MESSAGE', `actor type ${def.type} has no message ${JSON.stringify(message)}`);
    const parsed = spec.input.safeParse(input);
    if (!parsed.success) {
      throw new FlockError('ACTOR_MESSAGE_INVALID', `${def.type}.${message}: ${parsed.error.issues.map((i: { path: PropertyKey[]; message: string }) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ')}`, {
        details: { issues: parsed.error.issues.map((i: { path: PropertyKey[]; message: string }) => ({ path: i.path.join('.'), message: i.message })) },
      });
    }
    const address = `${def.type}/${key}`;
    return { def: registered, key, address, message, input: parsed.data, chain, deadline: Date.now() + timeoutMs, hops: 0 };
  }

  private async send(def: ActorType, key: string, message: string, input: unknown, chain: string[], timeoutMs?: number): Promise<unknown> {
    let request: Request;
    try {
      request = this.validate(def, key, message, input, chain, timeoutMs ?? this.defaultTimeoutMs);
    } catch (err) {
      countAsk(this, this.askCounters, def.type, 'invalid');
      throw err;
    }
    if (chain.includes(request.address)) {
      countAsk(this, this.askCounters, def.type, 'cycle');
      throw new FlockError('ACTOR_CYCLE', `ask cycle: ${[...chain, request.address].join(' -> ')}`);
    }
    try {
      const output = await this.deliver(request);
      countAsk(this, this.askCounters, def.type, 'ok');
      return output;
    } catch (err) {
      countAsk(this, this.askCounters, def.type, outcomeOf(err));
      throw err;
    }
  }

  /** Runs the request where the actor lives, activating it here if it lives nowhere. */
  private async deliver(request: Request): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      if (Date.now() > request.deadline) throw new FlockError('ACTOR_TIMEOUT', `${request.address}: no answer to ${request.message} in time`);
      if (this.stopping) throw new FlockError('ACTOR_UNAVAILABLE', 'node shutting down');
      const local = this.activations.get(request.address);
      if (local) {
        if (local.status === 'active') return this.runLocal(local, request);
        await (local.ended ?? sleep(5));
        continue;
      }
      let owner = this.routes.get(request.address);
      if (!owner) {
        // One lookup per actor at a time on this node, however many messages wait for it.
        let resolving = this.resolving.get(request.address);
        if (!resolving) {
          resolving = this.resolve(request).finally(() => this.resolving.delete(request.address));
          this.resolving.set(request.address, resolving);
        }
        await resolving;
        continue;
      }
      if (request.hops >= MAX_HOPS) throw new FlockError('ACTOR_UNAVAILABLE', `${request.address}: routing did not settle`);
      const result = await this.sendRemote(owner, request);
      if (result !== UNDELIVERED) return result;
      // Nobody listens on the owner's inbox (it died): wait for its lease to lapse, then claim.
      this.routes.delete(request.address);
      await sleep(Math.min(250, 25 * 2 ** attempt));
    }
  }

  private runLocal(activation: Activation, request: Request): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new FlockError('ACTOR_TIMEOUT', `${request.address}: no answer to ${request.message} in time`)),
        Math.max(0, request.deadline - Date.now()),
      );
      const turn: Turn & { request: Request } = {
        message: request.message,
        input: request.input,
        chain: request.chain,
        deadline: request.deadline,
        hops: request.hops,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        request,
      };
      try {
        activation.submit(turn);
      } catch (err) {
        clearTimeout(timer);
        reject(err);
      }
    });
  }

  private findRequestOf(turn: Turn): Request | undefined {
    return (turn as Turn & { request?: Request }).request;
  }

  private async sendRemote(owner: string, request: Request): Promise<unknown> {
    const id = `${this.id}:${(this.requestSeq++).toString(36)}`;
    const env: RequestEnvelope = {
      kind: 'ask',
      id,
      replyTo: this.id,
      to: { type: request.def.type, key: request.key },
      message: request.message,
      input: request.input,
      deadline: request.deadline,
      chain: request.chain,
      hops: request.hops,
    };
    const reply = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        // The owner may be paused or dead: look it up again next time.
        this.routes.delete(request.address);
        reject(new FlockError('ACTOR_TIMEOUT', `${request.address}: no answer to ${request.message} in time`));
      }, Math.max(0, request.deadline - Date.now()));
      this.pending.set(id, { def: request.def, message: request.message, address: request.address, resolve, reject, timer });
    });
    const receivers = await this.cmd.publish(this.directory.inboxChannel(owner), JSON.stringify(env));
    if (receivers === 0) {
      const pending = this.pending.get(id);
      if (pending) {
        clearTimeout(pending.timer);
        this.pending.delete(id);
      }
      reply.catch(() => {});
      return UNDELIVERED;
    }
    return reply;
  }

  // ---- receiving ----

  private onInbox(text: string): void {
    if (text.length > MAX_ENVELOPE_BYTES) {
      this.log.warn({ bytes: text.length }, 'oversized actor envelope dropped');
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      this.log.warn('malformed actor envelope dropped');
      return;
    }
    // Dispatch on kind first: one schema per envelope instead of trying a union.
    const kind = typeof raw === 'object' && raw !== null ? (raw as { kind?: unknown }).kind : undefined;
    if (kind === 'reply') {
      const parsed = replyEnvelope.safeParse(raw);
      if (parsed.success) this.onReply(parsed.data);
      else this.log.warn({ issues: parsed.error.issues.length }, 'invalid actor reply dropped');
      return;
    }
    const parsed = requestEnvelope.safeParse(raw);
    if (parsed.success) void this.onRequest(parsed.data);
    else this.log.warn({ issues: parsed.error.issues.length }, 'invalid actor envelope dropped');
  }

  private onReply(env: ReplyEnvelope): void {
    const pending = this.pending.get(env.id);
    if (!pending) return; // timed out already
    this.pending.delete(env.id);
    clearTimeout(pending.timer);
    if (!env.ok) {
      pending.reject(new FlockError(env.error.code, env.error.message));
      return;
    }
    const output = pending.def.messages[pending.message]!.output.safeParse(env.output);
    if (output.success) pending.resolve(output.data);
    else pending.reject(new FlockError('ACTOR_HANDLER_FAILED', `${pending.address}: reply fails the output schema`));
  }

  private async onRequest(env: RequestEnvelope): Promise<void> {
    if (Date.now() > env.deadline) return; // the sender stopped waiting
    let outcome: { ok: true; output: unknown } | { ok: false; code: ErrorCode; message: string };
    try {
      const def = this.types.get(env.to.type);
      if (!def) throw new FlockError('ACTOR_UNKNOWN_TYPE', `actor type ${env.to.type} is not registered on this node`);
      const request = this.validate(def, env.to.key, env.message, env.input, env.chain, 0);
      const output = await this.deliver({ ...request, deadline: env.deadline, hops: env.hops + 1 });
      outcome = { ok: true, output };
    } catch (err) {
      const body = toErrorBody(err);
      outcome = { ok: false, code: body.code, message: body.message };
    }
    if (env.kind === 'tell') return;
    const reply: ReplyEnvelope = outcome.ok
      ? { kind: 'reply', id: env.id, ok: true, output: outcome.output }
      : { kind: 'reply', id: env.id, ok: false, error: { code: outcome.code, message: outcome.message } };
    await this.cmd.publish(this.directory.inboxChannel(env.replyTo), JSON.stringify(reply)).catch((err: unknown) => {
      this.log.warn({ err }, 'reply publish failed');
    });
  }

  // ---- lifecycle ----

  private async open(): Promise<void> {
    await this.store.init();
    await this.reminders.init();
    this.sub.on('message', (_channel: string, raw: string) => this.onInbox(raw));
    await Promise.all([untilReady(this.cmd), untilReady(this.sub)]);
    await this.sub.subscribe(this.directory.inboxChannel(this.id));
    await this.registerLease();
    this.intervals.push(setInterval(() => void this.renewLease(), Math.max(50, Math.floor(this.leaseMs / 3))));
    this.intervals.push(setInterval(() => void this.passivateIdle(), Math.max(50, Math.min(1_000, Math.floor(this.idleAfterMs / 2)))));
    this.reminders.start();
    this.log.info({ leaseMs: this.leaseMs, types: [...this.types.keys()] }, 'actor runtime started');
  }

  private async registerLease(): Promise<void> {
    const sentAt = Date.now();
    await this.directory.register();
    this.leaseValidUntil = sentAt + this.leaseMs;
  }

  private async renewLease(): Promise<void> {
    if (this.stopping || this.losingLease) return;
    const sentAt = Date.now();
    try {
      if (await this.directory.renew()) this.leaseValidUntil = sentAt + this.leaseMs;
      else this.leaseLost();
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'lease renewal failed');
    }
  }

  private async waitForLease(deadline: number): Promise<void> {
    const until = Math.min(deadline, Date.now() + 250);
    while (!this.leaseValid() && Date.now() < until) {
      if (!this.losingLease && !this.stopping) await this.registerLease().catch(() => {});
      await sleep(20);
    }
  }

  /** Finds where an actor lives: activates it here, or records the remote owner. */
  private async resolve(request: Request): Promise<void> {
    if (!this.leaseValid()) {
      await this.waitForLease(request.deadline);
      return;
    }
    const claim = await this.directory.claim(request.address);
    if (claim.status === 'no-lease') {
      this.leaseLost();
      await this.waitForLease(request.deadline);
      return;
    }
    if (claim.status === 'other') {
      if (this.routes.size >= MAX_ROUTES) this.routes.clear();
      this.routes.set(request.address, claim.owner);
      return;
    }
    await this.activate(request, claim.epoch);
  }

  private async activate(request: Request, epoch: number): Promise<void> {
    const { def, key, address } = request;
    const work = (async () => {
      let claim = await this.store.claim(def.type, key, epoch);
      if (!claim.ok && claim.storedEpoch >= epoch) {
        // Redis lost its epoch counter (restart without persistence): move it past MongoDB's and claim again.
        await this.directory.release(address, epoch);
        await this.directory.raiseEpoch(claim.storedEpoch + 1);
        throw new FlockError('ACTOR_FENCED', `${address}: stored epoch ${claim.storedEpoch} is ahead of ${epoch}; retrying`);
      }
      if (!claim.ok) throw new FlockError('ACTOR_FENCED', `${address}: claim refused`);
      let state: unknown = claim.state;
      if (claim.version === 0 || state === null || state === undefined) state = def.initialState();
      const valid = def.state.safeParse(state);
      if (!valid.success) {
        await this.directory.release(address, epoch);
        throw new FlockError('ACTOR_STATE_INVALID', `${address}: ${valid.error.message}`);
      }
      const activation = new Activation(def, key, address, epoch, claim.version, valid.data, this, def.mailboxCapacity ?? this.mailboxCapacity);
      this.activations.set(address, activation);
      this.metrics.activations.inc({ type: def.type });
      this.metrics.active.inc({ type: def.type });
      this.log.debug({ actor: address, epoch, version: claim.version }, 'actor activated');
    })();
    try {
      await work;
    } catch (err) {
      if (!(isFlockError(err) && err.code === 'ACTOR_FENCED')) throw err;
    }
  }

  private deactivate(activation: Activation, reason: CloseReason): Promise<void> {
    activation.ended ??= (async () => {
      await activation.close(reason);
      if (reason === 'passivate' || reason === 'shutdown') {
        await this.directory.release(activation.address, activation.epoch).catch(() => {});
      }
      if (this.activations.get(activation.address) === activation) {
        this.activations.delete(activation.address);
        this.metrics.active.dec({ type: activation.def.type });
      }
      this.log.debug({ actor: activation.address, epoch: activation.epoch, reason }, 'actor deactivated');
    })();
    return activation.ended;
  }

  private async passivateIdle(): Promise<void> {
    const now = Date.now();
    for (const activation of this.activations.values()) {
      const idleAfter = activation.def.idleAfterMs ?? this.idleAfterMs;
      if (activation.status === 'active' && activation.idle && now - activation.lastActive >= idleAfter) {
        void this.deactivate(activation, 'passivate');
      }
    }
  }
}

function countAsk(runtime: { metrics: ActorMetrics }, cache: Map<string, Map<AskOutcome, { inc(): void }>>, type: string, outcome: AskOutcome): void {
  let byOutcome = cache.get(type);
  if (!byOutcome) cache.set(type, (byOutcome = new Map()));
  let counter = byOutcome.get(outcome);
  if (!counter) byOutcome.set(outcome, (counter = runtime.metrics.asks.labels(type, outcome)));
  counter.inc();
}

function outcomeOf(err: unknown): AskOutcome {
  const code = isFlockError(err) ? err.code : 'INTERNAL';
  switch (code) {
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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
