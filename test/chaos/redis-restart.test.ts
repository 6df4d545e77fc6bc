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
import test from 'ava';
import { Redis } from 'ioredis';
import { ChaosCluster, checkAfterFault, keepGoing, recovered, resumeEveryone, streamCursors, until, Workload, type LiveLog } from '../helpers/chaos.ts';
import { privateRedis, type PrivateRedis } from '../helpers/private-redis.ts';

const LEASE_MS = 2_000;
const USERS = 200;
const OPS_PER_SECOND = 30;
/** The bound stated in the README: once Redis is back, both nodes are ready and everything works end to end within this. */
const RECOVERY_BOUND_MS = 30_000;

let redis: PrivateRedis;
let cluster: ChaosCluster;
let live: Map<string, LiveLog>;

test.before(async () => {
  redis = await privateRedis({ persist: true });
  cluster = new ChaosCluster({ redisUrl: redis.url });
  await cluster.start('chaosredis', { ACTOR_LEASE_MS: String(LEASE_MS), ACTOR_ASK_TIMEOUT_MS: '5000' });
  await cluster.populate(USERS);
  live = await cluster.watchEveryone();
});
test.after.always(async () => {
  cluster?.reportCrashes();
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
  const cursors = streamCursors(cluster, live);
  // Away until every node lease lapsed, and until the clients have seen it.
  t.true(await until(() => performance.now() - downAt > 3 * LEASE_MS && work.failedSince(down), 60_000), 'requests fail while Redis is away');
  const during = work.codes(down);
  await redis.start();
  const upAt = performance.now();
  const readyMs = await cluster.readyAgain(upAt, RECOVERY_BOUND_MS);
  const recovery = await recovered(cluster, live, upAt, RECOVERY_BOUND_MS);
  await keepGoing(t, work);

  const report = await checkAfterFault(t, cluster, work);
  const resumes = await resumeEveryone(cluster, cursors);
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

    const cursors = streamCursors(cluster, live);
    const admin = new Redis(redis.url);
    await admin.flushall();
    admin.disconnect();
    const flushedAt = performance.now();
    const readyMs = await cluster.readyAgain(flushedAt, RECOVERY_BOUND_MS);
    const recovery = await recovered(cluster, live, flushedAt, RECOVERY_BOUND_MS);
    await keepGoing(t, work);

    const report = await checkAfterFault(t, cluster, work);
    const resumes = await resumeEveryone(cluster, cursors);
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
