// Redis goes away under load and comes back, twice: restarted with its data
// (append-only file), then emptied (FLUSHALL). Two nodes on a private
// redis-server serve 200 users who send messages, like and post at about 30
// operations a second. While Redis is away requests fail with retryable codes
// (SERVICE_UNAVAILABLE, never SERVER_INTERNAL) and get their ack in time; when
// it is back the nodes recover by themselves, though every node lease lapsed:
// /readyz is 200 again, messages cross nodes live (Socket.IO adapter), likes
// become notifications and posts fan out live (consumer groups, created again
// after the flush), presence and rate limits work, actors are placed again.
// Nothing acknowledged is lost, home timelines show every post, and every
// client resumes its personal stream or is told to resync.
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { checkHomeFeeds, checkNothingLost, ChaosCluster, LiveLog, NO_ACK, rateLimitsWork, recovered, until, Workload } from '../helpers/chaos.ts';
import { privateRedis, type PrivateRedis } from '../helpers/private-redis.ts';

const LEASE_MS = 2_000;
const USERS = 200;
const OPS_PER_SECOND = 30;
/** The bound stated in the README: once Redis is back, both nodes are ready and everything works end to end within this. */
const RECOVERY_BOUND_MS = 30_000;

let redis: PrivateRedis;
let cluster: ChaosCluster;
const live = new Map<string, LiveLog>();

test.before(async () => {
  redis = await privateRedis({ persist: true });
  cluster = new ChaosCluster({ redisUrl: redis.url });
  await cluster.start('chaosredis', { ACTOR_LEASE_MS: String(LEASE_MS), ACTOR_ASK_TIMEOUT_MS: '5000' });
  await cluster.populate(USERS);
  for (const u of cluster.people) {
    live.set(u.userId, new LiveLog(u.c));
    await u.c.request('feeds:watch', {});
  }
});
test.after.always(async () => {
  for (const [i, n] of (cluster?.nodes ?? []).entries()) {
    if (n.child.exitCode !== null) process.stderr.write(`node ${i} exited with ${n.child.exitCode}:\n${n.stderr()}\n`);
  }
  await cluster?.stop();
  await redis?.stop();
});

test.serial('Redis restarted with its data kept: requests fail retryably while it is away, the cluster recovers, nothing acknowledged is lost', async (t) => {
  t.timeout(240_000);
  const work = new Workload(cluster, OPS_PER_SECOND);
  t.teardown(() => work.stop());
  t.true(await until(() => work.sends.length >= 30 && work.likes.length >= 20, 60_000), 'the workload is under way');

  await redis.stop();
  const downAt = performance.now();
  const down = work.now();
  const cursors = streamCursors();
  // Away until every node lease lapsed, and until the clients have seen it.
  t.true(await until(() => performance.now() - downAt > 3 * LEASE_MS && work.failedSince(down), 60_000), 'requests fail while Redis is away');
  const during = work.codes(down);
  await redis.start();
  const upAt = performance.now();
  const readyMs = await readyAgain(upAt);
  const recovery = await recovered(cluster, live, upAt, RECOVERY_BOUND_MS);
  await keepGoing(t, work);

  const report = await afterTheFault(t, work);
  const resumes = await resumeEveryone(cursors);
  t.is(resumes.failed, 0, 'every stream:resume answered');
  t.is(resumes.resync, 0, 'with its data kept every client resumes where it was, without a resync');
  t.log(`restart: Redis away ${Math.round(upAt - downAt)} ms; while away ${JSON.stringify(during)}`);
  t.log(
    `restart: /readyz 200 on both nodes ${readyMs} ms after Redis was back; every probe passing after ${recovery.ms} ms (${recovery.rounds.join('; ') || 'first round'})`,
  );
  t.log(
    `restart: ${report.acknowledged} operations acknowledged, ${report.lost} lost; outcomes ${JSON.stringify(work.codes())}; slowest ack ${Math.round(work.slowestAck())} ms; ` +
      `stream:resume from before the outage: ${resumes.events} resumed, ${resumes.resync} resync`,
  );
});

test.serial(
  'Redis flushed (FLUSHALL) under load: the cluster recovers without a restart, nothing acknowledged is lost, clients resume or resync',
  async (t) => {
    t.timeout(240_000);
    const work = new Workload(cluster, OPS_PER_SECOND);
    t.teardown(() => work.stop());
    t.true(await until(() => work.sends.length >= 30 && work.likes.length >= 20, 60_000), 'the workload is under way');

    const cursors = streamCursors();
    const admin = new Redis(redis.url);
    await admin.flushall();
    admin.disconnect();
    const flushedAt = performance.now();
    const readyMs = await readyAgain(flushedAt);
    const recovery = await recovered(cluster, live, flushedAt, RECOVERY_BOUND_MS);
    await keepGoing(t, work);

    const report = await afterTheFault(t, work);
    const resumes = await resumeEveryone(cursors);
    t.is(resumes.failed, 0, 'every stream:resume answered');
    t.is(resumes.events, 0, 'a position from before the flush is unknown now: an explicit resync, never a silent gap');
    t.log(
      `flush: /readyz 200 on both nodes ${readyMs} ms after FLUSHALL; every probe passing after ${recovery.ms} ms (${recovery.rounds.join('; ') || 'first round'})`,
    );
    t.log(
      `flush: ${report.acknowledged} operations acknowledged, ${report.lost} lost; outcomes ${JSON.stringify(work.codes())}; slowest ack ${Math.round(work.slowestAck())} ms; ` +
        `stream:resume from before the flush: ${resumes.events} resumed, ${resumes.resync} resync`,
    );
  },
);

/** Load goes on after recovery until a hundred more operations went through. */
async function keepGoing(t: ExecutionContext, work: Workload): Promise<void> {
  const from = work.now();
  t.true(await until(() => work.outcomes.filter((o) => o.at > from && o.code === 'ok').length >= 100, 60_000), 'the workload goes on');
  await work.stop();
}

/** What every scenario checks once the workload stopped: nodes up, only retryable failures, every request answered, nothing lost, feeds whole, rate limits enforced. */
async function afterTheFault(t: ExecutionContext, work: Workload) {
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
function streamCursors(): Map<string, string | undefined> {
  return new Map(cluster.people.map((u) => [u.userId, live.get(u.userId)!.lastStreamId]));
}

/** Every user that had a position resumes from it. */
async function resumeEveryone(cursors: Map<string, string | undefined>): Promise<{ events: number; resync: number; failed: number }> {
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

/** ms from `since` until both nodes answer /readyz with 200. */
async function readyAgain(since: number): Promise<number> {
  for (;;) {
    const statuses = await Promise.all(
      cluster.nodes.map((n) =>
        fetch(`${n.url}/readyz`, { signal: AbortSignal.timeout(5_000) }).then(
          (r) => r.status,
          () => 0,
        ),
      ),
    );
    if (statuses.every((s) => s === 200)) return Math.round(performance.now() - since);
    if (performance.now() - since > RECOVERY_BOUND_MS) throw new Error(`/readyz not 200 within ${RECOVERY_BOUND_MS} ms: ${statuses.join(', ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
