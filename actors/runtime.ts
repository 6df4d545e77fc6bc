// The actor runtime of one node: addresses actors by type and key, activates
// each on exactly one node (directory + node lease in Redis, fencing epochs in
// MongoDB), routes messages to wherever an actor lives (actors/transport.ts),
// and passivates idle actors. See README "Actor runtime" for the protocol.
//
//   runtime.ts      this file: the public API, routing, leases, activation lifecycle
//   activation.ts   one actor's mailbox, turns, commits and effects
//   context.ts      what handlers see (ctx)
//   transport.ts    requests and replies between nodes over Redis pub/sub
//   directory.ts    placement and fencing epochs in Redis
//   state-store.ts  state in `actor_states` or in a domain document
//   turns.ts, deadlines.ts, reply-publisher.ts, reminders.ts, metrics.ts
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import { Registry } from 'prom-client';
import { FlockError, isFlockError, toErrorBody } from '../kernel/errors.ts';
import { ACTOR_KEY } from '../kernel/ids.ts';
import type { Logger } from '../kernel/logger.ts';
import { createRedis, untilReady, type Redis } from '../kernel/redis.ts';
import { invalid } from '../kernel/zod-issues.ts';
import { Activation, type ActivationHost, type CloseReason, type Turn } from './activation.ts';
import { actorContext, type ContextHost } from './context.ts';
import { Deadlines } from './deadlines.ts';
import type { ActorContext, ActorInterface, ActorType, InputOf, MessageName, OutputOf } from './define.ts';
import { Directory } from './directory.ts';
import type { RequestEnvelope } from './envelope.ts';
import { AskCounters, createActorMetrics, type ActorMetrics } from './metrics.ts';
import { Admission } from './admission.ts';
import { ActorRef, type ActorSender, type AskOptions } from './ref.ts';
import { Reminders, type ReminderDelivery } from './reminders.ts';
import type { ActorServices } from './services.ts';
import { ActorStateStore, DocumentStateStore, type StateStore } from './state-store.ts';
import { Transport, UNDELIVERED, type TransportHost } from './transport.ts';
import { InboxTurn, LocalTurn, RoutedTurn, type Request } from './turns.ts';

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
  /** Domain stores handed to handlers as ctx.services. */
  services?: ActorServices;
}

const MAX_HOPS = 4;
const MAX_ROUTES = 100_000;
/** Activations loading their state at once on one node (actors/admission.ts). */
const ACTIVATIONS_AT_ONCE = 16;
/** Activations waiting for one of those slots beyond which a message is refused at once (ACTOR_UNAVAILABLE). */
const ACTIVATIONS_WAITING = 256;

export class ActorRuntime implements ActorSender, ActivationHost, ContextHost, TransportHost, ReminderDelivery {
  readonly id: string;
  readonly log: Logger;
  readonly metrics: ActorMetrics;
  readonly registry: Registry;
  readonly reminders: Reminders;
  readonly defaultTimeoutMs: number;
  private readonly actorServices: ActorServices | undefined;
  private readonly types = new Map<string, ActorType>();
  private readonly stores = new Map<string, StateStore>();
  private readonly actorStates: ActorStateStore[] = [];
  private readonly activations = new Map<string, Activation>();
  /** In-flight directory lookups (and activations), one per actor. */
  private readonly resolving = new Map<string, Promise<void>>();
  /** Last known owner of remote actors. */
  private readonly routes = new Map<string, string>();
  /** Actors dropped at a lease loss whose stored effects were all done, with the stored version: not redone if they come back here unchanged. */
  private readonly doneEffects = new Map<string, number>();
  /** Deadlines of local turns: one timer for all of them. */
  private readonly turnDeadlines = new Deadlines<LocalTurn>((t) => t.expire());
  private readonly directory: Directory;
  private readonly cmd: Redis;
  private readonly transport: Transport;
  private readonly asks: AskCounters;
  private readonly leaseMs: number;
  private readonly idleAfterMs: number;
  private readonly mailboxCapacity: number;
  private readonly admission = new Admission(ACTIVATIONS_AT_ONCE, ACTIVATIONS_WAITING);
  /** The highest fencing epoch this runtime has held or seen stored: after Redis lost its counter, new epochs start above it. */
  private maxEpoch = 0;
  private leaseValidUntil = 0;
  private losingLease: Promise<void> | undefined;
  private stopping = false;
  private intervals: NodeJS.Timeout[] = [];

  private constructor(options: RuntimeOptions) {
    this.id = `${options.nodeId}.${randomBytes(4).toString('hex')}`;
    this.log = options.log.child({ subsystem: 'actors', runtime: this.id });
    this.registry = options.registry ?? new Registry();
    this.metrics = createActorMetrics(this.registry);
    this.asks = new AskCounters(this.metrics);
    this.leaseMs = options.leaseMs ?? 5_000;
    this.idleAfterMs = options.idleAfterMs ?? 5 * 60_000;
    this.mailboxCapacity = options.mailboxCapacity ?? 1_000;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 5_000;
    this.actorServices = options.services;
    for (const def of options.types) {
      if (this.types.has(def.type)) throw new Error(`actor type ${def.type} registered twice`);
      this.types.set(def.type, def);
      const { persistence } = def;
      if (persistence.kind === 'document') {
        this.stores.set(def.type, new DocumentStateStore(options.connection, persistence.collection));
      } else {
        const store = new ActorStateStore(options.connection, def.type);
        this.actorStates.push(store);
        this.stores.set(def.type, store);
      }
    }
    this.cmd = createRedis(options.redisUrl, `flock:${this.id}:actors`, this.log);
    this.directory = new Directory(this.cmd, options.namespace ?? 'flock', this.id, randomBytes(8).toString('hex'), this.leaseMs);
    this.transport = new Transport(this.id, options.redisUrl, this.cmd, (runtimeId) => this.directory.inboxChannel(runtimeId), this, this.log);
    this.reminders = new Reminders(options.connection, this, this.log, options.reminderPollMs ?? 1_000);
  }

  static async start(options: RuntimeOptions): Promise<ActorRuntime> {
    const runtime = new ActorRuntime(options);
    await runtime.open();
    return runtime;
  }

  ref<I extends ActorInterface>(def: I, key: string): ActorRef<I> {
    return new ActorRef(this, def, key);
  }

  ask<I extends ActorInterface, K extends MessageName<I>>(
    def: I,
    key: string,
    message: K,
    input: InputOf<I, K>,
    options?: AskOptions,
  ): Promise<OutputOf<I, K>> {
    // The output was parsed with the interface's schema on its way back (locally, or in transport.ts).
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- the output was parsed with the schema its type comes from.
    return this.send(def, key, message, input, [], options?.timeoutMs) as Promise<OutputOf<I, K>>;
  }

  async tell<I extends ActorInterface, K extends MessageName<I>>(def: I, key: string, message: K, input: InputOf<I, K>): Promise<void> {
    const request = this.validate(def, key, message, input, [], this.defaultTimeoutMs);
    void this.dispatch(request).catch((err: unknown) => this.log.warn({ err: toErrorBody(err), actor: request.address, message }, 'tell failed'));
  }

  /** Graceful stop: passivates every actor (writing what is left to write) and leaves the cluster. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const interval of this.intervals) clearInterval(interval);
    this.reminders.stop();
    await Promise.allSettled([...this.activations.values()].map((a) => this.deactivate(a, 'shutdown')));
    await this.directory.unregister().catch(() => {});
    this.turnDeadlines.clear();
    await this.transport.close();
    await this.cmd.quit().catch(() => {});
  }

  get services(): ActorServices {
    if (!this.actorServices) throw new Error('actor services were not given to this runtime');
    return this.actorServices;
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

  leaseLost(found?: Activation): void {
    // Synchronously up to its first await, this marks every activation closing (and the one that
    // found out, which may be newer than a loss already being handled), so messages rerouted
    // meanwhile wait for the new lease instead of landing in them again.
    if (found) void this.deactivate(found, 'lease-lost');
    this.losingLease ??= (async () => {
      this.log.warn({ activations: this.activations.size }, 'node lease lost: dropping every activation');
      this.leaseValidUntil = 0;
      this.routes.clear();
      await Promise.allSettled([...this.activations.values()].map((a) => this.deactivate(a, 'lease-lost')));
      if (this.stopping) return;
      // If Redis lost its data the epoch counter starts again at 1: move it past every epoch this node used,
      // so its claims are not all refused by MongoDB once each (see activate).
      await this.directory.raiseEpoch(this.maxEpoch).catch(() => {});
      await this.registerLease();
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
    if (!(turn instanceof RoutedTurn)) return;
    this.dispatch({ ...turn.request, hops: turn.hops + 1 }).then(
      (output) => turn.resolve(output),
      (err: unknown) => turn.reject(err),
    );
  }

  context(activation: Activation): ActorContext<unknown, unknown> {
    return actorContext(activation, this);
  }

  // ---- TransportHost ----

  onRequest(env: RequestEnvelope): void {
    if (Date.now() > env.deadline) return; // the sender stopped waiting
    let request: Request;
    try {
      const def = this.types.get(env.to.type);
      if (!def) throw new FlockError('ACTOR_UNKNOWN_TYPE', `actor type ${env.to.type} is not registered on this node`);
      request = this.validate(def, env.to.key, env.message, env.input, env.chain, 0);
    } catch (err) {
      this.transport.error(env, err);
      return;
    }
    request.deadline = env.deadline;
    request.hops = env.hops + 1;
    // Hot path: the actor is active here, so its turn answers the sender itself.
    const local = this.activations.get(request.address);
    if (local?.status === 'active' && !this.stopping) {
      const turn = new InboxTurn(request, env, this.transport);
      try {
        local.submit(turn);
      } catch (err) {
        turn.reject(err);
      }
      return;
    }
    this.dispatch(request).then(
      (output) => this.transport.ok(env, output),
      (err: unknown) => this.transport.error(env, err),
    );
  }

  onAskTimeout(address: string): void {
    // The owner may be paused or dead: look it up again next time.
    this.routes.delete(address);
  }

  // ---- sending ----

  /** Validates at the sender: a bad message never reaches the actor. */
  validate(def: ActorInterface, key: string, message: string, input: unknown, chain: string[], timeoutMs: number): Request {
    const registered = this.types.get(def.type);
    if (!registered) throw new FlockError('ACTOR_UNKNOWN_TYPE', `actor type ${def.type} is not registered on this node`);
    if (typeof key !== 'string' || !ACTOR_KEY.test(key)) {
      throw new FlockError('ACTOR_MESSAGE_INVALID', `actor key ${JSON.stringify(key)} must match ${ACTOR_KEY}`);
    }
    const spec = Object.hasOwn(registered.messages, message) ? registered.messages[message] : undefined;
    if (!spec) throw new FlockError('ACTOR_UNKNOWN_MESSAGE', `actor type ${def.type} has no message ${JSON.stringify(message)}`);
    const parsed = spec.input.safeParse(input);
    if (!parsed.success) throw invalid(`${def.type}.${message}`, parsed.error, 'ACTOR_MESSAGE_INVALID');
    const address = `${def.type}/${key}`;
    return { def: registered, key, address, message, input: parsed.data, chain, deadline: Date.now() + timeoutMs, hops: 0 };
  }

  async send(def: ActorInterface, key: string, message: string, input: unknown, chain: string[], timeoutMs?: number): Promise<unknown> {
    let request: Request;
    try {
      request = this.validate(def, key, message, input, chain, timeoutMs ?? this.defaultTimeoutMs);
    } catch (err) {
      this.asks.count(def.type, 'invalid');
      throw err;
    }
    if (chain.includes(request.address)) {
      this.asks.count(def.type, 'cycle');
      throw new FlockError('ACTOR_CYCLE', `ask cycle: ${[...chain, request.address].join(' -> ')}`);
    }
    try {
      const output = await this.dispatch(request);
      this.asks.count(def.type, 'ok');
      return output;
    } catch (err) {
      this.asks.count(def.type, err);
      throw err;
    }
  }

  /** Runs the request where the actor lives, activating it here if it lives nowhere. */
  async dispatch(request: Request): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      if (Date.now() > request.deadline) throw new FlockError('ACTOR_TIMEOUT', `${request.address}: no answer to ${request.message} in time`);
      if (this.stopping) throw new FlockError('ACTOR_UNAVAILABLE', 'node shutting down');
      const local = this.activations.get(request.address);
      if (local) {
        if (local.status === 'active') return this.runLocal(local, request);
        await byDeadline(local.ended ?? sleep(5), request);
        continue;
      }
      const owner = this.routes.get(request.address);
      if (!owner) {
        // One lookup per actor at a time on this node, however many messages wait for it; each waits
        // until its own deadline at most (a slow database must not hold asks past theirs).
        let resolving = this.resolving.get(request.address);
        if (!resolving) {
          resolving = this.resolve(request).finally(() => this.resolving.delete(request.address));
          resolving.catch(() => {}); // its waiters may all have left at their deadlines
          this.resolving.set(request.address, resolving);
        }
        await byDeadline(resolving, request);
        continue;
      }
      if (request.hops >= MAX_HOPS) throw new FlockError('ACTOR_UNAVAILABLE', `${request.address}: routing did not settle`);
      const result = await this.transport.send(owner, request);
      if (result !== UNDELIVERED) return result;
      // Nobody listens on the owner's inbox (it died): wait for its lease to lapse, then claim.
      this.routes.delete(request.address);
      await sleep(Math.min(250, 25 * 2 ** attempt));
    }
  }

  private runLocal(activation: Activation, request: Request): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const turn = new LocalTurn(request, this.turnDeadlines, resolve, reject);
      try {
        activation.submit(turn);
      } catch (err) {
        turn.reject(err);
      }
    });
  }

  // ---- lifecycle ----

  private async open(): Promise<void> {
    await Promise.all(this.actorStates.slice(0, 1).map((store) => store.init()));
    await this.reminders.init();
    await untilReady(this.cmd);
    await this.transport.open();
    await this.registerLease();
    this.intervals.push(setInterval(() => void this.renewLease(), Math.max(50, Math.floor(this.leaseMs / 3))));
    this.intervals.push(setInterval(() => this.passivateIdle(), Math.max(50, Math.min(1_000, Math.floor(this.idleAfterMs / 2)))));
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
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'lease renewal failed');
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
    try {
      // undefined: the request's deadline passed while it waited for a slot; its caller gives up or tries again.
      await this.admission.run(request.deadline, () => this.activate(request, claim.epoch, claim.status === 'mine'));
    } catch (err) {
      if (!(isFlockError(err) && err.code === 'ACTOR_FENCED')) throw err;
      await sleep(20); // a refused claim is retried by the caller's loop: not at once, not in a tight loop
    }
  }

  private async activate(request: Request, epoch: number, held: boolean): Promise<void> {
    const { def, key, address } = request;
    const store = this.stores.get(def.type)!;
    this.maxEpoch = Math.max(this.maxEpoch, epoch);
    const claim = await store.claim(key, epoch, held);
    if (!claim.ok) {
      this.maxEpoch = Math.max(this.maxEpoch, claim.storedEpoch);
      if (claim.storedEpoch >= epoch) {
        // Redis lost its epoch counter (restart without persistence): move it past MongoDB's and claim again.
        await this.directory.release(address, epoch);
        await this.directory.raiseEpoch(claim.storedEpoch + 1);
        throw new FlockError('ACTOR_FENCED', `${address}: stored epoch ${claim.storedEpoch} is ahead of ${epoch}; retrying`);
      }
      throw new FlockError('ACTOR_FENCED', `${address}: claim refused`);
    }
    const state =
      def.persistence.kind !== 'document' && (claim.version === 0 || claim.state === null || claim.state === undefined) ? def.initialState() : claim.state;
    const valid = def.state.safeParse(state);
    const pending = valid.success ? this.parsePending(def, claim.pending) : undefined;
    if (!valid.success || !pending) {
      await this.directory.release(address, epoch);
      throw new FlockError('ACTOR_STATE_INVALID', `${address}: ${valid.success ? 'stored effects do not match the effect schema' : valid.error.message}`);
    }
    // Versions only grow: the same version is the very state (and effect list) this node saved, then ran the effects of.
    const effectsDone = this.doneEffects.get(address) === claim.version;
    this.doneEffects.delete(address);
    const activation = new Activation(
      def,
      key,
      address,
      epoch,
      claim.version,
      valid.data,
      pending,
      store,
      this,
      def.mailboxCapacity ?? this.mailboxCapacity,
      effectsDone,
    );
    this.activations.set(address, activation);
    this.metrics.activations.inc({ type: def.type });
    this.metrics.active.inc({ type: def.type });
    this.log.debug({ actor: address, epoch, version: claim.version }, 'actor activated');
  }

  /** The stored effects, parsed with the type's schema (stored before 0.2.0: through its `upgrade`); undefined if one does not parse. */
  private parsePending(def: ActorType, stored: unknown[]): unknown[] | undefined {
    if (stored.length === 0) return [];
    const effects = def.effects;
    if (!effects) return undefined;
    const out: unknown[] = [];
    for (const item of stored) {
      let raw: unknown;
      if (typeof item === 'string') {
        try {
          raw = JSON.parse(item);
        } catch {
          return undefined;
        }
      } else {
        try {
          raw = effects.upgrade?.(item);
        } catch {
          return undefined; // an upgrade that cannot read the entry: the state is invalid, not the runtime broken
        }
        if (raw === undefined) continue; // a legacy entry with nothing left to do
      }
      const parsed = effects.schema.safeParse(raw);
      if (!parsed.success) return undefined;
      out.push(parsed.data);
    }
    return out;
  }

  private deactivate(activation: Activation, reason: CloseReason): Promise<void> {
    activation.ended ??= (async () => {
      await activation.close(reason);
      if (reason === 'passivate' || reason === 'shutdown') {
        await this.directory.release(activation.address, activation.epoch).catch(() => {});
      }
      const done = activation.doneAtVersion;
      if (reason === 'lease-lost' && done !== undefined) {
        if (this.doneEffects.size >= MAX_ROUTES) this.doneEffects.clear();
        this.doneEffects.set(activation.address, done);
      }
      if (this.activations.get(activation.address) === activation) {
        this.activations.delete(activation.address);
        this.metrics.active.dec({ type: activation.def.type });
      }
      this.log.debug({ actor: activation.address, epoch: activation.epoch, reason }, 'actor deactivated');
    })();
    return activation.ended;
  }

  private passivateIdle(): void {
    const now = Date.now();
    for (const activation of this.activations.values()) {
      const idleAfter = activation.def.idleAfterMs ?? this.idleAfterMs;
      if (activation.status === 'active' && activation.idle && now - activation.lastActive >= idleAfter) {
        void this.deactivate(activation, 'passivate');
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for `work` until the request's deadline at most, then fails with ACTOR_TIMEOUT (`work` goes on without this waiter). */
async function byDeadline(work: Promise<unknown>, request: Request): Promise<void> {
  const left = request.deadline - Date.now();
  const timeout = () => new FlockError('ACTOR_TIMEOUT', `${request.address}: no answer to ${request.message} in time`);
  if (left <= 0) throw timeout();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timeout()), left)))]);
  } finally {
    clearTimeout(timer);
  }
}
