// Fenced single-document writes ({_id, epoch: {$lte: N}}, {_id, epoch,
// version}) keep MongoDB's semantics. The embedded FerretDB front rewrites
// them to an _id-only filter when that selects the same document
// (devservices/ferretdb/fence.go), so these tests pin down what must not change,
// and that lookups by _id use the _id index (the patch in devservices/ferretdb.ts).
// They hold for any server MONGO_URL points at.
import test from 'ava';
import { Double, Long, MongoClient, MongoServerError, type Collection } from 'mongodb';
import { requireEnv, uniqueDbName } from './helpers/env.ts';

interface Doc {
  _id: string;
  epoch?: number | Long | Double;
  version?: number;
  n?: number;
  state?: string | number;
  createdBy?: string;
  born?: boolean;
  kind?: string;
  owner?: string;
  winner?: number;
  a?: number;
  b?: number;
  c?: number;
  d?: number;
  e?: number;
}

let clients: MongoClient[];
let colls: Collection<Doc>[];
let coll: Collection<Doc>;
const dbName = uniqueDbName('pushdown');

test.before(async () => {
  clients = await Promise.all([1, 2, 3, 4].map(() => MongoClient.connect(requireEnv('MONGO_URL'), { maxPoolSize: 10 })));
  colls = clients.map((c) => c.db(dbName).collection<Doc>('docs'));
  coll = colls[0]!;
  // Enough other documents that a filter on _id alone is not trivially the same as a scan.
  await coll.insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: `filler-${i}`, epoch: 1, version: 1 })));
});
test.after.always(async () => {
  await clients[0]
    ?.db(dbName)
    .dropDatabase()
    .catch(() => {});
  await Promise.all(clients.map((c) => c.close()));
});

const isDuplicateKey = (err: unknown) => err instanceof MongoServerError && err.code === 11000;

test('a fenced update lands when the epoch is within the fence and not otherwise', async (t) => {
  await coll.insertOne({ _id: 'fence', epoch: 3, state: 'a' });
  t.is((await coll.updateOne({ _id: 'fence', epoch: { $lte: 2 } }, { $set: { state: 'stale' } })).matchedCount, 0);
  t.is((await coll.updateOne({ _id: 'fence', epoch: { $lt: 3 } }, { $set: { state: 'stale' } })).matchedCount, 0);
  t.is((await coll.updateOne({ _id: 'fence', epoch: { $gt: 3 } }, { $set: { state: 'stale' } })).matchedCount, 0);
  t.is((await coll.findOne({ _id: 'fence' }))?.state, 'a');

  const hit = await coll.updateOne({ _id: 'fence', epoch: { $lte: 3 } }, { $set: { state: 'b' } });
  t.is(hit.matchedCount, 1);
  t.is(hit.modifiedCount, 1);
  t.is(hit.upsertedCount, 0);
  const ranged = await coll.updateOne({ _id: 'fence', epoch: { $gte: 2, $lt: 4, $ne: 5 } }, { $set: { state: 'c' } });
  t.is(ranged.modifiedCount, 1);
  t.deepEqual(await coll.findOne({ _id: 'fence' }), { _id: 'fence', epoch: 3, state: 'c' });
});

test('a fence compares int32, int64 and double alike', async (t) => {
  await coll.insertMany([
    { _id: 'num-long', epoch: Long.fromNumber(7) },
    { _id: 'num-double', epoch: new Double(7) },
    { _id: 'num-frac', epoch: 7.5 },
  ]);
  for (const _id of ['num-long', 'num-double']) {
    t.is((await coll.updateOne({ _id, epoch: { $lte: 7 } }, { $set: { a: 1 } })).matchedCount, 1, _id);
    t.is((await coll.updateOne({ _id, epoch: { $lte: Long.fromNumber(7) } }, { $set: { b: 1 } })).matchedCount, 1, _id);
    t.is((await coll.updateOne({ _id, epoch: { $lt: 7.000001 } }, { $set: { c: 1 } })).matchedCount, 1, _id);
    t.is((await coll.updateOne({ _id, epoch: 7 }, { $set: { d: 1 } })).matchedCount, 1, _id);
    t.is((await coll.updateOne({ _id, epoch: { $lt: 7 } }, { $set: { e: 1 } })).matchedCount, 0, _id);
  }
  t.is((await coll.updateOne({ _id: 'num-frac', epoch: { $lte: 7 } }, { $set: { a: 1 } })).matchedCount, 0);
  t.is((await coll.updateOne({ _id: 'num-frac', epoch: { $gt: 7 } }, { $set: { a: 1 } })).matchedCount, 1);
});

test('a fenced upsert of a missing document inserts it with its $setOnInsert fields', async (t) => {
  const res = await coll.updateOne(
    { _id: 'fresh', epoch: { $lte: 4 } },
    { $set: { epoch: 4, state: 's' }, $setOnInsert: { createdBy: 'node-1' } },
    { upsert: true },
  );
  t.is(res.upsertedId, 'fresh');
  t.is(res.matchedCount, 0);
  t.deepEqual(await coll.findOne({ _id: 'fresh' }), { _id: 'fresh', epoch: 4, state: 's', createdBy: 'node-1' });

  // Again, now that it exists: the fence passes, $setOnInsert does not apply.
  const again = await coll.updateOne(
    { _id: 'fresh', epoch: { $lte: 5 } },
    { $set: { epoch: 5, state: 't' }, $setOnInsert: { createdBy: 'node-2' } },
    { upsert: true },
  );
  t.is(again.matchedCount, 1);
  t.is(again.upsertedCount, 0);
  t.deepEqual(await coll.findOne({ _id: 'fresh' }), { _id: 'fresh', epoch: 5, state: 't', createdBy: 'node-1' });
});

test('a fenced upsert over a document with a higher epoch fails with a duplicate key and changes nothing', async (t) => {
  await coll.insertOne({ _id: 'ahead', epoch: 9, state: 'current' });
  const err = await t.throwsAsync(coll.updateOne({ _id: 'ahead', epoch: { $lte: 5 } }, { $set: { epoch: 5, state: 'stale' } }, { upsert: true }));
  t.true(isDuplicateKey(err), String(err));
  t.deepEqual(await coll.findOne({ _id: 'ahead' }), { _id: 'ahead', epoch: 9, state: 'current' });
});

test('a fenced update without upsert changes nothing when the document is missing', async (t) => {
  const res = await coll.updateOne({ _id: 'nobody', epoch: { $lte: 5 } }, { $set: { state: 'x' } });
  t.is(res.matchedCount, 0);
  t.is(res.upsertedCount, 0);
  t.is(await coll.findOne({ _id: 'nobody' }), null);
});

test('a fenced findOneAndUpdate without upsert (a document actor claiming a document not yet created) finds nothing and creates nothing', async (t) => {
  t.is(await coll.findOneAndUpdate({ _id: 'unborn', epoch: { $lte: 5 } }, { $set: { epoch: 5 } }, { returnDocument: 'after' }), null);
  t.is(await coll.findOne({ _id: 'unborn' }), null);
  await coll.insertOne({ _id: 'unborn', epoch: 7, state: 'made' });
  t.is(await coll.findOneAndUpdate({ _id: 'unborn', epoch: { $lte: 5 } }, { $set: { epoch: 5 } }, { returnDocument: 'after' }), null, 'fenced out');
  t.deepEqual(await coll.findOneAndUpdate({ _id: 'unborn', epoch: { $lte: 8 } }, { $set: { epoch: 8 } }, { returnDocument: 'after' }), {
    _id: 'unborn',
    epoch: 8,
    state: 'made',
  });
});

test('{_id, epoch, version} is a compare-and-set', async (t) => {
  await coll.insertOne({ _id: 'cas', epoch: 2, version: 4, state: 0 });
  t.is((await coll.updateOne({ _id: 'cas', epoch: 1, version: 4 }, { $set: { version: 5, state: 1 } })).matchedCount, 0);
  t.is((await coll.updateOne({ _id: 'cas', epoch: 2, version: 3 }, { $set: { version: 5, state: 1 } })).matchedCount, 0);
  t.is((await coll.updateOne({ _id: 'cas', epoch: 2, version: 4 }, { $set: { version: 5, state: 2 } })).modifiedCount, 1);
  t.is((await coll.updateOne({ _id: 'cas', epoch: 2, version: 4 }, { $set: { version: 5, state: 3 } })).matchedCount, 0);
  t.deepEqual(await coll.findOne({ _id: 'cas' }), { _id: 'cas', epoch: 2, version: 5, state: 2 });
});

test('findOneAndUpdate with a fence and upsert returns the right document', async (t) => {
  const inserted = await coll.findOneAndUpdate(
    { _id: 'fam', epoch: { $lte: 1 } },
    { $set: { epoch: 1, n: 1 }, $setOnInsert: { born: true } },
    { upsert: true, returnDocument: 'after' },
  );
  t.deepEqual(inserted, { _id: 'fam', epoch: 1, n: 1, born: true });

  const before = await coll.findOneAndUpdate(
    { _id: 'fam', epoch: { $lte: 2 } },
    { $set: { epoch: 2, n: 2 }, $setOnInsert: { born: false } },
    { upsert: true, returnDocument: 'before' },
  );
  t.deepEqual(before, { _id: 'fam', epoch: 1, n: 1, born: true });

  const after = await coll.findOneAndUpdate({ _id: 'fam', epoch: { $lte: 2 } }, { $inc: { n: 1 } }, { upsert: true, returnDocument: 'after' });
  t.deepEqual(after, { _id: 'fam', epoch: 2, n: 3, born: true });

  const err = await t.throwsAsync(coll.findOneAndUpdate({ _id: 'fam', epoch: { $lte: 1 } }, { $set: { n: -1 } }, { upsert: true }));
  t.true(isDuplicateKey(err), String(err));
  t.is((await coll.findOne({ _id: 'fam' }))?.n, 3);

  const newBefore = await coll.findOneAndUpdate({ _id: 'fam-2', epoch: { $lte: 1 } }, { $set: { epoch: 1 } }, { upsert: true, returnDocument: 'before' });
  t.is(newBefore, null);
  t.deepEqual(await coll.findOne({ _id: 'fam-2' }), { _id: 'fam-2', epoch: 1 });
});

test('an upsert still copies the equality fields of its filter into the new document', async (t) => {
  await coll.updateOne({ _id: 'eq-1', kind: 'k', epoch: { $lte: 3 } }, { $set: { n: 1 } }, { upsert: true });
  t.deepEqual(await coll.findOne({ _id: 'eq-1' }), { _id: 'eq-1', kind: 'k', n: 1 });

  await coll.updateOne({ _id: 'eq-2', epoch: 3, version: 0 }, { $set: { n: 1 } }, { upsert: true });
  t.deepEqual(await coll.findOne({ _id: 'eq-2' }), { _id: 'eq-2', epoch: 3, version: 0, n: 1 });

  await coll.updateOne({ _id: 'eq-3', epoch: { $eq: 6 } }, { $set: { n: 1 } }, { upsert: true });
  t.deepEqual(await coll.findOne({ _id: 'eq-3' }), { _id: 'eq-3', epoch: 6, n: 1 });

  const doc = await coll.findOneAndUpdate({ _id: 'eq-4', owner: 'o' }, { $set: { n: 2 } }, { upsert: true, returnDocument: 'after' });
  t.deepEqual(doc, { _id: 'eq-4', owner: 'o', n: 2 });
});

const racers = <T>(fn: (c: Collection<Doc>, i: number) => Promise<T>) => Promise.all(colls.flatMap((c, i) => [fn(c, 2 * i), fn(c, 2 * i + 1)]));

test('of 8 concurrent compare-and-set updates, exactly one lands', async (t) => {
  for (let round = 0; round < 10; round++) {
    const _id = `race-cas-${round}`;
    await coll.insertOne({ _id, epoch: 1, version: 0 });
    const plain = await racers((c, i) => c.updateOne({ _id, epoch: 1, version: 0 }, { $set: { version: 1, winner: i } }));
    t.is(plain.filter((r) => r.modifiedCount === 1).length, 1, `round ${round}`);
    const fenced = await racers((c, i) => c.updateOne({ _id, epoch: { $lte: 1 }, version: 1 }, { $set: { version: 2, winner: i } }));
    t.is(fenced.filter((r) => r.modifiedCount === 1).length, 1, `round ${round}`);
    t.is((await coll.findOne({ _id }))?.version, 2);
  }
});

test('concurrent fenced upserts with epochs 1..8 leave epoch 8, and only stale writers fail', async (t) => {
  for (let round = 0; round < 5; round++) {
    const _id = `race-epoch-${round}`;
    await coll.insertOne({ _id, epoch: 0 });
    const outcomes = await racers((c, i) =>
      c.updateOne({ _id, epoch: { $lte: i + 1 } }, { $set: { epoch: i + 1 } }, { upsert: true }).then(
        () => 'ok' as const,
        (err: unknown) => (isDuplicateKey(err) ? ('stale' as const) : Promise.reject(err instanceof Error ? err : new Error(String(err)))),
      ),
    );
    t.is(outcomes[7], 'ok', `round ${round}`);
    t.deepEqual(await coll.findOne({ _id }), { _id, epoch: 8 });
  }
});

test('a lookup by _id, found or not, searches the _id index instead of scanning', async (t) => {
  for (const _id of ['filler-7', 'no-such-document']) {
    const plan = JSON.stringify((await coll.find({ _id }).explain()).queryPlanner);
    // Embedded FerretDB reports SQLite's plan ("SEARCH … USING INDEX"); MongoDB
    // an IDHACK or index stage. Neither may be a scan of the collection.
    t.notRegex(plan, /COLLSCAN|\bSCAN docs/, plan);
    t.regex(plan, /USING INDEX|IDHACK|IXSCAN/, plan);
  }
});
