package registry

// The Lua scripts behind Redis. Every write reads Redis's own clock (TIME),
// so no server's clock ever enters an expiry; only the TTL, as a duration,
// is sent. Keys: KEYS[1] the instances sorted set, KEYS[2] the data hash,
// KEYS[3] the version counter, all under the service's hash tag. ARGV always
// starts with the channel, "1" when the channel is a shard channel
// (SPUBLISH) or "0", and the TTL in ms.
//
// A script that changes membership bumps the version and publishes one
// message, a JSON object:
//
//	{"v":version,"t":now,"x":earliest,"c":[change,...]}
//
// v is the service's version after the change, t Redis's clock in ms, x the
// earliest expiry (ms on Redis's clock) among the members left, -1 when none.
// Each change is ["+",addr,expiry,data] (added), ["~",addr,expiry,data] (data
// changed) or ["-",addr] (deregistered or expired). A message without "c" is
// a tick: the check script found nothing to change and tells every watcher
// the version and the earliest expiry it saw.
//
// A version counter that did not exist starts at t (a new epoch), so versions
// keep growing across a service that emptied and came back, and a watcher can
// tell "already seen" (v <= its version) from "missed some" (v > its
// version+1) without a reset ever looking like a continuation.

// luaPrelude is shared by the scripts.
//
//   - now() reads Redis's clock in ms.
//   - prune(t, changes) removes members whose expiry is not after t and adds
//     a removal per member to changes.
//   - announce(t, changes, always) bumps the version when changes is not
//     empty and publishes; with no change it publishes a tick only when
//     always is set. It returns the version and the earliest expiry, or
//     nothing when it published nothing.
//   - keepKeys(ttl) makes the three keys outlive every member: a heartbeat
//     with TTL ttl leaves at least ttl on them, so an abandoned service's
//     keys disappear by themselves, without one PEXPIRE per heartbeat.
const luaPrelude = `
local channel, sharded, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function prune(t, changes)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', t)
  local n = #expired
  if n == 0 then
    return
  end
  for i = 1, n, 500 do
    redis.call('HDEL', KEYS[2], unpack(expired, i, math.min(i + 499, n)))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
  for i = 1, n do
    changes[#changes + 1] = {'-', expired[i]}
  end
end
local function earliest()
  local e = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #e == 0 then
    return -1
  end
  return tonumber(e[2])
end
local function announce(t, changes, always)
  local v
  if #changes > 0 then
    v = redis.call('INCR', KEYS[3])
    if v == 1 then
      v = t
      redis.call('SET', KEYS[3], v)
    end
    redis.call('PEXPIRE', KEYS[3], 2 * ttl)
  elseif not always then
    return nil, nil
  else
    v = tonumber(redis.call('GET', KEYS[3]) or '0')
  end
  local x = earliest()
  local msg = {v = v, t = t, x = x}
  if #changes > 0 then
    msg.c = changes
  end
  local payload = cjson.encode(msg)
  if sharded == '1' then
    local r = redis.pcall('SPUBLISH', channel, payload)
    if type(r) == 'table' and r.err then
      redis.call('PUBLISH', channel, payload) -- Redis 6: no shard channels
    end
  else
    redis.call('PUBLISH', channel, payload)
  end
  return v, x
end
local function keepKeys()
  if redis.call('PTTL', KEYS[1]) < ttl then
    for i = 1, 3 do
      redis.call('PEXPIRE', KEYS[i], 2 * ttl)
    end
  end
end
`

// registerScript backs Register ("r") and every heartbeat ("h").
// ARGV[4..6] = addr, data, mode.
//
// It prunes, then ZADDs the member at now+TTL. A new member (registered, or
// lost by Redis) gets its data written and announced as "+". Only Register
// compares the stored data and announces "~" when it differs: a heartbeat
// sends the data it was registered with, so when its member exists there is
// nothing to compare, and a heartbeat that changes nothing costs TIME,
// ZRANGEBYSCORE, ZADD and PTTL and publishes nothing.
//
// Returns putUnchanged, putAdded or putChanged.
const registerScript = luaPrelude + `
local addr, data, mode = ARGV[4], ARGV[5], ARGV[6]
local t = now()
local changes = {}
prune(t, changes)
local exp = t + ttl
local result = 0
if redis.call('ZADD', KEYS[1], exp, addr) == 1 then
  redis.call('HSET', KEYS[2], addr, data)
  changes[#changes + 1] = {'+', addr, exp, data}
  result = 1
elseif mode == 'r' and redis.call('HGET', KEYS[2], addr) ~= data then
  redis.call('HSET', KEYS[2], addr, data)
  changes[#changes + 1] = {'~', addr, exp, data}
  result = 2
end
keepKeys()
announce(t, changes, false)
return result
`

// deregisterScript removes ARGV[4] (and prunes while there). When the
// service is left empty its keys go, version included: the next change
// starts a new epoch. Returns 1 when the member was there, else 0.
const deregisterScript = luaPrelude + `
local t = now()
local changes = {}
local removed = redis.call('ZREM', KEYS[1], ARGV[4])
if removed == 1 then
  redis.call('HDEL', KEYS[2], ARGV[4])
  changes[1] = {'-', ARGV[4]}
end
prune(t, changes)
announce(t, changes, false)
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
end
return removed
`

// lookupScript prunes (announcing what expired) and reads the whole service:
// one ZRANGE and one HGETALL, whatever the number of members.
// Returns {version, now, {addr1, score1, ...}, {addr1, data1, ...}}.
const lookupScript = luaPrelude + `
local t = now()
local changes = {}
prune(t, changes)
local v = announce(t, changes, false) or tonumber(redis.call('GET', KEYS[3]) or '0')
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local data = {}
if #live > 0 then
  data = redis.call('HGETALL', KEYS[2])
end
return {v, t, live, data}
`

// checkScript is a watcher's expiry check, run when the earliest member it
// knows of is due to expire: it prunes and always publishes (a delta when
// something expired, else a tick), so one check serves every watcher of the
// service. Returns {version, now, earliest expiry or -1}.
const checkScript = luaPrelude + `
local t = now()
local changes = {}
prune(t, changes)
local v, x = announce(t, changes, true)
return {v, t, x}
`
