// One node is paused (SIGSTOP) under load for three times its lease, then
// resumed (SIGCONT): the kind of stall a long GC pause, a frozen VM or an
// overloaded host gives. While it is stopped the other node takes over its
// actors under newer fencing epochs; when it wakes up it finds its lease gone,
// drops every activation without writing, and its turns that were in flight
// are fenced out. No duplicate effect (a message stored or delivered under a
// seq another one holds, a like counted twice), no stale write, nothing
// acknowledged lost, and the woken node serves again by itself.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import {
  ChaosCluster,
  checkAfterFault,
  checkLiveMessages,
  keepGoing,
  recovered,
  resumeEveryone,
  streamCursors,
  until,
  Workload,
  type LiveLog,
} from '../helpers/chaos.ts';
import { privateMongo, type PrivateMongo } from '../helpers/private-mongo.ts';

const LEASE_MS = 2_000;
const USERS = 200;
const OPS_PER_SECOND = 30;
const PAUSED = 0;
/** The bound stated in the README: once the paused node runs again, everything works end to end within this. */
const RECOVERY_BOUND_MS = 30_000;

let mongo: PrivateMongo;
let cluster: ChaosCluster;
let live: Map<string, LiveLog>;

test.before(async () => {
  // A database of its own: the suite's shared one, loaded by other files, would blur what the pause does.
  mongo = await privateMongo();
  cluster = new ChaosCluster({ mongoUrl: mongo.url });
  await cluster.start('chaospause', { ACTOR_LEASE_MS: String(LEASE_MS), ACTOR_ASK_TIMEOUT_MS: '5000' });
  await cluster.populate(USERS);
  live = await cluster.watchEveryone();
});
test.after.always(async () => {
  cluster?.nodes[PAUSED]?.child.kill('SIGCONT');
  cluster?.reportCrashes();
  await cluster?.stop();
  await mongo?.stop();
});

test('a node paused past its lease and resumed: its actors move, its stale turns are fenced, no duplicate effect, nothing acknowledged lost', async (t) => {
  t.timeout(240_000);
  const work = new Workload(cluster, OPS_PER_SECOND);
  t.teardown(() => work.stop());
  t.true(await until(() => work.sends.length >= 30 && work.likes.length >= 20, 60_000), 'the workload is under way');

  // A conversation the node to pause hosts, and a member on the other node: its sends show when the actor has moved.
  let moved: (typeof cluster.groups)[number] | undefined;
  let hostBefore: { node: number; epoch: number } | undefined;
  for (const g of cluster.groups) {
    hostBefore = await cluster.hostOf(`conversation/${g.conversationId}`);
    if (hostBefore?.node === PAUSED) {
      moved = g;
      break;
    }
  }
  if (!moved || !hostBefore) throw new Error('the node to pause hosts no conversation');
  const survivor = moved.members.find((m) => m.node !== PAUSED)!;

  const cursors = streamCursors(cluster, live);
  const paused = cluster.nodes[PAUSED]!;
  paused.child.kill('SIGSTOP');
  const stoppedAt = performance.now();
  // Failover: the survivor's sends go through again, once the paused node's lease lapsed and the other node took the actor.
  let failoverMs: number | undefined;
  while (failoverMs === undefined && performance.now() - stoppedAt < 60_000) {
    const clientMessageId = `c-${randomBytes(9).toString('base64url')}`;
    const sent = await survivor.c
      .request('conversations:send', { conversationId: moved.conversationId, clientMessageId, text: 'failover' }, { timeoutMs: 10_000 })
      .then(
        () => true,
        () => false,
      );
    if (sent) failoverMs = Math.round(performance.now() - stoppedAt);
  }
  t.not(failoverMs, undefined, 'the other node serves the paused node’s actors');
  const hostDuring = await cluster.hostOf(`conversation/${moved.conversationId}`);
  // Paused for three leases in all.
  t.true(await until(() => performance.now() - stoppedAt > 3 * LEASE_MS, 60_000));
  paused.child.kill('SIGCONT');
  const resumedAt = performance.now();
  const pausedMs = Math.round(resumedAt - stoppedAt);
  const readyMs = await cluster.readyAgain(resumedAt, RECOVERY_BOUND_MS);
  const recovery = await recovered(cluster, live, resumedAt, RECOVERY_BOUND_MS);
  await keepGoing(t, work);

  t.is(hostDuring?.node, 1 - PAUSED, 'the conversation moved off the paused node');
  t.true(hostDuring!.epoch > hostBefore.epoch, 'under a newer fencing epoch');
  const report = await checkAfterFault(t, cluster, work);
  t.deepEqual(await checkLiveMessages(cluster, live), [], 'every message delivered live is the one stored under its seq');
  t.true(
    paused.logs.some((l) => l.msg === 'node lease lost: dropping every activation'),
    'the woken node knew its lease was gone',
  );
  const resumes = await resumeEveryone(cluster, cursors);
  t.is(resumes.failed + resumes.resync, 0, 'every client resumes its personal stream');
  t.log(
    `pause: node ${PAUSED} stopped ${pausedMs} ms (lease ${LEASE_MS} ms); the other node served its actors ${failoverMs} ms after the stop (conversation host ${JSON.stringify(hostBefore)} -> ${JSON.stringify(hostDuring)})`,
  );
  t.log(
    `pause: after SIGCONT /readyz 200 on both nodes in ${readyMs} ms; every probe passing after ${recovery.ms} ms (${recovery.rounds.join('; ') || 'first round'})`,
  );
  t.log(
    `pause: ${report.acknowledged} operations acknowledged, ${report.lost} lost; outcomes ${JSON.stringify(work.codes())}; slowest ack ${Math.round(work.slowestAck())} ms`,
  );
});
