// How actor types are declared. Interface first: an actor's interface (its
// type name and message schemas, actors/contracts/) is all a caller needs to
// hold a typed reference; the implementation (state, persistence, handlers,
// effects) is registered with the runtime on every node and reached only
// through messages.
import type { z } from 'zod';
import type { Logger } from '../kernel/logger.ts';
import type { ActorServices } from './services.ts';

export interface MessageDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  input: I;
  output: O;
}

export type MessageDefs = Record<string, MessageDef>;

/** What callers see of an actor type: its name and its messages. */
export interface ActorInterface<M extends MessageDefs = MessageDefs> {
  /** Stable type name: part of every actor address and stored document id. */
  readonly type: string;
  readonly messages: M;
}

export type MessageName<I extends ActorInterface> = Extract<keyof I['messages'], string>;
export type InputOf<I extends ActorInterface, K extends MessageName<I>> = z.input<I['messages'][K]['input']>;
export type OutputOf<I extends ActorInterface, K extends MessageName<I>> = z.output<I['messages'][K]['output']>;

/**
 * Where an actor's state lives and when it gets there.
 *
 * durable: in `actor_states`, saved (fenced, versioned) before the reply to
 *   every turn that changed it; an acknowledged change survives any crash.
 * cached: in `actor_states`, written behind at most `flushAfterMs` after a
 *   change and always on passivation and graceful shutdown; a crash loses the
 *   changes of at most the last `flushAfterMs`. No effects.
 * document: the state is a domain document (one per actor, `_id` = key) in
 *   `collection`, which only the actor writes: claimed for the activation's
 *   epoch when it activates, saved like durable state (only the fields that
 *   changed), `null` while it does not exist. Readers query the collection
 *   directly.
 */
export type PersistencePolicy = { kind: 'durable' } | { kind: 'cached'; flushAfterMs: number } | { kind: 'document'; collection: string };

export interface ActorContext<S, E = never> {
  readonly type: string;
  readonly key: string;
  /** The current state; replace it with setState (do not mutate in place). */
  readonly state: S;
  setState(next: S): void;
  /**
   * Fencing token of this activation: larger than the epoch of every earlier
   * activation of this actor. Documents the actor owns outside its state are
   * written with an `epoch <= mine` condition (kernel/fenced.ts) so a stale
   * owner cannot touch them.
   */
  readonly epoch: number;
  /**
   * The version the state has once this turn commits: it grows with every
   * commit of this actor, so ids made from it (of the domain events a turn
   * emits) are unique per change and the same when the effect is redone.
   */
  readonly nextVersion: number;
  /**
   * Records an effect (a value of the type's effect schema) to run after this
   * turn's state is saved and before the reply. Effects are saved with the
   * state, run in order by the type's `effects.run`, and run again when the
   * actor next activates if a crash may have cut them short, so each must be
   * idempotent. If one fails the sender gets its error (ACTOR_UNAVAILABLE for
   * errors that are not Flock errors) and they all run again before the next
   * turn. An effect that can never succeed may compensate: it sets a new state
   * and throws; that state is saved with no effects left to do.
   */
  effect(effect: E): void;
  /** Stores of the domain documents actors own (see actors/services.ts). */
  readonly services: ActorServices;
  log: Logger;
  /** Ask another actor from inside a handler; carries the call chain for cycle detection. */
  ask<I extends ActorInterface, K extends MessageName<I>>(
    type: I,
    key: string,
    message: K,
    input: InputOf<I, K>,
    options?: { timeoutMs?: number },
  ): Promise<OutputOf<I, K>>;
  tell<I extends ActorInterface, K extends MessageName<I>>(type: I, key: string, message: K, input: InputOf<I, K>): Promise<void>;
  /** Volatile timer: sends `message` to this actor after `delayMs` (repeatedly if `repeat`) while it stays active. */
  setTimer(name: string, delayMs: number, message: string, input: unknown, options?: { repeat?: boolean }): void;
  clearTimer(name: string): void;
  /** Durable reminder: survives passivation and restarts; delivered at least once. */
  setReminder(name: string, options: { dueInMs: number; periodMs?: number; message: string; input: unknown }): Promise<void>;
  cancelReminder(name: string): Promise<void>;
}

export type Handler<S, E, M extends MessageDef> = (
  ctx: ActorContext<S, E>,
  input: z.output<M['input']>,
) => z.input<M['output']> | Promise<z.input<M['output']>>;

/** The effects an actor type records (a zod schema, usually a discriminated union) and the function that does one. */
export interface EffectsDef<S, E extends z.ZodType> {
  schema: E;
  run(ctx: ActorContext<S, z.output<E>>, effect: z.output<E>): Promise<void>;
  /**
   * Turns an effect stored before 0.2.0 (an object of the type's older
   * bookkeeping, not the JSON of an effect) into an effect, or undefined when
   * nothing is left to do; the result is parsed with `schema`. Read for one
   * release.
   */
  upgrade?: (stored: unknown) => unknown;
}

export interface ActorImplementation<M extends MessageDefs, S extends z.ZodType, E extends z.ZodType> {
  state: S;
  initialState: () => z.output<S>;
  persistence: PersistencePolicy;
  effects?: EffectsDef<z.output<S>, E>;
  handlers: { [K in keyof M]: Handler<z.output<S>, z.output<E>, M[K]> };
  /**
   * Runs before the first turn of every activation (after the effects left by
   * the last commit were redone), with the loaded state, and again before the
   * next turn after an effect failed. It may set state and record effects; if
   * it throws, the turn that woke the actor fails with ACTOR_UNAVAILABLE and
   * the hook runs again before the next turn. It must be idempotent.
   */
  onActivate?: (ctx: ActorContext<z.output<S>, z.output<E>>) => Promise<void>;
  /** Passivate after this long without messages (default: the runtime's). */
  idleAfterMs?: number;
  /** Messages queued per activation before senders get ACTOR_BUSY (default: the runtime's). */
  mailboxCapacity?: number;
}

/** An actor type as declared: its interface and its implementation, fully typed. */
export interface ActorDefinition<S extends z.ZodType, M extends MessageDefs, E extends z.ZodType> extends ActorInterface<M>, ActorImplementation<M, S, E> {
  readonly __actorType: true;
}

/**
 * A function type checked bivariantly in its parameters (as methods are), so
 * that a handler typed for its own state and messages fits the runtime's
 * erased view below; the runtime only calls it with what the type's own
 * schemas parsed.
 */
type Erased<Args extends unknown[], R> = { bivariant(...args: Args): R }['bivariant'];
type AnyContext = ActorContext<unknown, unknown>;

/** How the runtime sees any registered actor type, whatever its state, messages and effects. */
export interface ActorType extends ActorInterface {
  readonly __actorType: true;
  readonly state: z.ZodType;
  initialState(): unknown;
  readonly persistence: PersistencePolicy;
  readonly effects?: { readonly schema: z.ZodType; run: Erased<[ctx: AnyContext, effect: unknown], Promise<void>>; upgrade?: (stored: unknown) => unknown };
  readonly handlers: Readonly<Record<string, Erased<[ctx: AnyContext, input: unknown], unknown>>>;
  readonly onActivate?: Erased<[ctx: AnyContext], Promise<void>>;
  readonly idleAfterMs?: number;
  readonly mailboxCapacity?: number;
}

const TYPE_NAME = /^[a-z][a-z0-9-]{0,39}$/;

export function defineActorInterface<M extends MessageDefs>(iface: { type: string; messages: M }): ActorInterface<M> {
  if (!TYPE_NAME.test(iface.type)) throw new Error(`actor type name ${JSON.stringify(iface.type)} must match ${TYPE_NAME}`);
  return { type: iface.type, messages: iface.messages };
}

/** The implementation of an interface, to register with the runtime. */
export function implementActor<M extends MessageDefs, S extends z.ZodType, E extends z.ZodType = z.ZodNever>(
  iface: ActorInterface<M>,
  implementation: ActorImplementation<M, S, E>,
): ActorDefinition<S, M, E> {
  const { persistence } = implementation;
  if (persistence.kind === 'cached' && !(persistence.flushAfterMs > 0)) throw new Error(`actor type ${iface.type}: cached persistence needs flushAfterMs > 0`);
  if (persistence.kind === 'cached' && implementation.effects) throw new Error(`actor type ${iface.type}: effects need durable or document persistence`);
  if (persistence.kind === 'document' && !/^[a-z][a-z0-9_]{0,63}$/.test(persistence.collection))
    throw new Error(`actor type ${iface.type}: bad collection name`);
  return { ...implementation, type: iface.type, messages: iface.messages, __actorType: true };
}

/** Interface and implementation in one declaration (types only one module uses, such as test fixtures). */
export function defineActor<M extends MessageDefs, S extends z.ZodType, E extends z.ZodType = z.ZodNever>(
  definition: { type: string; messages: M } & ActorImplementation<M, S, E>,
): ActorDefinition<S, M, E> {
  const { type, messages, ...implementation } = definition;
  return implementActor(defineActorInterface({ type, messages }), implementation);
}
