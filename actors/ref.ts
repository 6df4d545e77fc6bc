// A typed reference to an actor: what callers hold instead of an instance.
// Typed by the actor's interface (its messages), never its implementation.
import type { ActorInterface, InputOf, MessageName, OutputOf } from './define.ts';

export interface ActorSender {
  ask<I extends ActorInterface, K extends MessageName<I>>(
    type: I,
    key: string,
    message: K,
    input: InputOf<I, K>,
    options?: AskOptions,
  ): Promise<OutputOf<I, K>>;
  tell<I extends ActorInterface, K extends MessageName<I>>(type: I, key: string, message: K, input: InputOf<I, K>): Promise<void>;
}

/** What channels, consumers and jobs hold to reach actors. */
export interface ActorSystem extends ActorSender {
  ref<I extends ActorInterface>(type: I, key: string): ActorRef<I>;
}

export interface AskOptions {
  /** Default: the runtime's defaultTimeoutMs. */
  timeoutMs?: number;
}

export class ActorRef<I extends ActorInterface> {
  constructor(
    private readonly sender: ActorSender,
    readonly type: I,
    readonly key: string,
  ) {}

  /** Request/response; rejects with a FlockError (ACTOR_TIMEOUT, ACTOR_BUSY, ...) on failure. */
  ask<K extends MessageName<I>>(message: K, input: InputOf<I, K>, options?: AskOptions): Promise<OutputOf<I, K>> {
    return this.sender.ask(this.type, this.key, message, input, options);
  }

  /** One-way: resolves once the message is validated and handed to routing. */
  tell<K extends MessageName<I>>(message: K, input: InputOf<I, K>): Promise<void> {
    return this.sender.tell(this.type, this.key, message, input);
  }
}
