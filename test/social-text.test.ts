// Hashtags and mentions parsed from post text (Unicode-aware), cursors, and
// fenced writes of actor-owned documents against the real MongoDB server.
import test from 'ava';
import mongoose from 'mongoose';
import { codeOf } from './helpers/outcome.ts';
import { requireEnv, uniqueDbName } from './helpers/env.ts';
import { decodeCursor, encodeCursor } from '../kernel/cursor.ts';
import { fencedInsert, fencedUpdate, fencedUpdateMany, fencedUpsert } from '../kernel/fenced.ts';
import { edgeModel } from '../models/edge.ts';
import { parseHashtags, parseMentions, MAX_HASHTAGS_PER_POST, hashtagInput } from '../social/text.ts';

test('hashtags: any script, normalized, deduplicated, not inside words, URLs or e-mail fragments', (t) => {
  t.deepEqual(parseHashtags('#Café #CAFÉ #café'), ['café']);
  t.deepEqual(parseHashtags('日本語 #東京 #Привет #مرحبا #한국어'), ['東京', 'привет', 'مرحبا', '한국어']);
  t.deepEqual(parseHashtags('a#b c&#35;d #123 #_ #a1 #x_y'), ['a1', 'x_y'], 'digits only or no letter is no tag; a# inside a word is not');
  t.deepEqual(parseHashtags('ｆｕｌｌ #ｗｉｄｅ'), ['wide'], 'NFKC folds full-width letters');
  t.deepEqual(parseHashtags('#e\u0301te'), ['éte'], 'combining marks stay in the tag and compose');
  t.is(parseHashtags(Array.from({ length: 30 }, (_, i) => `#t${i}`).join(' ')).length, MAX_HASHTAGS_PER_POST);
  t.deepEqual(parseHashtags(`#${'a'.repeat(65)} #ok`), ['ok'], 'overlong tags are ignored');
});

test('mentions: usernames after @, not e-mail addresses, lowercased and deduplicated', (t) => {
  t.deepEqual(parseMentions('hi @Alice and @bob_2, @alice again'), ['alice', 'bob_2']);
  t.deepEqual(parseMentions('mail me: me@example.com, @ab is too short, @toolongusername_toolongusername1'), []);
  t.deepEqual(parseMentions('(@carol) @dave!'), ['carol', 'dave']);
});

test('hashtag request field accepts "#Tag" or "tag" and refuses non-tags', (t) => {
  t.is(hashtagInput.parse('#Zürich'), 'zürich');
  t.false(hashtagInput.safeParse('!!!').success);
  t.false(hashtagInput.safeParse('123').success);
});

test('cursors round-trip, and anything else is REQUEST_CURSOR_INVALID', async (t) => {
  const c = { t: 1700000000000, id: 'p_x' };
  t.deepEqual(decodeCursor(encodeCursor(c)), c);
  t.is(decodeCursor(undefined), undefined);
  for (const bad of [
    '!!',
    'bm90LWpzb24',
    Buffer.from('{"t":-1,"id":"x"}').toString('base64url'),
    Buffer.from('{"t":1,"id":"x","extra":1}').toString('base64url'),
  ]) {
    t.is(await codeOf(Promise.resolve().then(() => decodeCursor(bad))), 'REQUEST_CURSOR_INVALID', bad);
  }
});

test('fenced writes: a newer epoch locks out older ones; an older owner cannot resurrect or change a document', async (t) => {
  const connection = await mongoose.createConnection(requireEnv('MONGO_URL'), { dbName: uniqueDbName('fenced') }).asPromise();
  t.teardown(() => connection.close());
  const edges = edgeModel(connection);
  const insertOnce = { kind: 'like', owner: 'p1', member: 'u1' };
  await fencedUpsert(edges, 'like|p1|u1', 5, { status: 'active', at: new Date() }, insertOnce);
  await fencedUpsert(edges, 'like|p1|u1', 5, { status: 'none', at: new Date() }, insertOnce);
  await fencedUpsert(edges, 'like|p1|u1', 7, { status: 'active', at: new Date() }, insertOnce);
  t.is(await codeOf(fencedUpsert(edges, 'like|p1|u1', 6, { status: 'none', at: new Date() }, insertOnce)), 'ACTOR_FENCED');
  t.is(await codeOf(fencedUpdate(edges, 'like|p1|u1', 6, { status: 'none' })), 'ACTOR_FENCED');
  t.is(await codeOf(fencedInsert(edges, { _id: 'like|p1|u1', ...insertOnce, status: 'none', at: new Date() }, 9)), 'ACTOR_FENCED');
  t.false(await fencedUpdate(edges, 'like|p1|missing', 6, { status: 'none' }));
  const doc = await edges.findById('like|p1|u1').lean();
  t.like(doc, { status: 'active', epoch: 7, kind: 'like', owner: 'p1', member: 'u1' });
});

test('fenced bulk writes: a stale owner writes none of what a newer one wrote, and is told so', async (t) => {
  const connection = await mongoose.createConnection(requireEnv('MONGO_URL'), { dbName: uniqueDbName('fencedmany') }).asPromise();
  t.teardown(() => connection.close());
  const edges = edgeModel(connection);
  const insertOnce = (member: string) => ({ kind: 'like', owner: 'p2', member });
  await fencedUpsert(edges, 'like|p2|old', 3, { status: 'active', at: new Date() }, insertOnce('old'));
  await fencedUpsert(edges, 'like|p2|new', 8, { status: 'active', at: new Date() }, insertOnce('new'));
  t.is(await codeOf(fencedUpdateMany(edges, { owner: 'p2', status: 'active' }, 5, { status: 'none' })), 'ACTOR_FENCED');
  t.like(await edges.findById('like|p2|new').lean(), { status: 'active', epoch: 8 }, 'the newer owner’s write stands');
  t.like(await edges.findById('like|p2|old').lean(), { status: 'none', epoch: 5 });
  t.is(await fencedUpdateMany(edges, { owner: 'p2', status: 'active' }, 8, { status: 'none' }), 1);
});
