// Resumable personal streams against real Redis: what a reconnecting client
// gets for the id of the last event it applied.
import test from 'ava';
import { type Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { FlockError } from '../kernel/errors.ts';
import { personalEventSchema, resumeResultSchema, streamEventBytes, type PersonalEvent, type ResumeResult } from '../streams/envelope.ts';
import { createPersonalStream, type PersonalStreamSettings } from '../streams/personal-stream.ts';
import { compareStreamIds, parseStreamId } from '../streams/stream-id.ts';
import { codeOf } from './helpers/outcome.ts';
import { redisKeySpace } from './helpers/redis.ts';

const { prefix, connect, cleanup } = redisKeySpace();
const streamOn = (client: Redis, settings: Partial<PersonalStreamSettings> = {}) => createPersonalStream({ redis: client, prefix, settings });
const user = () => `u-${randomBytes(4).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.after.always(cleanup);

const eventsOf = (result: ResumeResult): PersonalEvent[] => {
  if (result.kind !== 'events') throw new Error(`expected events, got resync (${result.reason})`);
  return result.events;
};

const appendMany = async (stream: ReturnType<typeof streamOn>, userId: string, n: number) => {
  const out: PersonalEvent[] = [];
  for (let i = 0; i < n; i++) out.push(await stream.append(userId, { type: 'test:event', data: { i } }));
  return out;
};

test('appended events come back in order, with increasing ids chained by prev', async (t) => {
  const stream = streamOn(connect());
  const u = user();
  const appended = await appendMany(stream, u, 5);
  for (let i = 1; i < appended.length; i++) {
    t.is(compareStreamIds(parseStreamId(appended[i]!.id)!, parseStreamId(appended[i - 1]!.id)!), 1, 'ids increase');
    t.is(appended[i]!.prev, appended[i - 1]!.id, 'prev names the event before');
  }
  t.is(appended[0]!.prev, null, 'the first event of a new stream has no prev');
  const replay = await stream.since(u, undefined, 100);
  t.deepEqual(replay, { kind: 'events', events: appended, more: false }, 'replay equals what append returned');
  t.true(resumeResultSchema.safeParse(replay).success);
  for (const e of appended) t.true(personalEventSchema.safeParse(e).success);
  t.is(await stream.head(u), appended[4]!.id);
});

test('since(lastId) returns exactly the later events; since(newest) returns none', async (t) => {
  const stream = streamOn(connect());
  const u = user();
  const appended = await appendMany(stream, u, 6);
  for (let k = 0; k < appended.length; k++) {
    t.deepEqual(eventsOf(await stream.since(u, appended[k]!.id, 100)), appended.slice(k + 1), `after #${k}`);
  }
  t.deepEqual(eventsOf(await stream.since(u, '0-0', 100)), appended, '0-0 on an untrimmed stream is everything');
});

test('the limit pages through the events without gaps or duplicates', async (t) => {
  const stream = streamOn(connect());
  const u = user();
  const appended = await appendMany(stream, u, 7);
  const seen: PersonalEvent[] = [];
  let cursor: string | undefined = appended[0]!.id;
  let pages = 0;
  for (;;) {
    const result = await stream.since(u, cursor, 2);
    const events = eventsOf(result);
    seen.push(...events);
    pages++;
    if (result.kind === 'events' && !result.more) break;
    cursor = events.at(-1)!.id;
  }
  t.deepEqual(seen, appended.slice(1));
  t.is(pages, 3);
});

test('data is returned as JSON round-trips it, the same live and on replay', async (t) => {
  const stream = streamOn(connect());
  const u = user();
  const when = new Date('2024-05-06T07:08:09.000Z');
  const live = await stream.append(u, { type: 'message:created', data: { when, text: 'héllo ✓', skip: undefined, n: null } });
  t.deepEqual(live.data, { when: when.toISOString(), text: 'héllo ✓', n: null });
  t.deepEqual(eventsOf(await stream.since(u, undefined, 10)), [live]);
  t.true(Math.abs(live.at - Date.now()) < 5_000, 'at is the append time');
});

test('once trimming by count passes lastId the client is told to resync; the last trimmed id still resumes exactly', async (t) => {
  const stream = streamOn(connect(), { maxEvents: 5 });
  const u = user();
  const appended = await appendMany(stream, u, 10); // keeps #5..#9, trimmed up to #4
  t.deepEqual(eventsOf(await stream.since(u, undefined, 100)), appended.slice(5), 'only maxEvents are kept');
  t.deepEqual(await stream.since(u, appended[3]!.id, 100), { kind: 'resync', reason: 'trimmed' }, '#4 was trimmed after #3');
  t.deepEqual(await stream.since(u, appended[0]!.id, 100), { kind: 'resync', reason: 'trimmed' });
  t.deepEqual(await stream.since(u, '0-0', 100), { kind: 'resync', reason: 'trimmed' });
  t.deepEqual(eventsOf(await stream.since(u, appended[4]!.id, 100)), appended.slice(5), 'nothing after #4 was trimmed');
  t.deepEqual(eventsOf(await stream.since(u, appended[7]!.id, 100)), appended.slice(8));
});

test('the byte bound trims the oldest events so a stream never holds more than maxBytes; a cursor before them gets a resync', async (t) => {
  const maxBytes = 20_000;
  const stream = streamOn(connect(), { maxBytes });
  const u = user();
  const cost = (e: PersonalEvent) => streamEventBytes(Buffer.byteLength(e.type), Buffer.byteLength(JSON.stringify(e.data)));
  const kept = async () => eventsOf(await stream.since(u, undefined, 1_000));
  const bytesOf = (events: PersonalEvent[]) => events.reduce((sum, e) => sum + cost(e), 0);

  // 1 KiB events: about 18 fit. Each append keeps the newest that fit, and no fewer.
  const appended: PersonalEvent[] = [];
  for (let i = 0; i < 60; i++) {
    appended.push(await stream.append(u, { type: 'test:event', data: { i, pad: 'p'.repeat(1_000) } }));
    const retained = await kept();
    const oldest = appended.length - retained.length;
    t.deepEqual(retained, appended.slice(oldest), 'the newest, in order');
    t.true(bytesOf(retained) <= maxBytes, `within the bound after ${i + 1}`);
    if (oldest > 0) t.true(bytesOf(appended.slice(oldest - 1)) > maxBytes, 'only as many trimmed as needed');
  }
  const retained = await kept();
  const firstKept = appended.length - retained.length;
  t.true(retained.length > 10 && retained.length < 20, `${retained.length} kept`);
  t.deepEqual(await stream.since(u, appended[firstKept - 2]!.id, 100), { kind: 'resync', reason: 'trimmed' });
  t.deepEqual(eventsOf(await stream.since(u, appended[firstKept - 1]!.id, 100)), retained, 'the last trimmed id resumes exactly');

  // One large event pushes out as many small ones as it needs.
  const big = await stream.append(u, { type: 'test:big', data: 'b'.repeat(15_000) });
  const after = await kept();
  t.is(after.at(-1)!.id, big.id);
  t.true(bytesOf(after) <= maxBytes);
  t.true(after.length < 6, `${after.length} kept next to the large one`);
  t.deepEqual(await stream.since(u, retained[0]!.id, 100), { kind: 'resync', reason: 'trimmed' });
});

test('a stream that was appended to before byte accounting is trimmed oldest first once over the bound', async (t) => {
  const redis = connect();
  const stream = streamOn(redis, { maxBytes: 20_000 });
  const u = user();
  // What an older node left: entries without `off`, a meta hash without `end`.
  const legacy: string[] = [];
  let prev = '';
  for (let i = 0; i < 5; i++) {
    const id = (await redis.xadd(`${prefix}:stream:${u}`, '*', 'type', 'test:old', 'prev', prev, 'data', JSON.stringify({ i, pad: 'o'.repeat(1_000) })))!;
    await redis.hset(`${prefix}:stream-meta:${u}`, 'last', id);
    legacy.push(id);
    prev = id;
  }
  const first = await stream.append(u, { type: 'test:event', data: { n: 0 } });
  t.is(first.prev, legacy.at(-1)!);
  t.deepEqual(
    eventsOf(await stream.since(u, undefined, 100)).map((e) => e.id),
    [...legacy, first.id],
    'under the bound: all kept',
  );
  for (let i = 0; i < 30; i++) await stream.append(u, { type: 'test:event', data: { i, pad: 'n'.repeat(1_000) } });
  const kept = eventsOf(await stream.since(u, undefined, 100));
  t.false(
    kept.some((e) => e.type === 'test:old'),
    'the old entries went first',
  );
  t.deepEqual(await stream.since(u, legacy[0], 100), { kind: 'resync', reason: 'trimmed' });
});

test('the time window trims old events; an expired idle stream keeps its position', async (t) => {
  const windowMs = 1_500;
  const stream = streamOn(connect(), { windowMs, positionTtlMs: 60_000 });
  const u = user();
  const [z, a] = await appendMany(stream, u, 2);
  await sleep(900);
  const b = await stream.append(u, { type: 'test:event', data: 'b' });
  await sleep(900); // z and a are now older than the window; b keeps the key alive
  const c = await stream.append(u, { type: 'test:event', data: 'c' });
  t.deepEqual(eventsOf(await stream.since(u, undefined, 10)), [b, c], 'z and a were trimmed');
  t.deepEqual(eventsOf(await stream.since(u, a!.id, 10)), [b, c], 'a was the newest trimmed: no gap after it');
  t.deepEqual(await stream.since(u, z!.id, 10), { kind: 'resync', reason: 'trimmed' }, 'a was missed after z');

  const raw = connect();
  t.true((await raw.pttl(`${prefix}:stream:${u}`)) <= windowMs, 'the stream expires after the window');
  await sleep(windowMs + 200);
  t.is(await raw.exists(`${prefix}:stream:${u}`), 0, 'idle stream expired');
  t.deepEqual(eventsOf(await stream.since(u, c.id, 10)), [], 'a client that was caught up stays caught up');
  t.deepEqual(await stream.since(u, b.id, 10), { kind: 'resync', reason: 'trimmed' }, 'c is gone');
  t.is(await stream.head(u), c.id);
  const d = await stream.append(u, { type: 'test:event', data: 'd' });
  t.is(d.prev, c.id, 'numbering continues after the expired stream');
  t.deepEqual(eventsOf(await stream.since(u, c.id, 10)), [d]);
  t.deepEqual(await stream.since(u, b.id, 10), { kind: 'resync', reason: 'trimmed' });
});

test('a syntactically invalid id is REQUEST_INVALID', async (t) => {
  const stream = streamOn(connect());
  const u = user();
  await appendMany(stream, u, 1);
  for (const bad of ['', 'abc', '1', '1-', '-1', '-1-0', '1-0-0', ' 1-0', '1-0 ', '1.5-0', '0x1-0', '123456789012345678901-0', '18446744073709551616-0']) {
    t.is(await codeOf(stream.since(u, bad, 10)), 'REQUEST_INVALID', JSON.stringify(bad));
  }
  t.is(await codeOf(stream.since(u, 42 as never, 10)), 'REQUEST_INVALID', 'a number');
  t.is(await codeOf(stream.since(u, undefined, 0)), 'REQUEST_INVALID', 'limit 0');
  t.is(await codeOf(stream.since(u, undefined, 1.5)), 'REQUEST_INVALID', 'fractional limit');
  t.is(await codeOf(stream.since(u, undefined, 1_000_001)), 'REQUEST_INVALID', 'limit above maxReplay');
  t.is(await codeOf(stream.since('bad user id', undefined, 10)), 'REQUEST_INVALID', 'user id');
});

test('a well-formed id this stream never issued is a resync, not an empty answer', async (t) => {
  const stream = streamOn(connect());
  const u = user();
  const [first, second] = await appendMany(stream, u, 2);
  const f = parseStreamId(second!.id)!;
  t.deepEqual(await stream.since(u, `${f.ms + 60_000n}-0`, 10), { kind: 'resync', reason: 'unknown-id' }, 'from the future');
  t.deepEqual(await stream.since(u, '18446744073709551615-18446744073709551615', 10), { kind: 'resync', reason: 'unknown-id' }, 'the largest id');
  const between = parseStreamId(first!.id)!;
  t.deepEqual(await stream.since(u, `${between.ms}-${between.seq + 1000n}`, 10), { kind: 'resync', reason: 'unknown-id' }, 'not an entry');
  t.deepEqual(await stream.since(user(), second!.id, 10), { kind: 'resync', reason: 'unknown-id' }, 'another user, who has no stream');
  t.deepEqual(await stream.since(user(), undefined, 10), { kind: 'events', events: [], more: false }, 'no stream, no cursor: nothing');
});

test('oversized data is REQUEST_TOO_LARGE and nothing is appended', async (t) => {
  const stream = streamOn(connect());
  const u = user();
  const [only] = await appendMany(stream, u, 1);
  const limit = stream.settings.maxDataBytes;
  const exactly = 'x'.repeat(limit - 2); // its JSON is limit bytes
  const tooBig = 'é'.repeat(limit / 2); // fewer characters, more bytes
  const err = await t.throwsAsync(stream.append(u, { type: 'test:big', data: tooBig }), { instanceOf: FlockError });
  t.is(err?.code, 'REQUEST_TOO_LARGE');
  t.is(err?.details?.limit, limit);
  t.is(await codeOf(stream.append(u, { type: 'test:big', data: 'x'.repeat(limit - 1) })), 'REQUEST_TOO_LARGE', 'one byte over');
  t.is(await stream.head(u), only!.id, 'nothing appended');
  t.deepEqual(eventsOf(await stream.since(u, only!.id, 10)), []);
  const fits = await stream.append(u, { type: 'test:big', data: exactly });
  t.is(fits.prev, only!.id, 'exactly the limit fits');
});

test('an invalid type or unserialisable data is REQUEST_INVALID and nothing is appended', async (t) => {
  const stream = streamOn(connect());
  const u = user();
  for (const type of ['', 'Upper', '1abc', 'has space', 'a'.repeat(65), 'é']) {
    t.is(await codeOf(stream.append(u, { type, data: 1 })), 'REQUEST_INVALID', JSON.stringify(type));
  }
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  t.is(await codeOf(stream.append(u, { type: 'ok', data: circular })), 'REQUEST_INVALID', 'circular');
  t.is(await codeOf(stream.append(u, { type: 'ok', data: undefined })), 'REQUEST_INVALID', 'undefined');
  t.is(await codeOf(stream.append(u, { type: 'ok', data: 1n })), 'REQUEST_INVALID', 'bigint');
  t.is(await stream.head(u), null);
  t.is((await stream.append(u, { type: 'a.b:c_d-eF', data: null })).type, 'a.b:c_d-eF', 'every allowed character');
});

test('two nodes appending to one user at once see one sequence', async (t) => {
  const a = streamOn(connect());
  const b = streamOn(connect());
  const u = user();
  const appended = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).append(u, { type: 'test:event', data: { i } })));
  const fromA = eventsOf(await a.since(u, undefined, 1_000));
  const fromB = eventsOf(await b.since(u, undefined, 1_000));
  t.deepEqual(fromA, fromB, 'both nodes read the same sequence');
  t.is(fromA.length, 60);
  t.deepEqual(fromA.map((e) => e.id).sort(), appended.map((e) => e.id).sort(), 'each append is there once');
  for (let i = 1; i < fromA.length; i++) {
    t.is(compareStreamIds(parseStreamId(fromA[i]!.id)!, parseStreamId(fromA[i - 1]!.id)!), 1);
    t.is(fromA[i]!.prev, fromA[i - 1]!.id, 'prev chains across nodes');
  }
  const mid = fromA[29]!.id;
  t.deepEqual(eventsOf(await b.since(u, mid, 1_000)), fromA.slice(30));
});

test('settings are validated', (t) => {
  const client = connect();
  t.throws(() => streamOn(client, { windowMs: 0 }), { message: /windowMs/ });
  t.throws(() => streamOn(client, { maxEvents: 1.5 }), { message: /maxEvents/ });
  t.throws(() => streamOn(client, { windowMs: 10_000, positionTtlMs: 5_000 }), { message: /positionTtlMs/ });
  t.throws(() => streamOn(client, { maxBytes: 16_000 }), { message: /maxBytes must be at least 16512/ }, 'the largest event must fit');
  t.throws(() => createPersonalStream({ redis: client, prefix: 'has space' }), { message: /prefix/ });
});
