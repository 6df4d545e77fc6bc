// A message on its way to an actor (Request), and the turns the runtime
// submits to activations: one for an ask or tell made on this node, one for a
// request that came from another node. Both keep their request, so a closing
// activation can hand them back for rerouting.
import { FlockError } from '../kernel/errors.ts';
import type { Turn } from './activation.ts';
import type { Deadlines } from './deadlines.ts';
import type { ActorType } from './define.ts';
import type { RequestEnvelope } from './envelope.ts';

/** A validated message for an actor, with its routing state. */
export interface Request {
  def: ActorType;
  key: string;
  /** `type/key`. */
  address: string;
  message: string;
  input: unknown;
  chain: string[];
  deadline: number;
  hops: number;
}

export abstract class RoutedTurn implements Turn {
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
export class LocalTurn extends RoutedTurn {
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

/** Where the outcome of a request from another node goes. */
export interface ReplySink {
  ok(env: RequestEnvelope, output: unknown): void;
  error(env: RequestEnvelope, err: unknown): void;
}

/**
 * The turn of a request from another node: its outcome goes straight to the
 * sender's inbox. It needs no deadline of its own: the sender stops waiting at
 * the request's deadline, and an expired turn is not started.
 */
export class InboxTurn extends RoutedTurn {
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
