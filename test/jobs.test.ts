// Agenda jobs across two real node processes sharing MongoDB and Redis: a job
// scheduled now runs exactly once, on one of them, and does its work. Runs are
// counted from Agenda's persistent job log (one "start" entry per run).
import test from 'ava';
import { MongoClient, type Db } from 'mongodb';
import { pino } from 'pino';
import { createJobRunner, type JobRunner } from '../jobs/agenda.ts';
import { JOB_LOG_COLLECTION, JOBS_COLLECTION } from '../jobs/collections.ts';
import { FlockError } from '../kernel/errors.ts';
import { requireEnv, uniqueDbName } from './helpers/env.ts';
import { eventually, startNodeProcess, type NodeProcess } from './helpers/node-process.ts';

const dbName = uniqueDbName('jobs');
let client: MongoClient;
let db: Db;
let scheduler: JobRunner;
let nodes: NodeProcess[] = [];

test.before(async () => {
  client = await MongoClient.connect(requireEnv('MONGO_URL'));
  db = client.db(dbName);
  nodes = await Promise.all(['a', 'b'].map((n) => startNodeProcess({ dbName, env: { NODE_ID: `jobs-${n}`, JOBS_PROCESS_EVERY: '1 second' } })));
  // Schedules only (never started), like an API node handing work to workers.
  scheduler = createJobRunner({
    db,
    redisUrl: requireEnv('REDIS_URL'),
    keyPrefix: 'flock', // the nodes' REDIS_KEY_PREFIX (the default)
    nodeId: 'jobs-test',
    processEvery: '1 second',
    housekeepingEvery: '1 hour',
    retentionDays: 7,
    log: pino({ level: 'silent' }),
  });
});

test.after.always(async () => {
  await Promise.all([...nodes.map((n) => n.stop()), scheduler.stop(1_000)]);
  await db.dropDatabase().catch(() => {});
  await client.close();
});

const logsFor = (jobId: string, event: string) => db.collection(JOB_LOG_COLLECTION).find({ jobId, event }).toArray();

/** Barrier: both nodes have polled and run jobs scheduled after this point, so a second run of anything earlier would show by now. */
const bothNodesRanLaterJobs = async () => {
  const ranOn = new Set<string>();
  for (let round = 0; round < 20 && ranOn.size < 2; round++) {
    const markers = await Promise.all([1, 2, 3, 4].map(() => scheduler.now('housekeeping', {})));
    for (const marker of markers) {
      if (!(await eventually(async () => (await logsFor(marker, 'success')).length > 0, 20_000))) throw new Error('a marker job never ran');
      for (const start of await logsFor(marker, 'start')) ranOn.add(String(start.agendaName));
    }
  }
  if (ranOn.size < 2) throw new Error(`only ${[...ranOn].join()} ran marker jobs`);
};

test.serial('a housekeeping job scheduled now runs exactly once across two nodes and deletes old finished jobs and expired refresh tokens', async (t) => {
  const longAgo = new Date(Date.now() - 30 * 24 * 3600_000);
  await db.collection(JOBS_COLLECTION).insertMany([
    { name: 'old-finished', type: 'normal', nextRunAt: null, lastFinishedAt: longAgo, lockedAt: null, data: {} },
    { name: 'recent-finished', type: 'normal', nextRunAt: null, lastFinishedAt: new Date(), lockedAt: null, data: {} },
  ]);
  await db.collection('refresh_tokens').insertMany([
    { _id: 'expired' as never, family: 's_1', userId: 'u_1', expiresAt: new Date(Date.now() - 1000) },
    { _id: 'live' as never, family: 's_2', userId: 'u_1', expiresAt: new Date(Date.now() + 3600_000) },
  ]);
  const jobId = await scheduler.now('housekeeping', {});
  t.true(await eventually(async () => (await logsFor(jobId, 'success')).length > 0, 20_000), 'the job succeeded');
  await bothNodesRanLaterJobs();

  const starts = await logsFor(jobId, 'start');
  t.is(starts.length, 1, 'one run');
  t.true(['jobs-a', 'jobs-b'].includes(String(starts[0]!.agendaName)));
  t.is((await logsFor(jobId, 'fail')).length, 0);
  t.is(await db.collection(JOBS_COLLECTION).countDocuments({ name: 'old-finished' }), 0);
  t.is(await db.collection(JOBS_COLLECTION).countDocuments({ name: 'recent-finished' }), 1);
  t.deepEqual(
    (await db.collection('refresh_tokens').find().toArray()).map((d) => d._id),
    ['live'],
    'expired refresh tokens purged',
  );
});

test.serial('the recurring housekeeping job exists once however many nodes start', async (t) => {
  t.is(await db.collection(JOBS_COLLECTION).countDocuments({ name: 'housekeeping', type: 'single' }), 1);
});

test.serial('scheduling with data that fails the job schema is refused and saves nothing', async (t) => {
  const count = await db.collection(JOBS_COLLECTION).countDocuments();
  const err = await t.throwsAsync(scheduler.now('housekeeping', { unexpected: 1 } as never));
  t.true(err instanceof FlockError);
  t.is((err as FlockError).code, 'JOB_DATA_INVALID');
  t.is(await db.collection(JOBS_COLLECTION).countDocuments(), count);
});
