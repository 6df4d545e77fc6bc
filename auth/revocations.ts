// Revocation of access tokens before they expire, across the cluster. Access
// tokens are verified without a database, so revoking a session (sign-out,
// refresh-token reuse, role removal) would otherwise leave its access tokens
// working for up to their TTL. Two mechanisms, for two moments:
//   - a Redis key per revoked session id, kept exactly as long as an access
//     token of that session may still be valid: checked when a token is
//     presented (handshake, reauthentication);
//   - a pub/sub message, so every node can drop sockets already open on that
//     session at once.
// Pub/sub is at-most-once (a node whose subscriber connection is down misses
// messages); the keys are the source of truth.
//
// Keys and channel (prefix "flock" by default):
//   {prefix}:revoked:{sessionId}   "1", EX = the access token TTL
//   {prefix}:auth:revocations      channel; message: {"sessionIds": [...]}
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Logger } from '../kernel/logger.ts';
import { untilReady } from '../kernel/redis.ts';
import { messageOf } from '../kernel/errors.ts';

export interface RevocationSettings {
  readonly prefix: string;
}

export type RevokedListener = (sessionIds: string[]) => void;

export interface Revocations {
  /** Marks the sessions revoked for ttlSeconds (the access token TTL) and tells every node. */
  revoke(sessionIds: readonly string[], ttlSeconds: number): Promise<void>;
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
export function createRevocations(deps: { redis: Redis; subscriber?: Redis; settings?: Partial<RevocationSettings>; log?: Logger }): Revocations {
  const prefix = z
    .string()
    .min(1)
    .parse(deps.settings?.prefix ?? 'flock');
  const channel = `${prefix}:auth:revocations`;
  const key = (sessionId: string) => `${prefix}:revoked:${sessionId}`;
  const listeners = new Set<RevokedListener>();
  let subscribed: Promise<void> | undefined;

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
    async revoke(sessionIds, ttlSeconds) {
      const ids = [...new Set(sessionIds)];
      if (ids.length === 0) return;
      const ttl = Math.ceil(z.number().positive().parse(ttlSeconds));
      const multi = deps.redis.multi();
      for (const id of ids) multi.set(key(id), '1', 'EX', ttl);
      multi.publish(channel, JSON.stringify({ sessionIds: ids }));
      const results = await multi.exec();
      const failed = results?.find(([err]) => err !== null)?.[0];
      if (failed) throw failed;
    },

    async isRevoked(sessionId) {
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

const revocationMessage = z.object({ sessionIds: z.array(z.string().min(1).max(256)).min(1) });

function safeJson(raw: string): unknown {
  try {
    const value: unknown = JSON.parse(raw);
    return value;
  } catch {
    return undefined;
  }
}
