// The database goes away under load and comes back: two nodes on a private
// embedded FerretDB (the server `npm start` runs) serve 200 users who send
// messages, like and post at about 30 operations a second, and the database
// is stopped for a few seconds, then started again on the same port with the
// same data. While it is down requests fail with the typed retryable
// SERVICE_UNAVAILABLE (or an actor's retryable timeout), each within its
// deadline, never SERVER_INTERNAL; once it is back service resumes by itself
// and nothing acknowledged is lost.
import test from 'ava';
import { ChaosCluster, checkAfterFault, keepGoing, recovered, resumeEveryone, streamCursors, until, Workload, type LiveLog } from '../helpers/chaos.ts';
import { privateMongo, type PrivateMongo } from '../helpers/private-mongo.ts';

const LEASE_MS = 2_000;
const USERS = 200;
const OPS_PER_SECOND = 30;
/** Long enough for the driver to see the server gone and every pooled connection fail. */
const OUTAGE_MS = 6_000;
/** The bound stated in the README: once the database is back, both nodes are ready and everything works end to end within this. */
const RECOVERY_BOUND_MS = 30_000;

let mongo: PrivateMongo;
let cluster: ChaosCluster;
let live: Map<string, LiveLog>;

test.before(async () => {
  mongo = await privateMongo();
  cluster = new ChaosCluster({ mongoUrl: mongo.url });
  await cluster.start('chaosdb', { ACTOR_LEASE_MS: String(LEASE_MS), ACTOR_ASK_TIMEOUT_MS: '5000' });
  await cluster.populate(USERS);
  live = await cluster.watchEveryone();
});
test.after.always(async () => {
  cluster?.reportCrashes();
  await cluster?.stop();
  await mongo?.stop();
});

test('the database restarted under load: typed retryable errors while it is down, service resumes by itself, nothing acknowledged is lost', async (t) => {
  t.timeout(240_000);
  const work = new Workload(cluster, OPS_PER_SECOND);
  t.teardown(() => work.stop());
  t.true(await until(() => work.sends.length >= 30 && work.likes.length >= 20, 60_000), 'the workload is under way');

  const cursors = streamCursors(cluster, live);
  await mongo.stop();
  const downAt = performance.now();
  const down = work.now();
  t.true(await until(() => performance.now() - downAt > OUTAGE_MS && work.failedSince(down), 60_000), 'requests fail while the database is down');
  const during = work.codes(down);
  t.true((during.SERVICE_UNAVAILABLE ?? 0) > 0, `clients are told the service is unavailable (${JSON.stringify(during)})`);
  await mongo.start();
  const upAt = performance.now();
  const readyMs = await cluster.readyAgain(upAt, RECOVERY_BOUND_MS);
  const recovery = await recovered(cluster, live, upAt, RECOVERY_BOUND_MS);
  await keepGoing(t, work);

  const report = await checkAfterFault(t, cluster, work);
  const resumes = await resumeEveryone(cluster, cursors);
  t.is(resumes.failed, 0, 'every stream:resume answered');
  t.is(resumes.resync, 0, 'personal streams live in Redis: every client resumes where it was');
  t.log(`database: down ${Math.round(upAt - downAt)} ms; while down ${JSON.stringify(during)}`);
  t.log(
    `database: /readyz 200 on both nodes ${readyMs} ms after it was back; every probe passing after ${recovery.ms} ms (${recovery.rounds.join('; ') || 'first round'})`,
  );
  t.log(
    `database: ${report.acknowledged} operations acknowledged, ${report.lost} lost; outcomes ${JSON.stringify(work.codes())}; slowest ack ${Math.round(work.slowestAck())} ms`,
  );
});
