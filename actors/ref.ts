// A typed reference to an actor: what callers hold instead of an instance.
import type { ActorType, InputOf, MessageName, OutputOf } from './define.ts';

export interface ActorSender {
  ask<D extends ActorType, K extends MessageName<D>>(type: D, key: string, message: K, input: InputOf<D, K>, options?: AskOptions): Promise<OutputOf<D, K>>;
  tell<D extends ActorType, K extends MessageName<D>>(type: D, key: string, message: K, input: InputOf<D, K>): Promise<void>;
}

export interface AskOptions {
  /** Default: the runtime's defaultTimeoutMs. */
  timeoutMs?: number;
}

export class ActorRef<D extends ActorType> {
  constructor(
    private readonly sender: ActorSender,
    readonly type: D,
    readonly key: string,
  ) {}

  /** Request/response; rejects with a FlockError (ACTOR_TIMEOUT, ACTOR_BUSY, ...) on failure. */
  ask<K extends MessageName<D>>(message: K, input: InputOf<D, K>, options?: AskOptions): Promise<OutputOf<D, K>> {
    return this.sender.ask(this.type, this.key, message, input, options);
  }

  /** One-way: resolves once the message is validated and handed to routing. */
  tell<K extends MessageName<D>>(message: K, input: InputOf<D, K>): Promise<void> {
    return this.sender.tell(this.type, this.key, message, input);
  }
}
