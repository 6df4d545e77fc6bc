// A consumer group on the social domain events stream (events/domain.ts).
// Every node runs one consumer per group; Redis hands each event to one of
// them. An event is acknowledged once its handler succeeded; one that failed
// stays pending, and its consumer tries it again after 1 s, then 2, 4, 8 s
// (a backing service or an actor's node was away: notifications and fan-out
// resume seconds after it is back, not after the claim time); one a dead
// consumer left is claimed by another node after 30 s, so a node that dies
// mid-batch loses nothing. While a batch is being handled its consumer
// keeps resetting the events' idle time, so a slow handler on a live node is
// not taken over. Handlers must still be idempotent. A malformed entry is
// acknowledged and dropped (nothing would ever make it readable).
//
// Redis losing its data (FLUSHALL, a restart without persistence) takes the
// group with it, and every read then fails with NOGROUP: the consumer creates
// the group again, from the start of the stream (everything in it was appended
// after the loss), and carries on. Events appended before the loss and not
// yet handled are gone with it.
import type { Logger } from '../kernel/logger.ts';
import { createRedis, untilReady, type Redis } from '../kernel/redis.ts';
import { z } from 'zod';
import { RedisScript } from '../kernel/redis-script.ts';
import { parseDomainEvent, type DomainEvent } from './domain.ts';

const BATCH = 100;
const BLOCK_MS = 1_000;
/** An event pending this long with another consumer is taken over. */
const CLAIM_IDLE_MS = 30_000;
const CLAIM_EVERY_MS = 10_000;
/** Resets the idle time of those of the given events still pending with this consumer (never takes one back). */
const KEEP_CLAIMED_LUA = `
local kept = 0
for i = 1, #ARGV - 2 do
  local id = ARGV[i + 2]
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1, ARGV[2])
  if #pending > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id, 'JUSTID')
    kept = kept + 1
  end
end
return kept`;
const keepClaimedScript = new RedisScript('events keep claimed', KEEP_CLAIMED_LUA, z.number());

/** First retry of this consumer's own failed events, doubled while they keep failing. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 8_000;

/** A stream entry: its id and its field/value list. */
const entry = z.tuple([z.string(), z.array(z.string())]);
/** XREADGROUP of this consumer's pending entries: one deleted from the stream meanwhile comes back without fields. */
const ownReply = z.array(z.tuple([z.string(), z.array(z.tuple([z.string(), z.array(z.string()).nullable()]))])).nullable();
type Entry = z.output<typeof entry>;
/** XREADGROUP on one stream: null when nothing came within BLOCK_MS. */
const readReply = z.array(z.tuple([z.string(), z.array(entry)])).nullable();
/** XAUTOCLAIM: the next cursor and the claimed entries (null for entries deleted meanwhile); Redis 7 adds the deleted ids. */
const autoclaimReply = z.tuple([z.string(), z.array(entry.nullable())]).rest(z.unknown());

/** Events handled at once. */
const PARALLEL = 16;

export interface EventConsumerOptions {
  redisUrl: string;
  streamKey: string;
  group: string;
  nodeId: string;
  log: Logger;
  handle(event: DomainEvent): Promise<void>;
  /** An event pending this long with another consumer is taken over (default 30 s). Its consumer refreshes it 3 times as often. */
  claimIdleMs?: number;
  /** How often to look for events to take over (default 10 s). */
  claimEveryMs?: number;
}

export class EventConsumer {
  private readonly redis: Redis;
  private running = false;
  private loop: Promise<void> | undefined;
  private lastClaim = 0;
  private claims = 0;
  private recreated = 0;
  /** 0 while none of this consumer's events has failed; else the wait before the next retry of them. */
  private retryDelay = 0;
  private retryAt = 0;
  private readonly claimIdleMs: number;
  private readonly claimEveryMs: number;

  constructor(private readonly options: EventConsumerOptions) {
    this.claimIdleMs = options.claimIdleMs ?? CLAIM_IDLE_MS;
    this.claimEveryMs = options.claimEveryMs ?? CLAIM_EVERY_MS;
    this.redis = createRedis(options.redisUrl, `flock:${options.nodeId}:${options.group}`, options.log);
  }

  /** Joins the group (created at the stream's end if new: earlier events are not replayed) and starts reading. */
  async start(): Promise<void> {
    await untilReady(this.redis);
    await this.createGroup('$');
    this.running = true;
    this.loop = this.run();
  }

  /** Groups created again after Redis lost them (a barrier for tests). */
  get groupsRecreated(): number {
    return this.recreated;
  }

  /** Creates the group at `from` unless it exists (another node may have just created it). */
  private async createGroup(from: '$' | '0'): Promise<void> {
    await this.redis.xgroup('CREATE', this.options.streamKey, this.options.group, from, 'MKSTREAM').catch((err: unknown) => {
      if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop; // the blocking read returns within BLOCK_MS
    this.redis.disconnect();
  }

  private async run(): Promise<void> {
    const { streamKey, group, nodeId, log } = this.options;
    while (this.running) {
      try {
        if (Date.now() - this.lastClaim > this.claimEveryMs) await this.claimStale();
        if (this.retryDelay > 0 && Date.now() >= this.retryAt) await this.retryOwn();
        const res = readReply.parse(await this.redis.xreadgroup('GROUP', group, nodeId, 'COUNT', BATCH, 'BLOCK', BLOCK_MS, 'STREAMS', streamKey, '>'));
        const entries = res?.[0]?.[1];
        if (entries) await this.handle(entries);
      } catch (err) {
        if (!this.running) return;
        if (err instanceof Error && err.message.startsWith('NOGROUP')) {
          log.warn({ group, streamKey }, 'event consumer: Redis lost the consumer group; creating it again from the start of the stream');
          const created = await this.createGroup('0').then(
            () => true,
            (failure: unknown) => {
              log.warn({ err: failure, group }, 'event consumer: could not create the group again; retrying');
              return false;
            },
          );
          if (created) {
            this.recreated += 1;
            continue;
          }
        } else {
          log.warn({ err, group }, 'event consumer: read failed; retrying');
        }
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  }

  /** Claim passes completed (each took over, and handled, whatever was stale): a barrier for tests. */
  get claimPasses(): number {
    return this.claims;
  }

  /** Handles again this consumer's events that failed (its pending entries), backing off while they keep failing. */
  private async retryOwn(): Promise<void> {
    const { streamKey, group, nodeId } = this.options;
    const res = ownReply.parse(await this.redis.xreadgroup('GROUP', group, nodeId, 'COUNT', BATCH, 'STREAMS', streamKey, '0'));
    const entries = (res?.[0]?.[1] ?? []).map(([id, fields]): Entry => [id, fields ?? []]);
    if (entries.length === 0) {
      this.retryDelay = 0;
      return;
    }
    const failed = await this.handle(entries);
    if (failed === 0) {
      // More may wait beyond this batch: go on at once (an empty read ends it).
      this.retryAt = Date.now();
      return;
    }
    this.retryDelay = Math.min(2 * this.retryDelay, RETRY_MAX_MS);
    this.retryAt = Date.now() + this.retryDelay;
  }

  /** Takes over events another consumer (perhaps a dead node) left unacknowledged. */
  private async claimStale(): Promise<void> {
    this.lastClaim = Date.now();
    const { streamKey, group, nodeId } = this.options;
    const [, entries] = autoclaimReply.parse(await this.redis.xautoclaim(streamKey, group, nodeId, this.claimIdleMs, '0-0', 'COUNT', BATCH));
    const live = entries.filter((e) => e !== null);
    if (live.length > 0) await this.handle(live);
    this.claims += 1;
  }

  /** Handles a batch and acknowledges what succeeded; resolves with how many failed (left pending, retried later). */
  private async handle(entries: Entry[]): Promise<number> {
    const { log, group, streamKey, nodeId } = this.options;
    const done: string[] = [];
    // Until the ack, every event of the batch (a slow one may hold up the others) stays claimed.
    const ids = entries.map(([id]) => id);
    const keepClaimed = setInterval(() => {
      keepClaimedScript.run(this.redis, [streamKey], [group, nodeId, ...ids]).catch((err: unknown) => {
        log.warn({ err, group }, 'event consumer: could not refresh the claim on events being handled');
      });
    }, this.claimIdleMs / 3);
    keepClaimed.unref();
    try {
      await this.handleAll(entries, done);
    } finally {
      clearInterval(keepClaimed);
    }
    if (done.length > 0) await this.redis.xack(streamKey, group, ...done);
    const failed = entries.length - done.length;
    if (failed > 0 && this.retryDelay === 0) {
      this.retryDelay = RETRY_FIRST_MS;
      this.retryAt = Date.now() + RETRY_FIRST_MS;
    }
    return failed;
  }

  private async handleAll(entries: Entry[], done: string[]): Promise<void> {
    const { log, group } = this.options;
    for (let i = 0; i < entries.length; i += PARALLEL) {
      await Promise.all(
        entries.slice(i, i + PARALLEL).map(async ([streamId, fields]) => {
          const event = parseDomainEvent(fields[fields.indexOf('event') + 1] ?? '');
          if (!event) {
            log.warn({ streamId, group }, 'event consumer: malformed event dropped');
            done.push(streamId);
            return;
          }
          try {
            await this.options.handle(event);
            done.push(streamId);
          } catch (err) {
            // Left pending: claimed again after claimIdleMs.
            log.warn({ err, streamId, group }, 'event consumer: event not handled; will retry');
          }
        }),
      );
    }
  }
}
