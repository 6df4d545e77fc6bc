// MongoDB through mongoose against the suite's real server (FerretDB unless
// MONGO_URL points elsewhere).
import test from 'ava';
import mongoose from 'mongoose';
import { ActorState, actorDocId } from '../models/actor-state.ts';
import { connectMongo, disconnectMongo, pingMongo } from '../kernel/mongo.ts';
import { requireEnv, uniqueDbName } from './helpers/env.ts';

test.before(async () => {
  await connectMongo({ url: requireEnv('MONGO_URL'), dbName: uniqueDbName('mongo'), poolSize: 5, appName: 'flock-test' });
  await ActorState.init();
});
test.after.always(async () => {
  await mongoose.connection.dropDatabase().catch(() => {});
  await disconnectMongo();
});

test('the server answers a ping', async (t) => {
  await t.notThrowsAsync(pingMongo());
});

test('a mongoose model round-trips a document with nested state', async (t) => {
  const _id = actorDocId('counter', 'c-1');
  const state = { count: 3, tags: ['a', 'b'], nested: { ok: true, at: 'x' } };
  await ActorState.create({ _id, type: 'counter', key: 'c-1', epoch: 1, version: 1, state, updatedAt: new Date() });
  const read = await ActorState.findById(_id).lean();
  t.truthy(read);
  t.deepEqual(read!.state, state);
  t.is(read!.epoch, 1);
  t.is(read!.version, 1);
});

test('a conditional update lands once: the second writer with the old version changes nothing', async (t) => {
  const _id = actorDocId('counter', 'c-2');
  await ActorState.create({ _id, type: 'counter', key: 'c-2', epoch: 1, version: 1, state: { n: 1 }, updatedAt: new Date() });
  const first = await ActorState.updateOne({ _id, epoch: 1, version: 1 }, { $set: { version: 2, state: { n: 2 } } });
  const second = await ActorState.updateOne({ _id, epoch: 1, version: 1 }, { $set: { version: 2, state: { n: 99 } } });
  t.is(first.modifiedCount, 1);
  t.is(second.modifiedCount, 0);
  t.deepEqual((await ActorState.findById(_id).lean())!.state, { n: 2 });
});

test('the unique index on (type, key) refuses a duplicate actor', async (t) => {
  await ActorState.create({ _id: 'a/1', type: 'dup', key: 'k', epoch: 1, version: 1, state: {}, updatedAt: new Date() });
  await t.throwsAsync(ActorState.create({ _id: 'b/1', type: 'dup', key: 'k', epoch: 1, version: 1, state: {}, updatedAt: new Date() }));
});

test('sanitizeFilter neutralises operator injection in filters', async (t) => {
  await ActorState.create({ _id: 'inj/1', type: 'inj', key: '1', epoch: 1, version: 1, state: {}, updatedAt: new Date() });
  const hostile = JSON.parse('{"$ne": "nothing"}') as unknown;
  // Sanitised into an equality match on an object: refused by the cast, never run as $ne.
  const outcome = await ActorState.find({ type: 'inj', key: hostile as string })
    .lean()
    .then(
      (docs) => docs.length,
      (err: Error) => err.name,
    );
  t.true(outcome === 0 || outcome === 'CastError', String(outcome));
});
