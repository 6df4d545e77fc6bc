// The Lua scripts behind presence. Each runs atomically in Redis, so every
// decision ("is anyone else still connected?", "did the user just go
// offline?") is made and acted on in one step, whichever node runs it.
//
// Data (see presence.ts for the key names):
//   lease     string token, PX leaseMs: the node instance is alive
//   registry  zset instance -> time of its last heartbeat (Redis clock)
//   nodeUsers set of user ids the instance has sockets for
//   user      hash: n:<instance> = 1 per instance with sockets for the user,
//             online = '1' | '0' (the state last published), seen = ms
// A user is online when any n:<instance> has a live lease; `online` only
// decides whether a transition is still to be published, which makes every
// transition published once even when several nodes observe it.

const PRELUDE = `
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function anyLive(userKey, leasePrefix)
  local fields = redis.call('HKEYS', userKey)
  for _, f in ipairs(fields) do
    if string.sub(f, 1, 2) == 'n:' and redis.call('EXISTS', leasePrefix .. string.sub(f, 3)) == 1 then return true end
  end
  return false
end
local function seenOf(userKey)
  return tonumber(redis.call('HGET', userKey, 'seen') or '')
end
local function fmt(ms)
  if ms then return string.format('%d', ms) end
  return ''
end
local function publish(channel, userId, online, seen)
  local lastSeen = 'null'
  if seen then lastSeen = string.format('%d', seen) end
  local onlineText = 'false'
  if online then onlineText = 'true' end
  redis.call('PUBLISH', channel, '{"userId":' .. cjson.encode(userId) .. ',"online":' .. onlineText .. ',"lastSeen":' .. lastSeen .. '}')
end
`;

/**
 * Registers (ARGV[5] = '0') or renews (ARGV[5] = '1': only while the lease is
 * still ours) the instance lease, and records the heartbeat in the registry.
 * KEYS: lease, registry, nodeUsers. ARGV: token, leaseMs, instance, retentionMs, renewOnly.
 * Returns 1, or 0 when a renewal found the lease lapsed or taken.
 */
export const HEARTBEAT = `${PRELUDE}
if ARGV[5] == '1' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], nowMs(), ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return 1
`;

/**
 * The instance has a socket for the user. Idempotent (reconciliation re-runs it).
 * KEYS: user, nodeUsers. ARGV: instance, userId, channel, retentionMs.
 * Returns {1 if the user went online, lastSeen or ''}.
 */
export const CONNECT = `${PRELUDE}
redis.call('HSET', KEYS[1], 'n:' .. ARGV[1], '1')
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local seen = seenOf(KEYS[1])
if redis.call('HGET', KEYS[1], 'online') ~= '1' then
  redis.call('HSET', KEYS[1], 'online', '1')
  publish(ARGV[3], ARGV[2], true, seen)
  return {1, fmt(seen)}
end
return {0, fmt(seen)}
`;

/**
 * The instance has no socket left for the user. Idempotent.
 * KEYS: user, nodeUsers. ARGV: instance, userId, channel, retentionMs, leasePrefix.
 * Returns {1 if the user went offline, 1 if the user is offline, lastSeen or ''}.
 */
export const DISCONNECT = `${PRELUDE}
local removed = redis.call('HDEL', KEYS[1], 'n:' .. ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
if anyLive(KEYS[1], ARGV[5]) then return {0, 0, ''} end
local published = redis.call('HGET', KEYS[1], 'online') == '1'
if removed == 0 and not published then return {0, 1, fmt(seenOf(KEYS[1]))} end
local seen = math.max(nowMs(), seenOf(KEYS[1]) or 0)
redis.call('HSET', KEYS[1], 'seen', fmt(seen))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if published then
  redis.call('HSET', KEYS[1], 'online', '0')
  publish(ARGV[3], ARGV[2], false, seen)
  return {1, 1, fmt(seen)}
end
return {0, 1, fmt(seen)}
`;

/**
 * Instances in the registry, other than ARGV[2], whose heartbeat is older than
 * ARGV[3] ms and whose lease is gone: the ones to sweep.
 * KEYS: registry. ARGV: leasePrefix, self, leaseMs, max.
 */
export const DEAD = `${PRELUDE}
local candidates = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', nowMs() - tonumber(ARGV[3]), 'LIMIT', 0, tonumber(ARGV[4]))
local dead = {}
for _, inst in ipairs(candidates) do
  if inst ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. inst) == 0 then table.insert(dead, inst) end
end
return dead
`;

/**
 * Takes up to ARGV[5] users of a dead instance off its books; users with no
 * live instance left go offline, last seen at its last heartbeat. Safe to run
 * from several nodes at once and again after a crash: users are popped, and
 * a transition is published only when `online` flips. Stops if the instance
 * came back (its lease exists again).
 * KEYS: registry, lease, nodeUsers of the dead instance.
 * ARGV: instance, userKeyPrefix, leasePrefix, channel, batch, retentionMs.
 * Returns the number of users left to sweep, or -1 when the instance is alive.
 */
export const SWEEP = `${PRELUDE}
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local died = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '') or nowMs()
local users = redis.call('SPOP', KEYS[3], tonumber(ARGV[5]))
for _, userId in ipairs(users) do
  local key = ARGV[2] .. userId
  if redis.call('HDEL', key, 'n:' .. ARGV[1]) == 1 and not anyLive(key, ARGV[3]) then
    local seen = math.max(died, seenOf(key) or 0)
    redis.call('HSET', key, 'seen', fmt(seen))
    redis.call('PEXPIRE', key, ARGV[6])
    if redis.call('HGET', key, 'online') == '1' then
      redis.call('HSET', key, 'online', '0')
      publish(ARGV[4], userId, false, seen)
    end
  end
end
local left = redis.call('SCARD', KEYS[3])
if left == 0 then redis.call('ZREM', KEYS[1], ARGV[1]) end
return left
`;

/**
 * Leaves the cluster after a clean stop: only when no user is left on the
 * instance's books, otherwise its lease lapses and a sweep takes over.
 * KEYS: lease, registry, nodeUsers. ARGV: token, instance. Returns 1 when released.
 */
export const RELEASE = `
if redis.call('SCARD', KEYS[3]) > 0 then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`;

/**
 * Presence of each user in KEYS: online when any of their instances has a
 * live lease; last seen is the latest of the stored time and the last
 * heartbeat of any dead instance not swept yet.
 * KEYS: user hashes. ARGV: leasePrefix, registry key.
 * Returns {online 0|1, lastSeen or ''} per key.
 */
export const STATUS = `${PRELUDE}
local out = {}
for i, key in ipairs(KEYS) do
  local h = redis.call('HGETALL', key)
  local online = 0
  local seen = 0
  for j = 1, #h, 2 do
    local f = h[j]
    if f == 'seen' then
      seen = math.max(seen, tonumber(h[j + 1]) or 0)
    elseif string.sub(f, 1, 2) == 'n:' then
      local inst = string.sub(f, 3)
      if redis.call('EXISTS', ARGV[1] .. inst) == 1 then
        online = 1
      else
        local beat = tonumber(redis.call('ZSCORE', ARGV[2], inst) or '')
        if beat then seen = math.max(seen, beat) end
      end
    end
  end
  if seen > 0 then out[i] = {online, fmt(seen)} else out[i] = {online, ''} end
end
return out
`;
