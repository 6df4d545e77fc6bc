// The context a handler, an effect or an onActivate hook gets: built once per
// activation, it reads the turn in progress and the staged state (turns never
// overlap), and reaches other actors, timers and reminders through the
// runtime.
import { toErrorBody } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import type { Activation } from './activation.ts';
import type { ActorContext, ActorInterface } from './define.ts';
import type { Reminders } from './reminders.ts';
import type { ActorServices } from './services.ts';
import type { Request } from './turns.ts';

/** What a context needs from the runtime. */
export interface ContextHost {
  readonly log: Logger;
  readonly services: ActorServices;
  readonly reminders: Reminders;
  readonly defaultTimeoutMs: number;
  validate(def: ActorInterface, key: string, message: string, input: unknown, chain: string[], timeoutMs: number): Request;
  /** An ask with a call chain (cycle detection). */
  send(def: ActorInterface, key: string, message: string, input: unknown, chain: string[], timeoutMs?: number): Promise<unknown>;
  /** Runs a validated request where its actor lives. */
  dispatch(request: Request): Promise<unknown>;
}

export function actorContext(activation: Activation, host: ContextHost): ActorContext<unknown, unknown> {
  const chain = () => [...(activation.currentTurn?.chain ?? []), activation.address];
  const { staged } = activation;
  let log: Logger | undefined;
  const tell = (request: Request, what: Record<string, unknown>) => {
    void host.dispatch(request).catch((err: unknown) => host.log.warn({ err: toErrorBody(err), actor: request.address, ...what }, 'tell failed'));
  };
  return {
    type: activation.def.type,
    key: activation.key,
    get state() {
      return staged.state;
    },
    setState(next: unknown) {
      staged.state = next;
      staged.changed = true;
    },
    epoch: activation.epoch,
    get nextVersion() {
      return activation.nextVersion;
    },
    effect(effect: unknown) {
      if (staged.inEffect) throw new Error(`${activation.address}: an effect cannot record effects`);
      staged.effects.push(effect);
    },
    get services() {
      return host.services;
    },
    get log() {
      return (log ??= host.log.child({ actor: activation.address }));
    },
    // The runtime checks the output against the interface's schema; the caller's type comes from the same schema.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- the output was parsed with the schema its type comes from.
    ask: (def, key, message, input, options) => host.send(def, key, message, input, chain(), options?.timeoutMs) as never,
    tell: async (def, key, message, input) => tell(host.validate(def, key, message, input, [], host.defaultTimeoutMs), { from: activation.address }),
    setTimer: (name, delayMs, message, input, options) => {
      host.validate(activation.def, activation.key, message, input, [], host.defaultTimeoutMs);
      clearTimeout(activation.timers.get(name));
      const fire = () => {
        if (activation.status !== 'active') return;
        if (options?.repeat) activation.timers.set(name, setTimeout(fire, delayMs));
        else activation.timers.delete(name);
        tell(host.validate(activation.def, activation.key, message, input, [], host.defaultTimeoutMs), { timer: name });
      };
      activation.timers.set(name, setTimeout(fire, delayMs));
    },
    clearTimer: (name) => {
      clearTimeout(activation.timers.get(name));
      activation.timers.delete(name);
    },
    setReminder: (name, options) => {
      host.validate(activation.def, activation.key, options.message, options.input, [], host.defaultTimeoutMs);
      return host.reminders.set(activation.def.type, activation.key, name, options);
    },
    cancelReminder: (name) => host.reminders.cancel(activation.def.type, activation.key, name),
  };
}
