// Resumable personal streams: every event addressed to one user
// (notifications, conversation messages and receipts, account and security
// events) is appended to that user's Redis stream, and a client that
// reconnects with the id of the last event it applied gets exactly what it
// missed, or an explicit resync when that is no longer possible.
//
// Keys (prefix "flock" by default):
//   {prefix}:stream:{userId}       the Redis stream; fields type, prev, data,
//                                  off (the stream's byte count before it)
//   {prefix}:stream-meta:{userId}  hash: last (id of the newest event ever
//                                  appended), trimmed (id of the newest event
//                                  ever removed), end (bytes ever appended)
//
// Bounds: the time window, `maxEvents` and `maxBytes`, the bytes of the type
// and data of each kept event plus EVENT_OVERHEAD_BYTES. An event's `off` is
// the running byte count before it, so what the stream holds is end minus the
// oldest kept event's off, whatever was trimmed before: the append script
// trims the oldest events until that is within maxBytes, reading only those
// it removes (usually one), never the whole stream. Events stored before
// `off` existed count as the oldest bytes and go first.
// The stream expires after `windowMs` without appends; the meta hash lives
// `positionTtlMs` (longer), so a client that was caught up when an idle stream
// expired resumes without a resync.
//
// Guarantees of since(userId, lastId):
//  - events: exactly the retained entries with id > lastId, oldest first, each
//    once; with `more`, page on from the last id returned.
//  - resync 'trimmed' whenever any entry with id > lastId was ever removed
//    (by the time window, by maxEvents or maxBytes, or by the whole stream
//    expiring).
//    Trimming is exact and done in one script with the append, which records
//    the newest removed id, so the check is `lastId < trimmed`, not a guess
//    from the first retained entry: a client whose lastId is the very entry
//    that was trimmed last still resumes without a gap or a resync. (Redis 7.0
//    XINFO's max-deleted-entry-id does not help: only XDEL moves it, not
//    XADD/XTRIM trimming; checked on 7.0.15.)
//  - resync 'unknown-id' when lastId is well-formed but this stream never
//    issued it: newer than the newest id, not an entry, or the stream's
//    position was forgotten (Redis data loss, meta expired). A malformed id
//    is FlockError REQUEST_INVALID.
//
// Delivery protocol for the lead (live push plus resume):
//  1. After `const event = await stream.append(userId, { type, data })`, emit
//     `event` (not the input: it is what replay returns, JSON round-tripped)
//     to the user's room on every node.
//  2. Live events for one user appended on different nodes can arrive out of
//     order, and ids are not dense, so a client cannot see a gap from ids
//     alone: each event carries `prev`, the id before it in the stream. The
//     client keeps a cursor (last id applied, in order). An event with
//     id <= cursor is a duplicate: drop it. An event with prev === cursor is
//     next: apply it and move the cursor. Anything else means something is in
//     flight or missed: buffer it and resume from the cursor.
//  3. On (re)connect the socket joins its room first, then the server answers
//     a resume request with since(cursor), paging while `more`; live events
//     that arrive meanwhile are buffered and deduped by the rule above.
//     With that, the client applies every event exactly once, in stream
//     order, or is told to resync (reload state, then take head() as cursor).
import { RedisScript } from '../kernel/redis-script.ts';
import type { Redis } from '../kernel/redis.ts';
import { z } from 'zod';
import { FlockError } from '../kernel/errors.ts';
import { DEFAULT_MAX_DATA_BYTES, EVENT_OVERHEAD_BYTES, EVENT_TYPE, streamEventBytes, type PersonalEvent, type ResumeResult } from './envelope.ts';
import { compareStreamIds, formatStreamId, isMaxStreamId, parseStreamId, type StreamId } from './stream-id.ts';
import { ACTOR_KEY } from '../kernel/ids.ts';

export interface PersonalStreamSettings {
  /** Events older than this are trimmed, and an idle stream expires after it. */
  readonly windowMs: number;
  /** Second bound: at most this many events are kept per user. */
  readonly maxEvents: number;
  /** Third bound: at most this many bytes (type and data of each event, plus EVENT_OVERHEAD_BYTES) are kept per user. */
  readonly maxBytes: number;
  /** How long an expired stream's position (last and trimmed ids) is remembered; at least windowMs. */
  readonly positionTtlMs: number;
  /** Largest event data, as bytes of UTF-8 JSON. */
  readonly maxDataBytes: number;
  /** Largest `limit` since() accepts. */
  readonly maxReplay: number;
}

export const defaultPersonalStreamSettings: PersonalStreamSettings = {
  windowMs: 24 * 60 * 60_000,
  maxEvents: 10_000,
  maxBytes: 8 * 1024 * 1024,
  positionTtlMs: 7 * 24 * 60 * 60_000,
  maxDataBytes: DEFAULT_MAX_DATA_BYTES,
  maxReplay: 1_000,
};

export interface PersonalStreamOptions {
  redis: Redis;
  /** Key prefix shared by the cluster, e.g. "flock". */
  prefix: string;
  settings?: Partial<PersonalStreamSettings>;
}

export interface AppendInput {
  type: string;
  data: unknown;
}

export interface PersonalStream {
  readonly settings: PersonalStreamSettings;
  /** Appends one event and returns it as clients will see it (live and on replay). */
  append(userId: string, event: AppendInput): Promise<PersonalEvent>;
  /** The events after lastId (all retained ones when undefined), at most `limit`, or a resync. */
  since(userId: string, lastId: string | undefined, limit: number): Promise<ResumeResult>;
  /** Id of the newest event, the cursor for a client that has just loaded state; null when none is known. */
  head(userId: string): Promise<string | null>;
}

export function createPersonalStream(options: PersonalStreamOptions): PersonalStream {
  const settings = checkSettings({ ...defaultPersonalStreamSettings, ...options.settings });
  const prefix = checkPrefix(options.prefix);
  const { redis } = options;
  const streamKey = (userId: string) => `${prefix}:stream:${userId}`;
  const metaKey = (userId: string) => `${prefix}:stream-meta:${userId}`;

  return {
    settings,

    async append(userId, { type, data }) {
      checkUserId(userId);
      if (typeof type !== 'string' || !EVENT_TYPE.test(type)) {
        throw new FlockError('REQUEST_INVALID', `event type ${JSON.stringify(type)} must match ${EVENT_TYPE}`, { details: { field: 'type' } });
      }
      let json: string | undefined;
      try {
        json = JSON.stringify(data);
      } catch (err) {
        throw new FlockError('REQUEST_INVALID', 'event data cannot be serialised as JSON', { cause: err, details: { field: 'data' } });
      }
      if (json === undefined) throw new FlockError('REQUEST_INVALID', 'event data cannot be serialised as JSON', { details: { field: 'data' } });
      const bytes = Buffer.byteLength(json);
      if (bytes > settings.maxDataBytes) {
        throw new FlockError('REQUEST_TOO_LARGE', `event data is ${bytes} bytes of JSON; the limit is ${settings.maxDataBytes}`, {
          details: { field: 'data', bytes, limit: settings.maxDataBytes },
        });
      }
      const [id, prev] = await appendScript.run(
        redis,
        [streamKey(userId), metaKey(userId)],
        [type, json, settings.windowMs, settings.maxEvents, settings.positionTtlMs, settings.maxBytes],
      );
      const stored: unknown = JSON.parse(json);
      return { id, prev: prev === '' ? null : prev, type, data: stored, at: atOf(id) };
    },

    async since(userId, lastId, limit) {
      checkUserId(userId);
      if (!Number.isInteger(limit) || limit < 1 || limit > settings.maxReplay) {
        throw new FlockError('REQUEST_INVALID', `limit must be an integer from 1 to ${settings.maxReplay}`, { details: { field: 'limit' } });
      }
      let after: StreamId | undefined;
      if (lastId !== undefined) {
        after = typeof lastId === 'string' ? parseStreamId(lastId) : undefined;
        if (!after) throw new FlockError('REQUEST_INVALID', 'lastId is not a stream id ("<ms>-<seq>")', { details: { field: 'lastId' } });
        if (isMaxStreamId(after)) return { kind: 'resync', reason: 'unknown-id' };
      }
      const stream = streamKey(userId);
      const multi = redis
        .multi()
        .hmget(metaKey(userId), 'last', 'trimmed')
        .exists(stream)
        .xrange(stream, after ? `(${formatStreamId(after)}` : '-', '+', 'COUNT', limit + 1);
      if (after) multi.xrange(stream, formatStreamId(after), formatStreamId(after));
      const replies = execReplies(await multi.exec());
      const [lastText, trimmedText] = metaReply.parse(replies[0]);
      const exists = replies[1] === 1;
      const entries = rangeReply.parse(replies[2]).map(toEvent);
      const page = { kind: 'events' as const, events: entries.slice(0, limit), more: entries.length > limit };
      if (!after) return page;

      const last = lastText === null ? undefined : parseStreamId(lastText);
      if (!last || compareStreamIds(after, last) > 0) return { kind: 'resync', reason: 'unknown-id' };
      // An expired stream lost everything up to its last id.
      const removedText = exists ? trimmedText : lastText;
      const trimmed = removedText === null ? undefined : parseStreamId(removedText);
      if (trimmed && compareStreamIds(after, trimmed) < 0) return { kind: 'resync', reason: 'trimmed' };
      const issued =
        rangeReply.parse(replies[3]).length > 0 ||
        (trimmed !== undefined && compareStreamIds(after, trimmed) === 0) ||
        (trimmed === undefined && after.ms === 0n && after.seq === 0n);
      if (!issued) return { kind: 'resync', reason: 'unknown-id' };
      return page;
    },

    async head(userId) {
      checkUserId(userId);
      return redis.hget(metaKey(userId), 'last');
    },
  };
}

// ---- helpers ----

const appendReply = z.tuple([z.string().regex(/^\d+-\d+$/), z.string()]);
const metaReply = z.tuple([z.string().nullable(), z.string().nullable()]);
const rangeReply = z.array(z.tuple([z.string(), z.array(z.string())]));
const storedEvent = z.object({ type: z.string(), prev: z.string(), data: z.string() });

function toEvent([id, fields]: [string, string[]]): PersonalEvent {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
  const parsed = storedEvent.safeParse(record);
  if (!parsed.success) throw new FlockError('SERVER_INTERNAL', `stream entry ${id} is not an event`);
  let data: unknown;
  try {
    data = JSON.parse(parsed.data.data);
  } catch (err) {
    throw new FlockError('SERVER_INTERNAL', `stream entry ${id} holds invalid JSON`, { cause: err });
  }
  return { id, prev: parsed.data.prev === '' ? null : parsed.data.prev, type: parsed.data.type, data, at: atOf(id) };
}

function atOf(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

function execReplies(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new FlockError('SERVICE_UNREACHABLE', 'the Redis transaction was aborted');
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

function checkUserId(userId: string): void {
  if (typeof userId !== 'string' || !ACTOR_KEY.test(userId)) {
    throw new FlockError('REQUEST_INVALID', `user id ${JSON.stringify(userId)} must match ${ACTOR_KEY}`, { details: { field: 'userId' } });
  }
}

function checkPrefix(prefix: string): string {
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(prefix)) throw new FlockError('CONFIG_INVALID', `stream key prefix ${JSON.stringify(prefix)} is not valid`);
  return prefix;
}

function checkSettings(s: PersonalStreamSettings): PersonalStreamSettings {
  const bad: string[] = [];
  const intIn = (name: keyof PersonalStreamSettings, min: number, max: number) => {
    if (!Number.isInteger(s[name]) || s[name] < min || s[name] > max) bad.push(`${name} must be an integer from ${min} to ${max}`);
  };
  intIn('windowMs', 100, 365 * 24 * 60 * 60_000);
  intIn('maxEvents', 1, 1_000_000);
  intIn('maxBytes', 1, 1024 * 1024 * 1024);
  intIn('positionTtlMs', 100, 10 * 365 * 24 * 60 * 60_000);
  intIn('maxDataBytes', 2, 1024 * 1024);
  intIn('maxReplay', 1, 100_000);
  if (s.positionTtlMs < s.windowMs) bad.push('positionTtlMs must be at least windowMs');
  // The largest event must fit, or appending it would trim the stream to nothing.
  const largest = streamEventBytes(64, s.maxDataBytes);
  if (s.maxBytes < largest) bad.push(`maxBytes must be at least ${largest} (the largest event)`);
  if (bad.length > 0) throw new FlockError('CONFIG_INVALID', `personal stream settings: ${bad.join('; ')}`);
  return Object.freeze({ ...s });
}

// Appends, trims exactly (time window, then count, then bytes), records the
// newest removed id, the newest id and the running byte count, and refreshes
// both TTLs, atomically.
// Ids come from the Redis clock; after an idle stream expired, numbering
// continues after the remembered last id even if that clock went back.
// KEYS: stream, meta. ARGV: type, data, windowMs, maxEvents, positionTtlMs, maxBytes.
// Returns {id, prev} with prev '' when unknown.
const APPEND = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = redis.call('HGET', KEYS[2], 'last')
local total = tonumber(redis.call('HGET', KEYS[2], 'end') or '0')
local idArg = '*'
if last and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[2], 'trimmed', last)
  local dash = string.find(last, '-', 1, true)
  local ms = tonumber(string.sub(last, 1, dash - 1))
  if ms >= now then idArg = string.format('%d-%d', ms, tonumber(string.sub(last, dash + 1)) + 1) end
end
local id = redis.call('XADD', KEYS[1], idArg, 'type', ARGV[1], 'prev', last or '', 'data', ARGV[2], 'off', string.format('%d', total))
total = total + #ARGV[1] + #ARGV[2] + ${EVENT_OVERHEAD_BYTES}
local trimmed = false
local cutoff = now - tonumber(ARGV[3])
if cutoff > 0 then
  local older = redis.call('XREVRANGE', KEYS[1], '(' .. string.format('%d', cutoff) .. '-0', '-', 'COUNT', 1)
  if #older > 0 then
    trimmed = older[1][1]
    redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', cutoff))
  end
end
local max = tonumber(ARGV[4])
local len = redis.call('XLEN', KEYS[1])
if len > max then
  local excess = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - max)
  trimmed = excess[#excess][1]
  redis.call('XTRIM', KEYS[1], 'MAXLEN', max)
end
local floor = total - tonumber(ARGV[6])
if floor > 0 then
  local from = '-'
  local keep = false
  local cut = false
  -- An append usually pushes out one or two events: read a few first, then more at a time.
  local count = 4
  while not keep do
    local batch = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', count)
    for i = 1, #batch do
      local fields = batch[i][2]
      local off = 0
      for j = 1, #fields - 1, 2 do
        if fields[j] == 'off' then off = tonumber(fields[j + 1]) end
      end
      if off >= floor then
        keep = batch[i][1]
        break
      end
      cut = batch[i][1]
    end
    if #batch < count then break end
    from = '(' .. batch[#batch][1]
    count = 64
  end
  -- keep is always found: the newest event alone fits (checkSettings).
  if keep and cut then
    trimmed = cut
    redis.call('XTRIM', KEYS[1], 'MINID', keep)
  end
end
if trimmed then redis.call('HSET', KEYS[2], 'trimmed', trimmed) end
redis.call('HSET', KEYS[2], 'last', id, 'end', string.format('%d', total))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {id, last or ''}
`;

const appendScript = new RedisScript('personal stream append', APPEND, appendReply);
