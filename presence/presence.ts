// Presence: who is online, and when each user was last seen, across the
// cluster, staying right when a node crashes.
//
// Each node process is an instance (`{nodeId}.{random}`, so a restarted node
// never inherits its predecessor's sockets) holding a lease in Redis that it
// renews every leaseMs/3. The node counts its own sockets per user in memory
// (the sockets live in this process anyway) and tells Redis only when a user
// gets their first socket on the instance or loses their last, so Redis holds
// one field per (user, instance), however many sockets a user opens.
//
// Keys (prefix "flock" by default):
//   {prefix}:presence:node:{instance}        lease (token, PX leaseMs)
//   {prefix}:presence:node:{instance}:users  set of user ids on the instance
//   {prefix}:presence:nodes                  zset instance -> last heartbeat
//   {prefix}:presence:user:{userId}          hash: n:{instance}, online, seen
//   {prefix}:presence:changes                pub/sub channel of transitions
// Every key has a TTL (the lease leaseMs; the others retentionMs, refreshed
// while in use), so nothing outlives a cluster that disappears.
//
// Guarantees:
//  - status() is authoritative: a user is online iff one of their instances
//    holds a live lease, so a crashed node's users read as offline as soon as
//    its lease lapses, before any sweep, with lastSeen = its last heartbeat.
//  - onChange() gets each transition once per subscribed node: the scripts
//    flip a per-user "published" flag and publish in the same atomic step, so
//    a user going offline is announced once even when their last two sockets
//    close on two nodes at once or several nodes sweep the same dead node.
//    Pub/sub is at-most-once: a node whose subscriber connection drops misses
//    what was published meanwhile; status() is the source of truth.
//  - A dead instance is swept by whichever live nodes notice (every leaseMs/3),
//    in batches, idempotently: its users go offline unless they have another
//    live instance. A node that was presumed dead (paused, partitioned) finds
//    its lease gone at the next renewal, registers again and reconciles: its
//    users come back online.
//  - Reconciliation (every reconcileEveryMs, and after any failed write)
//    re-asserts every local user and removes users Redis has on this
//    instance's books that have no local socket, so Redis converges to the
//    node's sockets after failed writes or lost Redis data.
// Graceful shutdown: disconnect every socket (each calls disconnected()),
// then stop(), which then leaves the cluster at once. stop() with sockets
// still registered behaves like a crash: they lapse with the lease.
import { randomBytes } from 'node:crypto';
import { RedisScript } from '../kernel/redis-script.ts';
import type { Redis } from '../kernel/redis.ts';
import { pino } from 'pino';
import { z } from 'zod';
import { FlockError, messageOf } from '../kernel/errors.ts';
import type { Logger } from '../kernel/logger.ts';
import { untilReady } from '../kernel/redis.ts';
import { CONNECT, DEAD, DISCONNECT, HEARTBEAT, RELEASE, STATUS, SWEEP } from './scripts.ts';
import { ACTOR_KEY } from '../kernel/ids.ts';

export interface PresenceSettings {
  /** A node silent this long is presumed dead and its users go offline. */
  readonly leaseMs: number;
  /** How often the node re-asserts its users in Redis (and removes strays). */
  readonly reconcileEveryMs: number;
  /** How long a user's last-seen time and idle bookkeeping keys are kept. */
  readonly retentionMs: number;
  /** Sockets one user may have on one node. */
  readonly maxSocketsPerUser: number;
  /** Largest number of users one status() call may ask about. */
  readonly maxStatusBatch: number;
}

export const defaultPresenceSettings: PresenceSettings = {
  leaseMs: 5_000,
  reconcileEveryMs: 60_000,
  retentionMs: 30 * 24 * 60 * 60_000,
  maxSocketsPerUser: 100,
  maxStatusBatch: 1_000,
};

export interface PresenceOptions extends Partial<PresenceSettings> {
  /** Commands. Presence defines its Lua commands on it. */
  redis: Redis;
  /** Connection for SUBSCRIBE; default: a duplicate of `redis`, closed by stop(). */
  subscriber?: Redis;
  /** Key prefix shared by the cluster, e.g. "flock". */
  prefix: string;
  /** NODE_ID; the instance id adds a random suffix. */
  nodeId: string;
  log?: Logger;
}

export const presenceChangeSchema = z
  .object({
    userId: z.string(),
    online: z.boolean(),
    lastSeen: z.number().int().nullable().describe('Milliseconds since the epoch; null if never seen offline within the retention.'),
  })
  .describe('A user went online or offline.');

export type PresenceChange = z.output<typeof presenceChangeSchema>;

export interface UserPresence {
  online: boolean;
  /** When the user was last connected, if offline; otherwise the end of their previous session, or null. */
  lastSeen: number | null;
}

export interface Presence {
  readonly instanceId: string;
  readonly settings: PresenceSettings;
  /** Takes the lease, subscribes to transitions and starts heartbeat, sweeps and reconciliation. */
  start(): Promise<void>;
  /** Stops the timers and the subscription; leaves the cluster if no socket is registered. */
  stop(): Promise<void>;
  /** A socket of the user is connected to this node. */
  connected(userId: string, socketId: string): Promise<{ becameOnline: boolean }>;
  /** A socket is gone. lastSeen is set when the user is offline everywhere, null otherwise. */
  disconnected(userId: string, socketId: string): Promise<{ becameOffline: boolean; lastSeen: number | null }>;
  /** Presence of each user, in one pipelined round trip. */
  status(userIds: readonly string[]): Promise<Map<string, UserPresence>>;
  /** Transitions from every node, including this one. Returns the unsubscribe function. */
  onChange(listener: (change: PresenceChange) => void): () => void;
}

export function createPresence(options: PresenceOptions): Presence {
  return new ClusterPresence(options);
}

// ---- implementation ----

const BATCH = 500;
const STATUS_CHUNK = 100;
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const INSTANCE_ID = /^[A-Za-z0-9._-]{1,80}$/;
const SOCKET_ID = /^[\x21-\x7e]{1,128}$/;

const connectReply = z.tuple([z.number(), z.string()]);
const disconnectReply = z.tuple([z.number(), z.number(), z.string()]);
const statusReply = z.array(z.tuple([z.number(), z.string()]));
const stringList = z.array(z.string());

const scripts = {
  heartbeat: new RedisScript('presence heartbeat', HEARTBEAT, z.number()),
  connect: new RedisScript('presence connect', CONNECT, connectReply),
  disconnect: new RedisScript('presence disconnect', DISCONNECT, disconnectReply),
  dead: new RedisScript('presence dead', DEAD, stringList),
  sweep: new RedisScript('presence sweep', SWEEP, z.coerce.number()),
  release: new RedisScript('presence release', RELEASE, z.unknown()),
  status: new RedisScript('presence status', STATUS, statusReply),
};

class ClusterPresence implements Presence {
  readonly instanceId: string;
  readonly settings: PresenceSettings;
  private readonly redis: Redis;
  private readonly log: Logger;
  private readonly token = randomBytes(8).toString('hex');
  private readonly keys: {
    lease: string;
    nodeUsers: string;
    registry: string;
    channel: string;
    leasePrefix: string;
    userPrefix: string;
  };
  /** userId -> socket ids on this node: the truth Redis is made to follow. */
  private readonly local = new Map<string, Set<string>>();
  private readonly listeners = new Set<(change: PresenceChange) => void>();
  private subscriber: Redis | undefined;
  private ownsSubscriber = false;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private timers: NodeJS.Timeout[] = [];
  private renewing: Promise<void> | undefined;
  private maintaining: Promise<void> | undefined;
  private dirty = false;
  private nextReconcileAt = 0;

  constructor(private readonly options: PresenceOptions) {
    this.settings = checkSettings(options);
    if (!NODE_ID.test(options.nodeId)) throw new FlockError('CONFIG_INVALID', `presence node id ${JSON.stringify(options.nodeId)} must match ${NODE_ID}`);
    if (!/^[A-Za-z0-9._:-]{1,64}$/.test(options.prefix))
      throw new FlockError('CONFIG_INVALID', `presence key prefix ${JSON.stringify(options.prefix)} is not valid`);
    this.instanceId = `${options.nodeId}.${randomBytes(4).toString('hex')}`;
    this.log = (options.log ?? pino({ level: 'silent' })).child({ subsystem: 'presence', instance: this.instanceId });
    const base = `${options.prefix}:presence`;
    this.keys = {
      lease: `${base}:node:${this.instanceId}`,
      nodeUsers: `${base}:node:${this.instanceId}:users`,
      registry: `${base}:nodes`,
      channel: `${base}:changes`,
      leasePrefix: `${base}:node:`,
      userPrefix: `${base}:user:`,
    };
    this.redis = options.redis;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('presence can be started once');
    this.state = 'running';
    await untilReady(this.redis);
    await this.heartbeat(false);
    this.ownsSubscriber = this.options.subscriber === undefined;
    const sub = this.options.subscriber ?? this.redis.duplicate();
    if (this.ownsSubscriber) sub.on('error', (err: Error) => this.log.warn({ err: err.message }, 'presence subscriber error'));
    sub.on('message', this.onMessage);
    this.subscriber = sub;
    await untilReady(sub);
    await sub.subscribe(this.keys.channel);
    const every = Math.max(50, Math.floor(this.settings.leaseMs / 3));
    this.nextReconcileAt = Date.now() + this.settings.reconcileEveryMs;
    this.timers.push(setInterval(() => void this.renew(), every));
    this.timers.push(setInterval(() => void this.maintain(), every));
    void this.maintain();
  }

  async stop(): Promise<void> {
    if (this.state !== 'running') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await Promise.allSettled([this.renewing, this.maintaining]);
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub) {
      sub.off('message', this.onMessage);
      if (this.ownsSubscriber) await sub.quit().catch(() => sub.disconnect());
      else await sub.unsubscribe(this.keys.channel).catch(() => {});
    }
    if (this.local.size > 0) return; // crash semantics: the lease lapses and a sweep takes over
    try {
      await this.removeStrays();
      const { lease, registry, nodeUsers } = this.keys;
      await scripts.release.run(this.redis, [lease, registry, nodeUsers], [this.token, this.instanceId]);
    } catch (err) {
      this.log.warn({ err: messageOf(err) }, 'presence release failed; the lease will lapse');
    }
  }

  async connected(userId: string, socketId: string): Promise<{ becameOnline: boolean }> {
    if (this.state !== 'running') throw new Error('presence is not running');
    checkUserId(userId);
    checkSocketId(socketId);
    let sockets = this.local.get(userId);
    if (sockets?.has(socketId)) return { becameOnline: false };
    if (sockets && sockets.size >= this.settings.maxSocketsPerUser) {
      throw new FlockError('REQUEST_TOO_MANY_CONNECTIONS', `at most ${this.settings.maxSocketsPerUser} connections per user on one node`, {
        details: { limit: this.settings.maxSocketsPerUser, scope: 'user' },
      });
    }
    if (!sockets) this.local.set(userId, (sockets = new Set()));
    sockets.add(socketId);
    if (sockets.size > 1) return { becameOnline: false };
    try {
      const [flipped] = await this.connectScript(userId);
      return { becameOnline: flipped === 1 };
    } catch (err) {
      this.dirty = true; // reconciliation writes it again
      throw err;
    }
  }

  async disconnected(userId: string, socketId: string): Promise<{ becameOffline: boolean; lastSeen: number | null }> {
    const sockets = this.local.get(userId);
    if (!sockets?.delete(socketId)) return { becameOffline: false, lastSeen: null };
    if (sockets.size > 0) return { becameOffline: false, lastSeen: null };
    this.local.delete(userId);
    if (this.state !== 'running') return { becameOffline: false, lastSeen: null }; // stopped: the lease lapses
    try {
      const [flipped, offline, seen] = await this.disconnectScript(userId);
      return { becameOffline: flipped === 1, lastSeen: offline === 1 && seen !== '' ? Number(seen) : null };
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }

  async status(userIds: readonly string[]): Promise<Map<string, UserPresence>> {
    const unique = [...new Set(userIds)];
    if (unique.length > this.settings.maxStatusBatch) {
      throw new FlockError('REQUEST_TOO_LARGE', `at most ${this.settings.maxStatusBatch} users per presence query`, {
        details: { limit: this.settings.maxStatusBatch },
      });
    }
    for (const userId of unique) checkUserId(userId);
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += STATUS_CHUNK) chunks.push(unique.slice(i, i + STATUS_CHUNK));
    const replies = await Promise.all(
      chunks.map(async (chunk) =>
        scripts.status.run(
          this.redis,
          chunk.map((u) => this.keys.userPrefix + u),
          [this.keys.leasePrefix, this.keys.registry],
        ),
      ),
    );
    const out = new Map<string, UserPresence>();
    chunks.forEach((chunk, c) =>
      chunk.forEach((userId, i) => {
        const [online, seen] = replies[c]![i]!;
        out.set(userId, { online: online === 1, lastSeen: seen === '' ? null : Number(seen) });
      }),
    );
    return out;
  }

  onChange(listener: (change: PresenceChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- Redis writes ----

  private connectScript(userId: string): Promise<z.output<typeof connectReply>> {
    return scripts.connect.run(
      this.redis,
      [this.keys.userPrefix + userId, this.keys.nodeUsers],
      [this.instanceId, userId, this.keys.channel, this.settings.retentionMs],
    );
  }

  private disconnectScript(userId: string): Promise<z.output<typeof disconnectReply>> {
    const { userPrefix, nodeUsers, channel, leasePrefix } = this.keys;
    return scripts.disconnect.run(this.redis, [userPrefix + userId, nodeUsers], [this.instanceId, userId, channel, this.settings.retentionMs, leasePrefix]);
  }

  private async heartbeat(renewOnly: boolean): Promise<boolean> {
    const { lease, registry, nodeUsers } = this.keys;
    const ok = await scripts.heartbeat.run(
      this.redis,
      [lease, registry, nodeUsers],
      [this.token, this.settings.leaseMs, this.instanceId, this.settings.retentionMs, renewOnly ? '1' : '0'],
    );
    return ok === 1;
  }

  // ---- timers ----

  private renew(): Promise<void> {
    this.renewing ??= (async () => {
      try {
        if (this.state !== 'running' || (await this.heartbeat(true))) return;
        // Presumed dead (paused, partitioned, Redis lost the key): come back and re-assert every user.
        this.log.warn({ users: this.local.size }, 'presence lease had lapsed: registering again');
        await this.heartbeat(false);
        this.dirty = true;
        void this.maintain();
      } catch (err) {
        this.log.warn({ err: messageOf(err) }, 'presence lease renewal failed');
      } finally {
        this.renewing = undefined;
      }
    })();
    return this.renewing;
  }

  private maintain(): Promise<void> {
    this.maintaining ??= (async () => {
      try {
        await this.sweep();
        if (this.state === 'running' && (this.dirty || Date.now() >= this.nextReconcileAt)) {
          this.dirty = false;
          this.nextReconcileAt = Date.now() + this.settings.reconcileEveryMs;
          await this.reconcile();
        }
      } catch (err) {
        this.dirty = true;
        this.log.warn({ err: messageOf(err) }, 'presence maintenance failed');
      } finally {
        this.maintaining = undefined;
      }
    })();
    return this.maintaining;
  }

  /** Takes the users of instances whose lease lapsed off the books (any live node may; all may at once). */
  private async sweep(): Promise<void> {
    const { registry, leasePrefix, userPrefix, channel } = this.keys;
    const dead = await scripts.dead.run(this.redis, [registry], [leasePrefix, this.instanceId, this.settings.leaseMs, 20]);
    for (const instance of dead) {
      if (!INSTANCE_ID.test(instance)) continue;
      for (let round = 0; round < 10_000 && this.state === 'running'; round++) {
        const left = await scripts.sweep.run(
          this.redis,
          [registry, leasePrefix + instance, `${leasePrefix}${instance}:users`],
          [instance, userPrefix, leasePrefix, channel, BATCH, this.settings.retentionMs],
        );
        if (left <= 0) break;
      }
      this.log.info({ dead: instance }, 'swept the users of a node whose presence lease lapsed');
    }
  }

  /** Makes Redis agree with the local sockets. Each user is checked against `local` when its write is sent. */
  private async reconcile(): Promise<void> {
    const users = [...this.local.keys()];
    for (let i = 0; i < users.length && this.state === 'running'; i += BATCH) {
      await Promise.all(
        users
          .slice(i, i + BATCH)
          .filter((u) => this.local.has(u))
          .map((u) => this.connectScript(u)),
      );
    }
    await this.removeStrays();
  }

  /** Users Redis has on this instance's books without a local socket. */
  private async removeStrays(): Promise<void> {
    let cursor = '0';
    do {
      const [next, members] = await this.redis.sscan(this.keys.nodeUsers, cursor, 'COUNT', BATCH);
      cursor = next;
      await Promise.all(members.filter((u) => !this.local.has(u) && ACTOR_KEY.test(u)).map((u) => this.disconnectScript(u)));
    } while (cursor !== '0');
  }

  // ---- transitions ----

  private readonly onMessage = (channel: string, message: string): void => {
    if (channel !== this.keys.channel) return;
    let change: PresenceChange;
    try {
      change = presenceChangeSchema.parse(JSON.parse(message));
    } catch {
      this.log.warn({ channel }, 'dropped a malformed presence message');
      return;
    }
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (err) {
        this.log.warn({ err: messageOf(err) }, 'presence listener failed');
      }
    }
  };
}

function checkUserId(userId: string): void {
  if (typeof userId !== 'string' || !ACTOR_KEY.test(userId)) {
    throw new FlockError('REQUEST_INVALID', `user id ${JSON.stringify(userId)} must match ${ACTOR_KEY}`, { details: { field: 'userId' } });
  }
}

function checkSocketId(socketId: string): void {
  if (typeof socketId !== 'string' || !SOCKET_ID.test(socketId))
    throw new FlockError('REQUEST_INVALID', 'socket id is not valid', { details: { field: 'socketId' } });
}

function checkSettings(options: Partial<PresenceSettings>): PresenceSettings {
  const s: PresenceSettings = {
    leaseMs: options.leaseMs ?? defaultPresenceSettings.leaseMs,
    reconcileEveryMs: options.reconcileEveryMs ?? defaultPresenceSettings.reconcileEveryMs,
    retentionMs: options.retentionMs ?? defaultPresenceSettings.retentionMs,
    maxSocketsPerUser: options.maxSocketsPerUser ?? defaultPresenceSettings.maxSocketsPerUser,
    maxStatusBatch: options.maxStatusBatch ?? defaultPresenceSettings.maxStatusBatch,
  };
  const bad: string[] = [];
  const intIn = (name: keyof PresenceSettings, min: number, max: number) => {
    if (!Number.isInteger(s[name]) || s[name] < min || s[name] > max) bad.push(`${name} must be an integer from ${min} to ${max}`);
  };
  intIn('leaseMs', 150, 600_000);
  intIn('reconcileEveryMs', 100, 24 * 60 * 60_000);
  intIn('retentionMs', 60_000, 10 * 365 * 24 * 60 * 60_000);
  intIn('maxSocketsPerUser', 1, 100_000);
  intIn('maxStatusBatch', 1, 100_000);
  if (s.retentionMs < 10 * s.leaseMs) bad.push('retentionMs must be at least 10 times leaseMs');
  if (s.retentionMs < 2 * s.reconcileEveryMs) bad.push('retentionMs must be at least twice reconcileEveryMs (reconciliation refreshes the TTLs)');
  if (bad.length > 0) throw new FlockError('CONFIG_INVALID', `presence settings: ${bad.join('; ')}`);
  return Object.freeze(s);
}
