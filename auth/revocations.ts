// Revocation of access tokens before they expire, across the cluster. Access
// tokens are verified without a database, so revoking a session (sign-out,
// refresh-token reuse, role removal) would otherwise leave its access tokens
// working for up to their TTL. Three mechanisms:
//   - a MongoDB document per revoked session (models/revoked-session.ts),
//     written first and kept until the session's last access token expires:
//     the durable record;
//   - a Redis key per revoked session, kept exactly as long: what a token
//     presented at a handshake, a reauthentication or an HTTP request is
//     checked against, without a database read;
//   - a pub/sub message, so every node can drop sockets already open on that
//     session at once.
// Pub/sub is at-most-once (a node whose subscriber connection is down misses
// messages); the keys are checked on every token. Redis may lose the keys
// (FLUSHALL, a restart without persistence, a failover to an empty replica):
// a key "loaded" says the marks are complete, and a check that finds neither
// a mark nor "loaded" first loads every live revocation from MongoDB (one
// query, bounded by the revocations of one access-token lifetime) and sets
// "loaded" in the same transaction as the marks. "loaded" lapses every
// LOADED_TTL_SECONDS, so marks lost some other way (a restore from an older
// snapshot, eviction: run Redis with maxmemory-policy noeviction) are back
// within that time.
//
// Keys and channel ({prefix} is REDIS_KEY_PREFIX):
//   {prefix}:revoked:{sessionId}   "1", PX = until the session's last access token expires
//   {prefix}:revoked:loaded        "1" while the marks are known complete, EX LOADED_TTL_SECONDS
//   {prefix}:auth:revocations      channel; message: {"sessionIds": [...]}
import type { Redis } from 'ioredis';
import mongoose, { type Connection } from 'mongoose';
import { z } from 'zod';
import type { Logger } from '../kernel/logger.ts';
import { isFerretDB } from '../kernel/mongo.ts';
import { untilReady } from '../kernel/redis.ts';
import { messageOf } from '../kernel/errors.ts';
import { revokedSessionExpiryIndex, revokedSessionModel } from '../models/revoked-session.ts';

export interface RevocationSettings {
  /** REDIS_KEY_PREFIX. */
  readonly prefix: string;
}

/** How long the marks are trusted complete before they are loaded from MongoDB again. */
export const LOADED_TTL_SECONDS = 60;

export type RevokedListener = (sessionIds: string[]) => void;

export interface Revocations {
  /** Creates the collection's index; revoke() and isRevoked() work before it, only slower. */
  init(): Promise<void>;
  /** Records the sessions revoked for ttlSeconds (the access token TTL), in MongoDB and Redis, and tells every node. */
  revoke(sessionIds: readonly string[], ttlSeconds: number): Promise<void>;
  /** From Redis; from MongoDB when Redis lost the marks. */
  isRevoked(sessionId: string): Promise<boolean>;
  /**
   * Calls onRevoked with every batch of revoked session ids published by any
   * node (this one included), from the moment the returned promise resolves.
   * Resolves to a function that removes the listener.
   */
  subscribe(onRevoked: RevokedListener): Promise<() => Promise<void>>;
}

/**
 * `redis` runs commands; `subscriber` is a connection of its own (a connection
 * in subscriber mode can run nothing else), needed only for subscribe().
 */
export function createRevocations(deps: {
  redis: Redis;
  subscriber?: Redis;
  connection: Connection;
  settings: RevocationSettings;
  log?: Logger;
  /** Epoch ms; tests move it. */
  now?: () => number;
}): Revocations {
  const prefix = z.string().min(1).parse(deps.settings.prefix);
  const now = deps.now ?? Date.now;
  const model = revokedSessionModel(deps.connection);
  const channel = `${prefix}:auth:revocations`;
  // Session ids are "s_" and base64url, so no session's mark can be named "loaded".
  const key = (sessionId: string) => `${prefix}:revoked:${sessionId}`;
  const loadedKey = `${prefix}:revoked:loaded`;
  const listeners = new Set<RevokedListener>();
  let subscribed: Promise<void> | undefined;
  let loading: Promise<void> | undefined;

  /** Writes the mark of every live revocation, and "loaded" with them (one transaction: a flush cannot fall between). */
  const load = async () => {
    const at = now();
    const live = await model.find({ expiresAt: mongoose.trusted({ $gt: new Date(at) }) }, { expiresAt: 1 }).lean<{ _id: string; expiresAt: Date }[]>();
    const multi = deps.redis.multi();
    for (const doc of live) multi.set(key(doc._id), '1', 'PX', Math.max(1, doc.expiresAt.getTime() - at));
    multi.set(loadedKey, '1', 'EX', LOADED_TTL_SECONDS);
    await execAll(multi);
    deps.log?.info({ revocations: live.length }, 'revocation marks loaded from MongoDB');
  };

  const onMessage = (from: string, raw: string) => {
    if (from !== channel) return;
    // Another node wrote it, but it still crosses a process boundary: check it.
    const message = revocationMessage.safeParse(safeJson(raw));
    if (!message.success) {
      deps.log?.warn({ channel }, 'ignored a malformed revocation message');
      return;
    }
    for (const listener of listeners) {
      try {
        listener(message.data.sessionIds);
      } catch (err) {
        deps.log?.error({ err: messageOf(err) }, 'revocation listener failed');
      }
    }
  };

  return {
    async init() {
      const index = revokedSessionExpiryIndex(!(await isFerretDB(deps.connection)));
      await model.collection.createIndex(index.key, index.options);
    },

    async revoke(sessionIds, ttlSeconds) {
      const ids = [...new Set(sessionIds)];
      if (ids.length === 0) return;
      const ttl = Math.ceil(z.number().positive().parse(ttlSeconds));
      const at = now();
      const expiresAt = new Date(at + ttl * 1000);
      // MongoDB first: a mark Redis then loses is loaded back from here; a
      // revocation whose Redis write fails is still refused after the next load.
      await model.bulkWrite(
        ids.map((id) => ({
          updateOne: {
            filter: { _id: id },
            update: { $max: { expiresAt }, $setOnInsert: { revokedAt: new Date(at) } },
            upsert: true,
          },
        })),
        { ordered: false },
      );
      const multi = deps.redis.multi();
      for (const id of ids) multi.set(key(id), '1', 'EX', ttl);
      multi.publish(channel, JSON.stringify({ sessionIds: ids }));
      await execAll(multi);
    },

    async isRevoked(sessionId) {
      const [mark, loaded] = await deps.redis.mget(key(sessionId), loadedKey);
      if (mark !== null) return true;
      if (loaded !== null) return false;
      // Redis lost the marks, or they were never loaded on this Redis: once per node at a time.
      loading ??= load().finally(() => (loading = undefined));
      await loading;
      return (await deps.redis.exists(key(sessionId))) === 1;
    },

    async subscribe(onRevoked) {
      const subscriber = deps.subscriber;
      if (!subscriber) throw new Error('createRevocations: subscribe() needs a subscriber connection');
      listeners.add(onRevoked);
      // One SUBSCRIBE per instance, however many listeners; sent only after the
      // ready check (see untilReady), and renewed by ioredis on reconnect.
      subscribed ??= (async () => {
        await untilReady(subscriber);
        // Listening before subscribing: a message may follow the reply at once.
        subscriber.on('message', onMessage);
        try {
          await subscriber.subscribe(channel);
        } catch (err) {
          subscriber.off('message', onMessage);
          throw err;
        }
      })();
      try {
        await subscribed;
      } catch (err) {
        subscribed = undefined;
        listeners.delete(onRevoked);
        throw err;
      }
      return async () => {
        listeners.delete(onRevoked);
      };
    },
  };
}

/** Runs a MULTI, throwing the first command error. */
async function execAll(multi: ReturnType<Redis['multi']>): Promise<void> {
  const results = await multi.exec();
  const failed = results?.find(([err]) => err !== null)?.[0];
  if (failed) throw failed;
}

const revocationMessage = z.object({ sessionIds: z.array(z.string().min(1).max(256)).min(1) });

function safeJson(raw: string): unknown {
  try {
    const value: unknown = JSON.parse(raw);
    return value;
  } catch {
    return undefined;
  }
}
