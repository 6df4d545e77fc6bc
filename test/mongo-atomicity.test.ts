// Flock relies on single-document atomicity (job locks, actor fencing,
// counters), as MongoDB guarantees it. FerretDB v1 alone does not provide it;
// the embedded server serializes writes (devservices/ferretdb/front.go). These
// tests hold for any server MONGO_URL points at.
import test from 'ava';
import { MongoClient, type Collection } from 'mongodb';
import { requireEnv, uniqueDbName } from './helpers/env.ts';

interface Doc {
  _id: string;
  lockedAt?: Date | null;
  v?: number;
  n?: number;
}

let clients: MongoClient[];
let colls: Collection<Doc>[];
const dbName = uniqueDbName('atomic');

test.before(async () => {
  clients = await Promise.all([1, 2, 3, 4].map(() => MongoClient.connect(requireEnv('MONGO_URL'), { maxPoolSize: 10 })));
  colls = clients.map((c) => c.db(dbName).collection<Doc>('docs'));
});
test.after.always(async () => {
  await clients[0]
    ?.db(dbName)
    .dropDatabase()
    .catch(() => {});
  await Promise.all(clients.map((c) => c.close()));
});

const racers = <T>(fn: (c: Collection<Doc>) => Promise<T>) => Promise.all(colls.flatMap((c) => [fn(c), fn(c)]));

test('of 8 concurrent findOneAndUpdate calls on one unlocked document, exactly one wins', async (t) => {
  for (let round = 0; round < 20; round++) {
    const _id = `lock-${round}`;
    await colls[0]!.insertOne({ _id, lockedAt: null });
    const results = await racers((c) => c.findOneAndUpdate({ _id, lockedAt: null }, { $set: { lockedAt: new Date() } }));
    t.is(results.filter((r) => r !== null).length, 1, `round ${round}`);
  }
});

test('of 8 concurrent conditional updateOne calls with the same expected version, exactly one lands', async (t) => {
  for (let round = 0; round < 20; round++) {
    const _id = `cas-${round}`;
    await colls[0]!.insertOne({ _id, v: 0 });
    const results = await racers((c) => c.updateOne({ _id, v: 0 }, { $set: { v: 1 } }));
    t.is(results.filter((r) => r.modifiedCount === 1).length, 1, `round ${round}`);
  }
});

test('400 concurrent $inc from 4 clients add up to exactly 400', async (t) => {
  await colls[0]!.insertOne({ _id: 'counter', n: 0 });
  await Promise.all(Array.from({ length: 400 }, (_, i) => colls[i % 4]!.updateOne({ _id: 'counter' }, { $inc: { n: 1 } })));
  t.is((await colls[0]!.findOne({ _id: 'counter' }))?.n, 400);
});
