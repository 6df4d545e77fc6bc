// A two-node cluster for the social tests and users signed up on it over real
// sockets (each with its own client address, so per-IP limits stay apart).
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import type { FlockClient, StreamEvent } from '../../client/flock-client.ts';
import { SignJWT } from 'jose';
import { MongoClient, type Db } from 'mongodb';
import { requireEnv, uniqueDbName } from './env.ts';
import { startNodeProcess, type NodeProcess } from './node-process.ts';
import { assertEventsValid, checkedClient } from './clients.ts';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { eventually } from './node-process.ts';

export interface SocialUser {
  c: FlockClient;
  userId: string;
  username: string;
  node: number;
}

export class SocialCluster {
  nodes: NodeProcess[] = [];
  /** The cluster's Redis and MongoDB: the suite's, or private ones a test starts and stops (test/chaos/). */
  readonly redisUrl: string;
  readonly mongoUrl: string;
  private readonly clients: FlockClient[] = [];
  private readonly ipBase = `10.${1 + Math.floor(Math.random() * 250)}`;
  private ipSeq = 1;

  dbName = '';
  /** The cluster's own Redis key prefix (REDIS_KEY_PREFIX): its social events stream is its own. */
  redisPrefix = '';

  constructor(services: { redisUrl?: string; mongoUrl?: string } = {}) {
    this.redisUrl = services.redisUrl ?? requireEnv('REDIS_URL');
    this.mongoUrl = services.mongoUrl ?? requireEnv('MONGO_URL');
  }

  /**
   * Asks and requests wait up to a minute: the suite shares one embedded
   * FerretDB, which runs writes one at a time and scans a collection for any
   * filter but `{ _id }`, so a file that queues hundreds of writes (200
   * concurrent likes) slows every other file's writes. Tests here assert
   * outcomes; bench/social.ts measures latency.
   */
  async start(prefix: string, env: Record<string, string> = {}): Promise<void> {
    this.dbName = uniqueDbName(prefix);
    this.redisPrefix = `t${randomBytes(4).toString('hex')}`;
    env = { ACTOR_ASK_TIMEOUT_MS: '60000', REDIS_KEY_PREFIX: this.redisPrefix, REDIS_URL: this.redisUrl, MONGO_URL: this.mongoUrl, ...env };
    this.nodes = await Promise.all(
      [0, 1].map(() => startNodeProcess({ dbName: this.dbName, env: { TRUST_PROXY: 'true', RATE_LIMIT_IP_PER_SECOND: '1000', ...env } })),
    );
  }

  async stop(): Promise<void> {
    this.clients.forEach((c) => c.close());
    // Set FLOCK_TEST_LOGS=file to keep what the nodes logged at warn and above.
    if (process.env.FLOCK_TEST_LOGS)
      for (const n of this.nodes)
        for (const e of n.logs) if (['warn', 'error', 'fatal'].includes(String(e.level))) appendFileSync(process.env.FLOCK_TEST_LOGS, `${JSON.stringify(e)}\n`);
    await Promise.all(this.nodes.map((n) => n.stop()));
    assertEventsValid();
  }

  /**
   * Resolves once a consumer group has handled every domain event appended so
   * far (read past the newest, none pending): the barrier after which a test
   * may check that an event led to nothing.
   */
  async eventsSettled(group: 'notifications' | 'feeds', timeoutMs = 60_000): Promise<void> {
    const redis = new Redis(this.redisUrl);
    const stream = `${this.redisPrefix}:social:events`;
    try {
      const [newest] = await redis.xrevrange(stream, '+', '-', 'COUNT', 1);
      if (!newest) return;
      const settled = await eventually(async () => {
        const groups = z.array(z.array(z.union([z.string(), z.number(), z.null()]))).parse(await redis.xinfo('GROUPS', stream));
        const info = groups.map((g) => new Map(g.flatMap((v, i) => (i % 2 === 0 ? [[String(v), g[i + 1]]] : [])))).find((g) => g.get('name') === group);
        const delivered = String(info?.get('last-delivered-id') ?? '0-0');
        return info?.get('pending') === 0 && compareIds(delivered, newest[0]) >= 0;
      }, timeoutMs);
      if (!settled) throw new Error(`the ${group} consumers did not handle every event within ${timeoutMs} ms`);
    } finally {
      redis.disconnect();
    }
  }

  /** Runs `fn` against the cluster's database with a client of its own. */
  async withDb<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    const client = await MongoClient.connect(this.mongoUrl);
    try {
      return await fn(client.db(this.dbName));
    } finally {
      await client.close();
    }
  }

  async connect(node: number, token?: string): Promise<FlockClient> {
    const seq = this.ipSeq++;
    const c = checkedClient(this.nodes[node]!.url, {
      ...(token && { token }),
      timeoutMs: 60_000,
      socket: { extraHeaders: { 'x-forwarded-for': `${this.ipBase}.${Math.floor(seq / 250)}.${seq % 250}` }, reconnection: false },
    });
    this.clients.push(c);
    await c.connected();
    return c;
  }

  /** A new user, signed in on `node`. */
  async user(node = 0, name = 'u'): Promise<SocialUser> {
    const username = `${name}${randomBytes(5).toString('hex')}`.slice(0, 30);
    const c = await this.connect(node);
    const res = await c.request('auth:register', { username, email: `${username}@example.test`, password: 'correct horse 42', displayName: name });
    return { c, userId: res.userId, username, node };
  }

  /**
   * `n` users alternating between the two nodes, made without password
   * hashing: account documents written directly and access tokens signed with
   * the suite's JWT_SECRET (for tests that need many users). Their profiles
   * are created through users:me, as for any account without one, unless
   * `profiles` is false (followers who only read need none).
   */
  async quickUsers(n: number, name = 'q', options: { profiles?: boolean } = {}): Promise<SocialUser[]> {
    const secret = new Uint8Array(Buffer.from(requireEnv('JWT_SECRET'), 'base64'));
    const client = await MongoClient.connect(this.mongoUrl);
    const made = Array.from({ length: n }, (_, i) => {
      const username = `${name}${randomBytes(6).toString('hex')}`.slice(0, 30);
      return { userId: `u_${randomBytes(12).toString('base64url')}`, username, node: i % 2 };
    });
    try {
      await client
        .db(this.dbName)
        .collection('accounts')
        .insertMany(
          made.map((m) => ({
            _id: m.userId,
            username: m.username,
            displayUsername: m.username,
            emailVerified: false,
            roles: ['user'],
            createdAt: new Date(),
          })) as never[],
        );
    } finally {
      await client.close();
    }
    const users: SocialUser[] = [];
    for (let i = 0; i < made.length; i += 25) {
      users.push(
        ...(await Promise.all(
          made.slice(i, i + 25).map(async (m) => {
            const now = Math.floor(Date.now() / 1000);
            const token = await new SignJWT({ sid: `s_${randomBytes(8).toString('hex')}`, roles: ['user'] })
              .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
              .setSubject(m.userId)
              .setIssuer('flock')
              .setAudience('flock')
              .setIssuedAt(now)
              .setExpirationTime(now + 3600)
              .sign(secret);
            const c = await this.connect(m.node, token);
            if (options.profiles !== false) await c.request('users:me', {});
            return { c, ...m };
          }),
        )),
      );
    }
    return users;
  }

  /** `n` users alternating between the two nodes. */
  users(n: number, name = 'u'): Promise<SocialUser[]> {
    return Promise.all(Array.from({ length: n }, (_, i) => this.user(i % 2, name)));
  }
}

/**
 * Everything the user's personal stream holds, oldest first (stream:resume
 * from the start, every page). What was delivered is what was appended, so a
 * test that must show something was NOT delivered reads the stream once the
 * action that would have delivered it has been acknowledged, instead of
 * waiting to see whether it arrives live.
 */
export async function streamOf(u: SocialUser): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  let lastId: string | undefined;
  for (;;) {
    const page = await u.c.request('stream:resume', { limit: 500, ...(lastId && { lastId }) });
    if (page.kind === 'resync') throw new Error(`the stream of ${u.userId} was trimmed (${page.reason})`);
    out.push(...page.events);
    lastId = page.events.at(-1)?.id ?? lastId;
    if (!page.more) return out;
  }
}

/** The conversation messages (new and updated) of one conversation in the user's stream, by seq, in stream order. */
export async function streamedMessages(u: SocialUser, conversationId: string): Promise<number[]> {
  return (await streamOf(u)).flatMap((e) => (e.type === 'conversations:message' && e.data.conversationId === conversationId ? [e.data.message.seq] : []));
}

function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt);
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}
