// How an actor type is declared: its message schemas, state schema, handlers
// and persistence policy, in one object from which callers get their types.
// Interface first: callers hold an ActorRef (actors/ref.ts), never an instance.
import type { z } from 'zod';
import type { Logger } from '../kernel/logger.ts';
import type { ActorServices } from './services.ts';

export interface MessageDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  input: I;
  output: O;
}

export type MessageDefs = Record<string, MessageDef>;

/**
 * durable: state is saved (fenced, versioned) before the reply; an acknowledged
 *   change survives any crash.
 * cached: state is written behind at most `flushAfterMs` after a change and
 *   always on passivation and graceful shutdown; a crash loses the changes of
 *   at most the last `flushAfterMs`.
 */
export type PersistencePolicy = { kind: 'durable' } | { kind: 'cached'; flushAfterMs: number };

export interface ActorContext<S> {
  readonly type: string;
  readonly key: string;
  /** The current state; replace it with setState (do not mutate in place). */
  readonly state: S;
  setState(next: S): void;
  /**
   * Fencing token of this activation: larger than the epoch of every earlier
   * activation of this actor. Documents the actor owns outside its state are
   * written with an `epoch <= mine` condition so a stale owner cannot touch them.
   */
  readonly epoch: number;
  /**
   * Runs `effect` after this turn's state is committed and before the reply;
   * if it throws, the sender gets ACTOR_UNAVAILABLE (the state stays saved, so
   * record in it whatever `onActivate` needs to redo the effect).
   */
  afterCommit(effect: () => Promise<void>): void;
  /** Stores of the domain documents actors own (see actors/services.ts). */
  readonly services: ActorServices;
  log: Logger;
  /** Ask another actor from inside a handler; carries the call chain for cycle detection. */
  ask<D extends ActorType, K extends MessageName<D>>(
    type: D,
    key: string,
    message: K,
    input: InputOf<D, K>,
    options?: { timeoutMs?: number },
  ): Promise<OutputOf<D, K>>;
  tell<D extends ActorType, K extends MessageName<D>>(type: D, key: string, message: K, input: InputOf<D, K>): Promise<void>;
  /** Volatile timer: sends `message` to this actor after `delayMs` (repeatedly if `repeat`) while it stays active. */
  setTimer(name: string, delayMs: number, message: string, input: unknown, options?: { repeat?: boolean }): void;
  clearTimer(name: string): void;
  /** Durable reminder: survives passivation and restarts; delivered at least once. */
  setReminder(name: string, options: { dueInMs: number; periodMs?: number; message: string; input: unknown }): Promise<void>;
  cancelReminder(name: string): Promise<void>;
}

export type Handler<S, M extends MessageDef> = (
  ctx: ActorContext<S>,
  input: z.output<M['input']>,
) => z.input<M['output']> | Promise<z.input<M['output']>>;

export interface ActorDefinition<S extends z.ZodType, M extends MessageDefs> {
  /** Stable type name: part of every actor address and stored document id. */
  type: string;
  state: S;
  initialState: () => z.output<S>;
  messages: M;
  handlers: { [K in keyof M]: Handler<z.output<S>, M[K]> };
  persistence: PersistencePolicy;
  /**
   * Runs before the first turn of every activation, with the loaded state: the
   * place to redo effects a crashed owner may have left half done. It may set
   * state; if it throws, the turn that woke the actor fails with
   * ACTOR_UNAVAILABLE and the hook runs again before the next turn.
   */
  onActivate?: (ctx: ActorContext<z.output<S>>) => Promise<void>;
  /** Passivate after this long without messages (default: the runtime's). */
  idleAfterMs?: number;
  /** Messages queued per activation before senders get ACTOR_BUSY (default: the runtime's). */
  mailboxCapacity?: number;
}

// The defaults are `any` so that every concrete ActorType<S, M> is an ActorType:
// handlers are contravariant in their state and would not widen otherwise.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface ActorType<S extends z.ZodType = any, M extends MessageDefs = any> extends ActorDefinition<S, M> {
  readonly __actorType: true;
}

export type MessageName<D extends ActorType> = Extract<keyof D['messages'], string>;
export type InputOf<D extends ActorType, K extends MessageName<D>> = z.input<D['messages'][K]['input']>;
export type OutputOf<D extends ActorType, K extends MessageName<D>> = z.output<D['messages'][K]['output']>;

const TYPE_NAME = /^[a-z][a-z0-9-]{0,39}$/;

export function defineActor<S extends z.ZodType, M extends MessageDefs>(definition: ActorDefinition<S, M>): ActorType<S, M> {
  if (!TYPE_NAME.test(definition.type)) throw new Error(`actor type name ${JSON.stringify(definition.type)} must match ${TYPE_NAME}`);
  if (definition.persistence.kind === 'cached' && !(definition.persistence.flushAfterMs > 0)) {
    throw new Error(`actor type ${definition.type}: cached persistence needs flushAfterMs > 0`);
  }
  return { ...definition, __actorType: true };
}

