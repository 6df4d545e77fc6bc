// The actor runtime of one node: addresses actors by type and key, activates
// each on exactly one node (directory + node lease in Redis, fencing epochs in
// MongoDB), routes messages to wherever an actor lives over Redis pub/sub, and
// passivates idle actors. See README "Actor runtime" for the whole protocol.
import { randomBytes } from 'node:crypto';
import type { Connection } from 'mongoose';
import { Registry } from 'prom-client';
import { FlockError, isFlockError, toErrorBody } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import { createRedis, untilReady, type Redis } from '../kernel/redis.ts';
import { Activation, type ActivationHost, type CloseReason, type Turn } from './activation.ts';
import { type ActorContext, type ActorType, type InputOf, type MessageName, type OutputOf } from './define.ts';
import { missingServices, type ActorServices } from './services.ts';
import { Directory } from './directory.ts';
import { MAX_ENVELOPE_BYTES, replyEnvelope, requestEnvelope, type ReplyEnvelope, type RequestEnvelope } from './envelope.ts';
import { createActorMetrics, type ActorMetrics, type AskOutcome } from './metrics.ts';
import { ActorRef, type ActorSender, type AskOptions } from './ref.ts';
import { Reminders, type ReminderDelivery } from './reminders.ts';
import { StateStore } from './state-store.ts';
import { ACTOR_KEY } from '../kernel/ids.ts';
import { invalid } from '../kernel/zod-issues.ts';

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

/** An ask published to another node, waiting for its reply. */
interface PendingAsk {
  id: string;
  request: Request;
  deadline: number;
  resolve(output: unknown): void;
  reject(err: unknown): void;
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
  private readonly pending = new Map<string, PendingAsk>();
  /** Deadlines of remote asks and local turns: one timer each instead of one per message. */
  private readonly askDeadlines = new Deadlines<PendingAsk>((p) => this.expireAsk(p));
  private readonly turnDeadlines = new Deadlines<LocalTurn>((t) => t.expire());
  private readonly directory: Directory;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly replies: ReplyPublisher;
  /** How turns of requests from other nodes answer (built once; a turn holds no closures). */
  private readonly inboxReplies: ReplySink = {
    ok: (env, output) => this.replyOk(env, output),
    error: (env, err) => this.replyError(env, err),
  };
  private readonly leaseMs: number;
  private readonly idleAfterMs: number;
  private readonly mailboxCapacity: number;
  readonly defaultTimeoutMs: number;
  readonly services: ActorServices;
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
    this.services = options.services ?? missingServices();
    for (const def of options.types) {
      if (this.types.has(def.type)) throw new Error(`actor type ${def.type} registered twice`);
      this.types.set(def.type, def);
    }
    this.store = new StateStore(options.connection);
    this.cmd = createRedis(options.redisUrl, `flock:${this.id}:actors`, this.log);
    this.sub = createRedis(options.redisUrl, `flock:${this.id}:actors-sub`, this.log);
    this.replies = new ReplyPublisher(createRedis(options.redisUrl, `flock:${this.id}:actors-replies`, this.log), this.log);
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
    this.askDeadlines.clear();
    this.turnDeadlines.clear();
    for (const p of this.pending.values()) p.reject(new FlockError('ACTOR_UNAVAILABLE', 'node shutting down'));
    this.pending.clear();
    await Promise.allSettled([this.sub.quit(), this.cmd.quit(), this.replies.close()]);
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
    if (!(turn instanceof RoutedTurn)) return;
    this.deliver({ ...turn.request, hops: turn.hops + 1 }).then(
      (output) => turn.resolve(output),
      (err: unknown) => turn.reject(err),
    );
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
      epoch: activation.epoch,
      services: this.services,
      afterCommit(effect: () => Promise<void>) {
        activation.staged.effects.push(effect);
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
    if (!parsed.success) throw invalid(`${def.type}.${message}`, parsed.error, 'ACTOR_MESSAGE_INVALID');
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
      const turn = new LocalTurn(request, this.turnDeadlines, resolve, reject);
      try {
        activation.submit(turn);
      } catch (err) {
        turn.reject(err);
      }
    });
  }

  /** Publishes the request to the owner's inbox; UNDELIVERED when nobody listens there. */
  private sendRemote(owner: string, request: Request): Promise<unknown> {
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
    const payload = JSON.stringify(env);
    return new Promise((resolve, reject) => {
      const pending: PendingAsk = { id, request, deadline: request.deadline, resolve, reject };
      this.pending.set(id, pending);
      this.askDeadlines.add(pending);
      // The reply may be handled before this acknowledgement; either way, whichever settles first wins.
      this.cmd.publish(this.directory.inboxChannel(owner), payload).then(
        (receivers) => {
          if (receivers === 0 && this.forget(pending)) resolve(UNDELIVERED);
        },
        (err: unknown) => {
          if (this.forget(pending)) reject(err);
        },
      );
    });
  }

  /** Stops waiting for a remote ask; false if it was settled already. */
  private forget(pending: PendingAsk): boolean {
    if (this.pending.get(pending.id) !== pending) return false;
    this.pending.delete(pending.id);
    this.askDeadlines.delete(pending);
    return true;
  }

  private expireAsk(pending: PendingAsk): void {
    if (this.pending.get(pending.id) !== pending) return;
    this.pending.delete(pending.id);
    // The owner may be paused or dead: look it up again next time.
    this.routes.delete(pending.request.address);
    pending.reject(new FlockError('ACTOR_TIMEOUT', `${pending.request.address}: no answer to ${pending.request.message} in time`));
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
    if (parsed.success) this.onRequest(parsed.data);
    else this.log.warn({ issues: parsed.error.issues.length }, 'invalid actor envelope dropped');
  }

  private onReply(env: ReplyEnvelope): void {
    const pending = this.pending.get(env.id);
    if (!pending || !this.forget(pending)) return; // timed out already
    const { request } = pending;
    if (!env.ok) {
      pending.reject(new FlockError(env.error.code, env.error.message));
      return;
    }
    const output = request.def.messages[request.message]!.output.safeParse(env.output);
    if (output.success) pending.resolve(output.data);
    else pending.reject(new FlockError('ACTOR_HANDLER_FAILED', `${request.address}: reply fails the output schema`));
  }

  private onRequest(env: RequestEnvelope): void {
    if (Date.now() > env.deadline) return; // the sender stopped waiting
    let request: Request;
    try {
      const def = this.types.get(env.to.type);
      if (!def) throw new FlockError('ACTOR_UNKNOWN_TYPE', `actor type ${env.to.type} is not registered on this node`);
      request = this.validate(def, env.to.key, env.message, env.input, env.chain, 0);
    } catch (err) {
      this.replyError(env, err);
      return;
    }
    request.deadline = env.deadline;
    request.hops = env.hops + 1;
    // Hot path: the actor is active here, so its turn answers the sender itself.
    const local = this.activations.get(request.address);
    if (local?.status === 'active' && !this.stopping) {
      const turn = new InboxTurn(request, env, this.inboxReplies);
      try {
        local.submit(turn);
      } catch (err) {
        turn.reject(err);
      }
      return;
    }
    this.deliver(request).then(
      (output) => this.replyOk(env, output),
      (err: unknown) => this.replyError(env, err),
    );
  }

  /** Answers a request from another node (asks only; tells get no reply). */
  private replyOk(env: RequestEnvelope, output: unknown): void {
    if (env.kind === 'ask') this.publishReply(env, { kind: 'reply', id: env.id, ok: true, output });
  }

  private replyError(env: RequestEnvelope, err: unknown): void {
    if (env.kind !== 'ask') return;
    const body = toErrorBody(err);
    this.publishReply(env, { kind: 'reply', id: env.id, ok: false, error: { code: body.code, message: body.message } });
  }

  private publishReply(env: RequestEnvelope, reply: ReplyEnvelope): void {
    const channel = this.directory.inboxChannel(env.replyTo);
    const payload = JSON.stringify(reply);
    if (this.replies.publish(channel, payload)) return;
    // The reply connection is (re)connecting: take the ordinary one.
    this.cmd.publish(channel, payload).catch((err: unknown) => this.log.warn({ err }, 'reply publish failed'));
  }

  // ---- lifecycle ----

  private async open(): Promise<void> {
    await this.store.init();
    await this.reminders.init();
    this.sub.on('message', (_channel: string, raw: string) => this.onInbox(raw));
    await Promise.all([untilReady(this.cmd), untilReady(this.sub)]);
    await this.sub.subscribe(this.directory.inboxChannel(this.id));
    await this.replies.ready();
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

/** A turn this runtime submitted: it keeps its request, so a closing activation can hand it back for rerouting. */
abstract class RoutedTurn implements Turn {
  readonly message: string;
  readonly input: unknown;
  readonly chain: string[];
  readonly deadline: number;
  readonly hops: number;

  constructor(readonly request: Request) {
    this.message = request.message;
    this.input = request.input;
    this.chain = request.chain;
    this.deadline = request.deadline;
    this.hops = request.hops;
  }

  abstract resolve(output: unknown): void;
  abstract reject(err: unknown): void;
}

/** The turn of an ask or tell made on this node: settles its caller's promise once, at the latest with ACTOR_TIMEOUT at its deadline. */
class LocalTurn extends RoutedTurn {
  private settled = false;

  constructor(
    request: Request,
    private readonly deadlines: Deadlines<LocalTurn>,
    private readonly onResolve: (output: unknown) => void,
    private readonly onReject: (err: unknown) => void,
  ) {
    super(request);
    deadlines.add(this);
  }

  resolve(output: unknown): void {
    if (this.settle()) this.onResolve(output);
  }

  reject(err: unknown): void {
    if (this.settle()) this.onReject(err);
  }

  /** Called by the deadlines, which have dropped it already. */
  expire(): void {
    if (this.settled) return;
    this.settled = true;
    this.onReject(new FlockError('ACTOR_TIMEOUT', `${this.request.address}: no answer to ${this.message} in time`));
  }

  private settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    this.deadlines.delete(this);
    return true;
  }
}

interface ReplySink {
  ok(env: RequestEnvelope, output: unknown): void;
  error(env: RequestEnvelope, err: unknown): void;
}

/**
 * The turn of a request from another node: its outcome goes straight to the
 * sender's inbox. It needs no deadline of its own: the sender stops waiting at
 * the request's deadline, and an expired turn is not started.
 */
class InboxTurn extends RoutedTurn {
  constructor(
    request: Request,
    private readonly env: RequestEnvelope,
    private readonly replies: ReplySink,
  ) {
    super(request);
  }

  resolve(output: unknown): void {
    this.replies.ok(this.env, output);
  }

  reject(err: unknown): void {
    this.replies.error(this.env, err);
  }
}

const DEADLINE_SLOT_MS = 10;

/**
 * Expires waiters at their deadline (at most DEADLINE_SLOT_MS late) with one
 * timer for all of them: waiters sit in slots of that width, and the timer is
 * armed for the earliest slot. Arming and clearing a timer per message cost
 * more than the rest of a message's bookkeeping. The timer does not keep the
 * process alive; the runtime's own intervals do while it runs.
 */
class Deadlines<T extends { readonly deadline: number }> {
  private readonly slots = new Map<number, Set<T>>();
  private timer: NodeJS.Timeout | undefined;
  private armedSlot = Number.POSITIVE_INFINITY;

  constructor(private readonly expire: (item: T) => void) {}

  add(item: T): void {
    const slot = Math.ceil(item.deadline / DEADLINE_SLOT_MS);
    let items = this.slots.get(slot);
    if (!items) this.slots.set(slot, (items = new Set()));
    items.add(item);
    if (slot < this.armedSlot) this.arm(slot);
  }

  delete(item: T): void {
    const slot = Math.ceil(item.deadline / DEADLINE_SLOT_MS);
    const items = this.slots.get(slot);
    if (items?.delete(item) && items.size === 0) this.slots.delete(slot);
  }

  /** Drops every waiter without expiring it (shutdown). */
  clear(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedSlot = Number.POSITIVE_INFINITY;
    this.slots.clear();
  }

  private arm(slot: number): void {
    clearTimeout(this.timer);
    this.armedSlot = slot;
    this.timer = setTimeout(() => this.sweep(), Math.max(0, slot * DEADLINE_SLOT_MS - Date.now()));
    this.timer.unref();
  }

  private sweep(): void {
    this.timer = undefined;
    this.armedSlot = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [slot, items] of this.slots) {
      if (slot * DEADLINE_SLOT_MS <= now) {
        this.slots.delete(slot);
        for (const item of items) this.expire(item);
      } else if (slot < next) {
        next = slot;
      }
    }
    if (next !== Number.POSITIVE_INFINITY && next < this.armedSlot) this.arm(next);
  }
}

/**
 * Publishes replies on a connection in CLIENT REPLY OFF mode. Redis then
 * answers nothing on it, so the owner is not woken once more per reply to read
 * a receiver count it has no use for (a lost reply is an ask timeout either
 * way); on this 2-core machine that extra wake-up cost about 0.4x a PING per
 * ask (BENCHMARKS.md). ioredis cannot track a connection that gets no answers,
 * so it only connects, authenticates and reconnects this one: once its
 * handshake is done, frames are written to its socket directly. `publish`
 * returns false (the caller then takes an ordinary connection) until the
 * current socket is muted, and for good if Redis answers anyway (CLIENT REPLY
 * refused, e.g. by a proxy).
 */
class ReplyPublisher {
  private muted: unknown;
  private refused = false;

  constructor(
    private readonly client: Redis,
    private readonly log: Logger,
  ) {
    client.on('ready', () => this.mute());
  }

  ready(): Promise<void> {
    return untilReady(this.client);
  }

  publish(channel: string, message: string): boolean {
    const stream = this.client.stream;
    if (this.refused || stream !== this.muted || this.client.status !== 'ready') return false;
    stream.write(respCommand('PUBLISH', channel, message));
    return true;
  }

  close(): Promise<void> {
    // QUIT would wait for an answer that never comes; the socket is flushed before it closes.
    this.client.disconnect();
    return Promise.resolve();
  }

  private mute(): void {
    if (this.refused) return;
    const stream = this.client.stream;
    stream.write(respCommand('CLIENT', 'REPLY', 'OFF'));
    stream.on('data', () => {
      if (this.refused) return;
      this.refused = true;
      this.log.warn('Redis answered on the muted reply connection (CLIENT REPLY OFF refused?): replies take the command connection');
    });
    this.muted = stream;
  }
}

/** One command in the Redis protocol (RESP2 array of bulk strings). */
function respCommand(...args: string[]): string {
  let frame = `*${args.length}\r\n`;
  for (const arg of args) frame += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return frame;
}

function countAsk(runtime: { metrics: ActorMetrics }, cache: Map<string, Map<AskOutcome, { inc(): void }>>, type: string, outcome: AskOutcome): void {
  let byOutcome = cache.get(type);
  if (!byOutcome) cache.set(type, (byOutcome = new Map()));
  let counter = byOutcome.get(outcome);
  if (!counter) byOutcome.set(outcome, (counter = runtime.metrics.asks.labels(type, outcome)));
  counter.inc();
}

function outcomeOf(err: unknown): AskOutcome {
  const code = isFlockError(err) ? err.code : 'SERVER_INTERNAL';
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
