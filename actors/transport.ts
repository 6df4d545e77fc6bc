// Messages between the runtimes of different nodes, over Redis pub/sub: each
// runtime listens on its inbox channel; an ask is published to the owner's
// inbox and its reply comes back on the sender's. Every envelope is parsed on
// arrival (another node is a trust boundary like any client). Requests for
// actors are handed to the runtime; replies settle the asks waiting here, at
// the latest with ACTOR_TIMEOUT at their deadline.
import { FlockError, toErrorBody } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import { createRedis, untilReady, type Redis } from '../kernel/redis.ts';
import { Deadlines } from './deadlines.ts';
import { MAX_ENVELOPE_BYTES, replyEnvelope, requestEnvelope, type ReplyEnvelope, type RequestEnvelope } from './envelope.ts';
import { ReplyPublisher } from './reply-publisher.ts';
import type { ReplySink, Request } from './turns.ts';

/** What the transport hands requests to. */
export interface TransportHost {
  onRequest(env: RequestEnvelope): void;
  /** An ask to `address` timed out: its owner may be paused or dead. */
  onAskTimeout(address: string): void;
}

/** The result of a publish nobody received (the owner's node is gone). */
export const UNDELIVERED = Symbol('undelivered');

/** An ask published to another node, waiting for its reply. */
interface PendingAsk {
  id: string;
  request: Request;
  deadline: number;
  resolve(output: unknown): void;
  reject(err: unknown): void;
}

export class Transport implements ReplySink {
  private readonly sub: Redis;
  private readonly replies: ReplyPublisher;
  private readonly pending = new Map<string, PendingAsk>();
  private readonly deadlines = new Deadlines<PendingAsk>((p) => this.expire(p));
  private requestSeq = 0;

  constructor(
    private readonly runtimeId: string,
    redisUrl: string,
    /** The runtime's command connection, shared with the directory. */
    private readonly cmd: Redis,
    /** The channel a runtime listens on. */
    private readonly inboxChannel: (runtimeId: string) => string,
    private readonly host: TransportHost,
    private readonly log: Logger,
  ) {
    this.sub = createRedis(redisUrl, `flock:${runtimeId}:actors-sub`, log);
    this.replies = new ReplyPublisher(createRedis(redisUrl, `flock:${runtimeId}:actors-replies`, log), log);
  }

  async open(): Promise<void> {
    this.sub.on('message', (_channel: string, raw: string) => this.onInbox(raw));
    await untilReady(this.sub);
    await this.sub.subscribe(this.inboxChannel(this.runtimeId));
    await this.replies.ready();
  }

  /** Stops waiting for every ask (they fail with ACTOR_UNAVAILABLE) and closes the connections. */
  async close(): Promise<void> {
    this.deadlines.clear();
    for (const p of this.pending.values()) p.reject(new FlockError('ACTOR_UNAVAILABLE', 'node shutting down'));
    this.pending.clear();
    await Promise.allSettled([this.sub.quit(), this.replies.close()]);
  }

  /** Publishes the request to the owner's inbox; UNDELIVERED when nobody listens there. */
  send(owner: string, request: Request): Promise<unknown> {
    const id = `${this.runtimeId}:${(this.requestSeq++).toString(36)}`;
    const env: RequestEnvelope = {
      kind: 'ask',
      id,
      replyTo: this.runtimeId,
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
      this.deadlines.add(pending);
      // The reply may be handled before this acknowledgement; either way, whichever settles first wins.
      this.cmd.publish(this.inboxChannel(owner), payload).then(
        (receivers) => {
          if (receivers === 0 && this.forget(pending)) resolve(UNDELIVERED);
        },
        (err: unknown) => {
          if (this.forget(pending)) reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }

  /** Answers a request from another node (asks only; tells get no reply). */
  ok(env: RequestEnvelope, output: unknown): void {
    if (env.kind === 'ask') this.publishReply(env, { kind: 'reply', id: env.id, ok: true, output });
  }

  error(env: RequestEnvelope, err: unknown): void {
    if (env.kind !== 'ask') return;
    this.publishReply(env, { kind: 'reply', id: env.id, ok: false, error: toErrorBody(err) });
  }

  private publishReply(env: RequestEnvelope, reply: ReplyEnvelope): void {
    const channel = this.inboxChannel(env.replyTo);
    const payload = JSON.stringify(reply);
    if (this.replies.publish(channel, payload)) return;
    // The reply connection is (re)connecting: take the ordinary one.
    this.cmd.publish(channel, payload).catch((err: unknown) => this.log.warn({ err }, 'reply publish failed'));
  }

  /** Stops waiting for a remote ask; false if it was settled already. */
  private forget(pending: PendingAsk): boolean {
    if (this.pending.get(pending.id) !== pending) return false;
    this.pending.delete(pending.id);
    this.deadlines.delete(pending);
    return true;
  }

  private expire(pending: PendingAsk): void {
    if (this.pending.get(pending.id) !== pending) return;
    this.pending.delete(pending.id);
    this.host.onAskTimeout(pending.request.address);
    pending.reject(new FlockError('ACTOR_TIMEOUT', `${pending.request.address}: no answer to ${pending.request.message} in time`));
  }

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
    if (typeof raw === 'object' && raw !== null && 'kind' in raw && raw.kind === 'reply') {
      const parsed = replyEnvelope.safeParse(raw);
      if (parsed.success) this.onReply(parsed.data);
      else this.log.warn({ issues: parsed.error.issues.length }, 'invalid actor reply dropped');
      return;
    }
    const parsed = requestEnvelope.safeParse(raw);
    if (parsed.success) this.host.onRequest(parsed.data);
    else this.log.warn({ issues: parsed.error.issues.length }, 'invalid actor envelope dropped');
  }

  private onReply(env: ReplyEnvelope): void {
    const pending = this.pending.get(env.id);
    if (!pending || !this.forget(pending)) return; // timed out already
    const { request } = pending;
    if (!env.ok) {
      pending.reject(new FlockError(env.error.code, env.error.message, env.error.details === undefined ? {} : { details: env.error.details }));
      return;
    }
    const output = request.def.messages[request.message]!.output.safeParse(env.output);
    if (output.success) pending.resolve(output.data);
    else pending.reject(new FlockError('ACTOR_HANDLER_FAILED', `${request.address}: reply fails the output schema`));
  }
}
