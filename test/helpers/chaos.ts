// What the chaos tests (test/chaos/) share: a workload of signed-in users
// sending messages, liking and posting on a two-node cluster while a fault is
// injected; the ledger of what was acknowledged; the check that every
// acknowledged operation is stored (lost == 0) and nothing twice; and recovery
// probes that pass only when the whole path works again end to end (both
// nodes ready, a message crossing nodes live through the Socket.IO adapter, a
// like turned into a notification by the consumer group, a post fanned out
// live, presence, rate limits).
import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { FlockRequestError, type FlockClient } from '../../client/flock-client.ts';
import type { EdgeDoc } from '../../models/edge.ts';
import type { PostDoc } from '../../models/post.ts';
import { Redis } from 'ioredis';
import { fullHistory } from './conversations.ts';
import { SocialCluster, type SocialUser } from './social.ts';

/** Codes a client retries: the service, the actor or the rate limit is away or busy for a moment. Anything else during a fault is a bug. */
export const RETRYABLE = new Set(['SERVICE_UNAVAILABLE', 'ACTOR_UNAVAILABLE', 'ACTOR_TIMEOUT', 'ACTOR_BUSY', 'ACTOR_FENCED', 'REQUEST_RATE_LIMITED']);
/** What a request that got no ack in time is recorded as. */
export const NO_ACK = 'NO_ACK';
/** How long a workload request waits for its ack: every request must be answered, error or not, well within it. */
const REQUEST_TIMEOUT_MS = 30_000;

export interface Group {
  conversationId: string;
  members: SocialUser[];
}

export interface Outcome {
  op: 'send' | 'like' | 'post';
  /** The node the user's socket is on. */
  node: number;
  /** When it was sent, in ms since the workload started. */
  at: number;
  /** When its ack came (or its wait ended). */
  end: number;
  /** ms to the ack. */
  ms: number;
  code: string;
}

/** A cluster of two nodes on its own Redis and MongoDB, with users in group conversations, following each other, and posts to like. */
export class ChaosCluster extends SocialCluster {
  people: SocialUser[] = [];
  groups: Group[] = [];
  /** Posts of the setup, liked by the workload. */
  seedPosts: { postId: string; authorId: string; group: number }[] = [];

  /** `n` users in groups of `groupSize` (both nodes in every group); each follows the next two of its group and is watched by them. */
  async populate(n: number, groupSize = 6): Promise<void> {
    this.people = await this.quickUsers(n, 'chaos');
    // Members join their group at once instead of being invited (the default lets only followed users add you).
    await Promise.all(this.people.map((u) => settingUp(() => u.c.request('conversations:updateSettings', { groupAdds: 'everyone' }))));
    for (let g = 0; g * groupSize < n; g++) {
      const members = this.people.slice(g * groupSize, (g + 1) * groupSize);
      const [owner, ...rest] = members as [SocialUser, ...SocialUser[]];
      const { conversationId } = await settingUp(() =>
        owner.c.request('conversations:createGroup', { title: `chaos ${g}`, memberIds: rest.map((u) => u.userId) }),
      );
      this.groups.push({ conversationId, members });
      await Promise.all(
        members.map(async (u, i) => {
          for (const k of [1, 2]) {
            const followee = members[(i + k) % members.length]!;
            if (followee !== u) await settingUp(() => u.c.request('graph:follow', { userId: followee.userId }));
          }
        }),
      );
      const idempotencyKey = `chaos-seed-${g}-${randomBytes(4).toString('hex')}`;
      const post = await settingUp(() => owner.c.request('posts:create', { text: `seed of group ${g}`, idempotencyKey }));
      this.seedPosts.push({ postId: post.postId, authorId: owner.userId, group: g });
    }
  }

  /** Logs every user's live events (LiveLog) and has every user watch its home timeline. */
  async watchEveryone(): Promise<Map<string, LiveLog>> {
    const live = new Map<string, LiveLog>();
    for (const u of this.people) {
      live.set(u.userId, new LiveLog(u.c));
      await settingUp(() => u.c.request('feeds:watch', {}));
    }
    return live;
  }

  /** ms from `since` (a performance.now() time) until every node answers /readyz with 200; throws after `boundMs`. */
  async readyAgain(since: number, boundMs: number): Promise<number> {
    for (;;) {
      const statuses = await Promise.all(
        this.nodes.map((n) =>
          fetch(`${n.url}/readyz`, { signal: AbortSignal.timeout(5_000) }).then(
            (r) => r.status,
            () => 0,
          ),
        ),
      );
      if (statuses.every((s) => s === 200)) return Math.round(performance.now() - since);
      if (performance.now() - since > boundMs) throw new Error(`/readyz not 200 within ${boundMs} ms: ${statuses.join(', ')}`);
      await pause(100);
    }
  }

  /** Writes what a node that exited wrote to stderr (an uncaught exception is there, not in its logs). */
  reportCrashes(): void {
    for (const [i, n] of this.nodes.entries()) {
      if (n.child.exitCode !== null) process.stderr.write(`node ${i} exited with ${n.child.exitCode}:\n${n.stderr()}\n`);
    }
  }

  /** The node whose actor runtime owns an actor now (the directory entry "{runtimeId} {epoch}"; each node logs its runtime id). */
  async hostOf(address: string): Promise<{ node: number; epoch: number } | undefined> {
    const redis = new Redis(this.redisUrl);
    try {
      const entry = await redis.get(`${this.redisPrefix}:actors:dir:${address}`);
      if (!entry) return undefined;
      const [runtimeId, epoch] = entry.split(' ');
      const node = this.nodes.findIndex((n) => n.logs.some((l) => l.msg === 'actor runtime started' && l.runtime === runtimeId));
      return node < 0 ? undefined : { node, epoch: Number(epoch) };
    } finally {
      redis.disconnect();
    }
  }

  groupOf(u: SocialUser): number {
    return this.groups.findIndex((g) => g.members.includes(u));
  }

  /** The accounts `u` follows (set up by populate). */
  followees(u: SocialUser): SocialUser[] {
    const members = this.groups[this.groupOf(u)]!.members;
    const i = members.indexOf(u);
    return [1, 2].map((k) => members[(i + k) % members.length]!).filter((f) => f !== u);
  }
}

/** Every event a user received live, and the last personal-stream id (the cursor the app would resume from). */
export class LiveLog {
  lastStreamId: string | undefined;
  readonly streamTypes: string[] = [];
  readonly messages: { conversationId: string; seq: number; clientMessageId: string | null }[] = [];
  readonly notifications: { subjectId: string; kind: string }[] = [];
  readonly feedPosts: string[] = [];

  constructor(c: FlockClient) {
    c.on('stream:event', (e) => {
      this.lastStreamId = e.id;
      this.streamTypes.push(e.type);
      if (e.type === 'conversations:message') {
        this.messages.push({ conversationId: e.data.conversationId, seq: e.data.message.seq, clientMessageId: e.data.message.clientMessageId });
      }
      if (e.type === 'notifications:changed') this.notifications.push({ subjectId: e.data.notification.subjectId, kind: e.data.notification.kind });
    });
    c.on('feeds:post', (p) => this.feedPosts.push(p.post.postId));
  }
}

/** Messages, likes and posts from every user at about `opsPerSecond` in all, each recorded with its outcome. */
export class Workload {
  readonly sends: { conversationId: string; clientMessageId: string; seq: number; senderId: string }[] = [];
  readonly likes: { postId: string; userId: string }[] = [];
  readonly posts: { postId: string; authorId: string }[] = [];
  readonly outcomes: Outcome[] = [];
  readonly started = performance.now();
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(
    private readonly cluster: ChaosCluster,
    opsPerSecond: number,
  ) {
    const meanGapMs = (1000 * cluster.people.length) / opsPerSecond;
    this.loops = cluster.people.map(async (u) => {
      await pause(Math.random() * meanGapMs);
      while (this.running) {
        await this.one(u);
        await pause(meanGapMs * (0.5 + Math.random()));
      }
    });
  }

  /** ms since the workload started. */
  now(): number {
    return performance.now() - this.started;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Outcomes by code, e.g. { ok: 812, SERVICE_UNAVAILABLE: 40 }. */
  codes(from = 0, to = Number.POSITIVE_INFINITY): Record<string, number> {
    const out: Record<string, number> = {};
    for (const o of this.outcomes) if (o.at >= from && o.at < to) out[o.code] = (out[o.code] ?? 0) + 1;
    return out;
  }

  /** Whether a request sent after `from` failed already (the clients have seen the fault). */
  failedSince(from: number): boolean {
    return this.outcomes.some((o) => o.at >= from && o.code !== 'ok');
  }

  /** Failed outcomes whose code a client would not retry (anything but RETRYABLE), and requests never answered. */
  unexpected(): Outcome[] {
    return this.outcomes.filter((o) => o.code !== 'ok' && !RETRYABLE.has(o.code));
  }

  /** The slowest ack (ms), failures included. */
  slowestAck(): number {
    return Math.max(0, ...this.outcomes.map((o) => o.ms));
  }

  private async one(u: SocialUser): Promise<void> {
    const roll = Math.random();
    const g = this.cluster.groupOf(u);
    const at = this.now();
    let op: Outcome['op'];
    let request: Promise<void>;
    if (roll < 0.5) {
      op = 'send';
      const { conversationId } = this.cluster.groups[g]!;
      const clientMessageId = `c-${randomBytes(9).toString('base64url')}`;
      request = u.c
        .request('conversations:send', { conversationId, clientMessageId, text: `m ${clientMessageId}` }, { timeoutMs: REQUEST_TIMEOUT_MS })
        .then((r) => {
          this.sends.push({ conversationId, clientMessageId, seq: r.message.seq, senderId: u.userId });
        });
    } else if (roll < 0.85) {
      op = 'like';
      const targets = [...this.cluster.seedPosts.filter((p) => p.group === g).map((p) => p.postId), ...this.posts.slice(-20).map((p) => p.postId)];
      const postId = targets[Math.floor(Math.random() * targets.length)]!;
      request = u.c.request('posts:like', { postId }, { timeoutMs: REQUEST_TIMEOUT_MS }).then(() => {
        this.likes.push({ postId, userId: u.userId });
      });
    } else {
      op = 'post';
      request = u.c
        .request(
          'posts:create',
          { text: `p ${randomBytes(6).toString('hex')}`, idempotencyKey: `k-${randomBytes(9).toString('base64url')}` },
          { timeoutMs: REQUEST_TIMEOUT_MS },
        )
        .then((r) => {
          this.posts.push({ postId: r.postId, authorId: u.userId });
        });
    }
    const code = await request.then(
      () => 'ok',
      (err: unknown) => (err instanceof FlockRequestError ? err.code : NO_ACK),
    );
    const end = this.now();
    this.outcomes.push({ op, node: u.node, at, end, ms: end - at, code });
  }
}

export interface LossReport {
  acknowledged: number;
  lost: number;
  /** What went wrong, for the failure message (at most a few entries). */
  problems: string[];
}

/**
 * Reads back everything the workload was told was done: every acknowledged
 * message in its conversation's history under its seq (histories dense, no
 * clientMessageId twice), every acknowledged like as an active like edge
 * (each post's count equal to its edges), every acknowledged post stored.
 */
export async function checkNothingLost(cluster: ChaosCluster, work: Workload): Promise<LossReport> {
  const problems: string[] = [];
  let lost = 0;
  for (const group of cluster.groups) {
    const history = await fullHistory(group.members[0]!, group.conversationId);
    const bySeq = new Map(history.map((m) => [m.seq, m]));
    if (history.some((m, i) => m.seq !== i + 1)) problems.push(`${group.conversationId}: history is not dense`);
    const ids = history.flatMap((m) => (m.clientMessageId ? [m.clientMessageId] : []));
    if (new Set(ids).size !== ids.length) problems.push(`${group.conversationId}: a clientMessageId is stored twice`);
    for (const s of work.sends.filter((x) => x.conversationId === group.conversationId)) {
      const m = bySeq.get(s.seq);
      if (m?.clientMessageId !== s.clientMessageId || m.senderId !== s.senderId) {
        lost += 1;
        problems.push(`message ${s.clientMessageId} acknowledged as seq ${s.seq} is not there`);
      }
    }
  }
  await cluster.withDb(async (db) => {
    const likeIds = [...new Set(work.likes.map((l) => `like|${l.postId}|${l.userId}`))];
    const edges = await db
      .collection<EdgeDoc>('edges')
      .find({ _id: { $in: likeIds }, status: 'active' })
      .toArray();
    const found = new Set(edges.map((e) => e._id));
    for (const id of likeIds) {
      if (!found.has(id)) {
        lost += 1;
        problems.push(`like ${id} acknowledged, not stored`);
      }
    }
    const postIds = [...new Set([...work.posts.map((p) => p.postId), ...work.likes.map((l) => l.postId)])];
    const posts = await db
      .collection<PostDoc>('posts')
      .find({ _id: { $in: postIds } })
      .toArray();
    const stored = new Set(posts.filter((p) => !p.deleted).map((p) => p._id));
    for (const p of work.posts) {
      if (!stored.has(p.postId)) {
        lost += 1;
        problems.push(`post ${p.postId} acknowledged, not stored`);
      }
    }
    for (const p of posts) {
      const edgesOfPost = await db.collection<EdgeDoc>('edges').countDocuments({ kind: 'like', owner: p._id, status: 'active' });
      if (edgesOfPost !== p.likes) problems.push(`post ${p._id} counts ${p.likes} likes for ${edgesOfPost} like edges`);
    }
  });
  return { acknowledged: work.sends.length + new Set(work.likes.map((l) => `${l.postId}|${l.userId}`)).size + work.posts.length, lost, problems };
}

/**
 * Every message a user got live is the one history holds under its seq: a
 * stale owner never delivered a message that did not stay (repeats of the
 * same message are allowed: delivery is at least once).
 */
export async function checkLiveMessages(cluster: ChaosCluster, live: Map<string, LiveLog>): Promise<string[]> {
  const problems: string[] = [];
  for (const group of cluster.groups) {
    const history = await fullHistory(group.members[0]!, group.conversationId);
    for (const m of group.members) {
      for (const got of live.get(m.userId)!.messages.filter((x) => x.conversationId === group.conversationId)) {
        if (history[got.seq - 1]?.clientMessageId !== got.clientMessageId)
          problems.push(`${m.userId} got seq ${got.seq} as ${got.clientMessageId}, stored otherwise`);
      }
    }
  }
  return problems;
}

/** One round of recovery probes; resolves with what failed (empty when everything works end to end). */
export async function probeOnce(cluster: ChaosCluster, live: Map<string, LiveLog>, waitMs: number): Promise<string[]> {
  const failed: string[] = [];
  const attempt = async (name: string, fn: () => Promise<boolean>) => {
    const ok = await fn().catch((err: unknown) => (err instanceof FlockRequestError ? err.code : err instanceof Error ? err.message : String(err)));
    if (ok !== true) failed.push(ok === false ? name : `${name} (${ok})`);
  };
  const group = cluster.groups[0]!;
  const [a, b] = [group.members.find((m) => m.node === 0)!, group.members.find((m) => m.node === 1)!];
  await Promise.all([
    attempt('readyz', async () => {
      const statuses = await Promise.all(cluster.nodes.map(async (n) => (await fetch(`${n.url}/readyz`, { signal: AbortSignal.timeout(waitMs) })).status));
      return statuses.every((s) => s === 200);
    }),
    attempt('message across nodes, live', async () => {
      const r = await a.c.request(
        'conversations:send',
        { conversationId: group.conversationId, clientMessageId: `c-${randomBytes(9).toString('base64url')}`, text: 'probe' },
        { timeoutMs: waitMs },
      );
      return until(() => live.get(b.userId)!.messages.some((m) => m.conversationId === group.conversationId && m.seq === r.message.seq), waitMs);
    }),
    attempt('like notified', async () => {
      const post = await b.c.request('posts:create', { text: `probe ${randomBytes(4).toString('hex')}` }, { timeoutMs: waitMs });
      await a.c.request('posts:like', { postId: post.postId }, { timeoutMs: waitMs });
      return until(() => live.get(b.userId)!.notifications.some((n) => n.subjectId === post.postId && n.kind === 'like'), waitMs);
    }),
    attempt('post fanned out live', async () => {
      // b's followers that watch their home timeline (every user of the workload does) get it live, on either node.
      const post = await b.c.request('posts:create', { text: `live ${randomBytes(4).toString('hex')}` }, { timeoutMs: waitMs });
      const followers = group.members.filter((m) => cluster.followees(m).includes(b));
      return until(() => followers.every((f) => live.get(f.userId)!.feedPosts.includes(post.postId)), waitMs);
    }),
    attempt('presence across nodes', async () => {
      const { statuses } = await a.c.request('presence:watch', { userIds: [b.userId] }, { timeoutMs: waitMs });
      return statuses[0]?.online === true;
    }),
  ]);
  return failed;
}

/**
 * Probes until one round passes; resolves with the ms it took (from `since`,
 * a performance.now() time) and what the rounds before found broken, or
 * throws after `timeoutMs`. On a machine loaded past twice its cores (the
 * suite beside a benchmark and more) the workload's backlog alone can take
 * longer to drain than the bound: there the bound is tripled, and the rounds
 * say so. Nothing else is relaxed: what was acknowledged must still be there.
 */
export async function recovered(
  cluster: ChaosCluster,
  live: Map<string, LiveLog>,
  since: number,
  timeoutMs: number,
): Promise<{ ms: number; rounds: string[] }> {
  const rounds: string[] = [];
  let bound = timeoutMs;
  for (;;) {
    const failed = await probeOnce(cluster, live, 5_000);
    const at = Math.round(performance.now() - since);
    if (failed.length === 0) return { ms: at, rounds };
    rounds.push(`${at} ms: ${failed.join(', ')}`);
    if (at < bound) continue;
    const load = os.loadavg()[0] ?? 0;
    const cores = os.availableParallelism();
    if (bound === timeoutMs && load > 2 * cores) {
      bound = 3 * timeoutMs;
      rounds.push(`machine overloaded (load ${load.toFixed(1)} on ${cores} cores): bound raised to ${bound} ms`);
      continue;
    }
    throw new Error(`not recovered within ${bound} ms: ${rounds.join('; ')}`);
  }
}

/**
 * The first page of the home timeline of each user is what MongoDB says it
 * must be: the newest posts of the user and the accounts it follows. Run it
 * once the feeds consumers have handled every event (cluster.eventsSettled).
 * Resolves with one line per user whose page differs.
 */
export async function checkHomeFeeds(cluster: ChaosCluster, users: readonly SocialUser[]): Promise<string[]> {
  const wrong: string[] = [];
  for (const u of users) {
    const authors = [u.userId, ...cluster.followees(u).map((f) => f.userId)];
    const expected = await cluster.withDb(async (db) =>
      (
        await db
          .collection<PostDoc>('posts')
          .find({ authorId: { $in: authors }, deleted: false, kind: { $ne: 'reply' } })
          .sort({ createdAt: -1, _id: -1 })
          .limit(20)
          .toArray()
      ).map((p) => p._id),
    );
    const page = await u.c.request('feeds:home', { limit: 20 });
    const got = page.items.map((p) => p.postId);
    const missing = expected.filter((id) => !got.includes(id));
    if (missing.length > 0) wrong.push(`${u.userId}: home misses ${missing.length} of its ${expected.length} newest posts`);
  }
  return wrong;
}

/** Rate limits are enforced again: a burst past an event's bucket (system:whoami, 20) is partly refused. */
export async function rateLimitsWork(u: SocialUser): Promise<{ ok: number; limited: number }> {
  const codes = await Promise.all(
    Array.from({ length: 30 }, () =>
      u.c.request('system:whoami', {}).then(
        () => 'ok',
        (err: unknown) => (err instanceof FlockRequestError ? err.code : NO_ACK),
      ),
    ),
  );
  return { ok: codes.filter((c) => c === 'ok').length, limited: codes.filter((c) => c === 'REQUEST_RATE_LIMITED').length };
}

/** Load goes on after recovery until a hundred more operations went through; then it stops. */
export async function keepGoing(t: ExecutionContext, work: Workload): Promise<void> {
  const from = work.now();
  t.true(await until(() => work.outcomes.filter((o) => o.at > from && o.code === 'ok').length >= 100, 60_000), 'the workload goes on');
  await work.stop();
}

/**
 * What every scenario checks once the workload stopped: both nodes up and
 * never out of stack, only retryable failures, every request answered,
 * nothing acknowledged lost, home timelines whole, rate limits enforced.
 */
export async function checkAfterFault(t: ExecutionContext, cluster: ChaosCluster, work: Workload): Promise<LossReport> {
  for (const [i, n] of cluster.nodes.entries()) {
    t.is(n.child.exitCode, null, `node ${i} is still running`);
    t.false(
      n.logs.some((l) => /Maximum call stack/.test(JSON.stringify(l))),
      `node ${i} never overflowed its stack`,
    );
  }
  const unexpected = work.unexpected();
  t.deepEqual(
    unexpected.filter((o) => o.code !== NO_ACK).map((o) => o.code),
    [],
    'failures are retryable codes only',
  );
  t.deepEqual(
    unexpected.filter((o) => o.code === NO_ACK),
    [],
    'every request got its ack',
  );
  const report = await checkNothingLost(cluster, work);
  t.deepEqual(report.problems, []);
  t.is(report.lost, 0);
  await cluster.eventsSettled('feeds');
  t.deepEqual(await checkHomeFeeds(cluster, cluster.people.slice(0, 24)), [], 'home timelines hold the newest posts of everyone followed');
  const limits = await rateLimitsWork(cluster.people[0]!);
  t.true(limits.limited > 0 && limits.ok >= 15, `rate limits enforced again (${JSON.stringify(limits)})`);
  return report;
}

/** The personal-stream position of every user now (the last event it got live). */
export function streamCursors(cluster: ChaosCluster, live: Map<string, LiveLog>): Map<string, string | undefined> {
  return new Map(cluster.people.map((u) => [u.userId, live.get(u.userId)!.lastStreamId]));
}

/** Every user that had a position resumes from it: how many got their events, how many a resync, how many an error. */
export async function resumeEveryone(
  cluster: ChaosCluster,
  cursors: Map<string, string | undefined>,
): Promise<{ events: number; resync: number; failed: number }> {
  const out = { events: 0, resync: 0, failed: 0 };
  await Promise.all(
    cluster.people.map(async (u) => {
      const lastId = cursors.get(u.userId);
      if (!lastId) return;
      try {
        const r = await u.c.request('stream:resume', { lastId, limit: 500 });
        out[r.kind === 'events' ? 'events' : 'resync'] += 1;
      } catch {
        out.failed += 1;
      }
    }),
  );
  return out;
}

/** Resolves true as soon as `check` holds, false after `ms` (polling every 20 ms: it reads local state only). */
export async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await pause(20);
  }
  return true;
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * A setup request, retried while it fails with a retryable code: on a loaded
 * machine 200 users set up at once can outrun an ask's deadline, and setup is
 * not what the tests measure. Every setup request is idempotent.
 */
async function settingUp<T>(request: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (err) {
      if (attempt >= attempts || !(err instanceof FlockRequestError && RETRYABLE.has(err.code))) throw err;
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
}
