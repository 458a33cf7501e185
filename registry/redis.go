package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Registry backed by Redis (single node, Sentinel or Cluster).
//
// # Data layout
//
// Each service has two keys and one channel, all sharing the Redis Cluster
// hash tag {prefix:service}, so one service lives on one slot and its scripts
// run atomically there. For prefix "seedrpc" and service "Calc":
//
//	{seedrpc:Calc}:instances  sorted set: member = Addr, score = expiry time in
//	                          ms on Redis's clock (TIME)
//	{seedrpc:Calc}:data       hash: Addr -> JSON {"w":weight,"m":{meta}}
//	                          (encoding/json sorts meta keys, so the encoding
//	                          of an unchanged instance never changes)
//	{seedrpc:Calc}:changes    pub/sub channel: one message per membership change
//
// The key is built from the exact service name, so "Arith" never sees
// "Arith2". Both keys carry PEXPIREAT one TTL past their latest member, so an
// abandoned service leaves nothing behind.
//
// # Scripts
//
// Every write is one Lua script that reads Redis's own clock with TIME, so
// no server's clock ever enters an expiry; only the TTL as a duration is sent.
// Each script first prunes members whose score is not after now.
//
//   - register (Register and every heartbeat): prune, ZADD now+TTL, HSET the
//     data, PUBLISH only when membership changed (a new member, changed data
//     or pruned members) and return what changed. A heartbeat that changes
//     nothing publishes nothing; one that finds its member gone (Redis
//     restarted empty) re-adds it and publishes.
//   - deregister: ZREM + HDEL, PUBLISH when a member was removed.
//   - lookup: prune (PUBLISH when something expired), then return the live
//     members with their data and the time until the earliest one expires.
//
// # Timeouts
//
// Every call to Redis is bounded by WithOpTimeout (default 2s) and by the
// caller's ctx. go-redis honours context deadlines only when the client was
// created with ContextTimeoutEnabled: true; set it, or a blackholed Redis
// holds each call for the client's ReadTimeout instead.
//
// Redis does not close the client; its caller owns it.
type Redis struct {
	rdb     redis.UniversalClient
	opts    options
	beats   heartbeats
	watches watchers
	// isClosed is set by Close; it makes the public methods return ErrClosed.
	isClosed atomic.Bool

	register   *redis.Script
	deregister *redis.Script
	lookup     *redis.Script
}

// NewRedis returns a registry that stores instances through rdb. Close it when
// done; rdb stays open.
func NewRedis(rdb redis.UniversalClient, opts ...Option) *Redis {
	return &Redis{
		rdb:        rdb,
		opts:       newOptions(opts),
		register:   redis.NewScript(registerScript),
		deregister: redis.NewScript(deregisterScript),
		lookup:     redis.NewScript(lookupScript),
	}
}

// luaPrelude is shared by the scripts: now() reads Redis's clock in ms, and
// prune(zkey, hkey, now) drops members whose score is not after now and
// returns how many it dropped.
const luaPrelude = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function prune(zkey, hkey, now)
  local expired = redis.call('ZRANGEBYSCORE', zkey, '-inf', now)
  local n = #expired
  for i = 1, n, 500 do
    redis.call('HDEL', hkey, unpack(expired, i, math.min(i + 499, n)))
  end
  if n > 0 then
    redis.call('ZREMRANGEBYSCORE', zkey, '-inf', now)
  end
  return n
end
`

// registerScript: KEYS = instances, data; ARGV = addr, data, ttl ms, channel.
// Returns 0 when nothing changed (nothing published), 1 when the member was
// added (new, or lost by Redis), 2 when its data changed or expired members
// were pruned; it publishes for 1 and 2.
const registerScript = luaPrelude + `
local t = now()
local ttl = tonumber(ARGV[3])
local result = 0
if prune(KEYS[1], KEYS[2], t) > 0 then
  result = 2
end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  result = 2
end
if redis.call('ZADD', KEYS[1], t + ttl, ARGV[1]) == 1 then
  result = 1
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local at = tonumber(last[2]) + ttl
redis.call('PEXPIREAT', KEYS[1], at)
redis.call('PEXPIREAT', KEYS[2], at)
if result > 0 then
  redis.call('PUBLISH', ARGV[4], ARGV[1])
end
return result
`

// deregisterScript: KEYS = instances, data; ARGV = addr, channel.
// Returns 1 when it removed (and published), else 0.
const deregisterScript = `
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
end
if removed == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[1])
end
return removed
`

// lookupScript: KEYS = instances, data; ARGV = channel.
// Returns {ms until the earliest live member expires or -1, addr1, data1, ...}.
const lookupScript = luaPrelude + `
local t = now()
if prune(KEYS[1], KEYS[2], t) > 0 then
  redis.call('PUBLISH', ARGV[1], '')
end
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {-1}
if #live == 0 then
  return out
end
out[1] = tonumber(live[2]) - t
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = redis.call('HGET', KEYS[2], live[i]) or ''
end
return out
`

// keys returns the instances key, the data key and the channel of service.
func (r *Redis) keys(service string) (instances, data, channel string) {
	tag := "{" + r.opts.prefix + ":" + service + "}"
	return tag + ":instances", tag + ":data", tag + ":changes"
}

// record is the stored data of one instance; Service and Addr are in the key
// and the member.
type record struct {
	Weight int               `json:"w,omitempty"`
	Meta   map[string]string `json:"m,omitempty"`
}

func (r *Redis) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.opts.opTimeout)
}

// Register writes inst and starts its heartbeat. If the write fails, the
// error is returned and no heartbeat is started.
func (r *Redis) Register(ctx context.Context, inst Instance) error {
	if err := validate(inst); err != nil {
		return err
	}
	if r.closed() {
		return ErrClosed
	}
	data, err := json.Marshal(record{Weight: inst.Weight, Meta: inst.Meta})
	if err != nil {
		return fmt.Errorf("registry: encode %s %s: %w", inst.Service, inst.Addr, err)
	}
	if _, err := r.put(ctx, inst, data); err != nil {
		return err
	}
	k := instanceKey{inst.Service, inst.Addr}
	return r.beats.start(k, r.opts.heartbeat, func(ctx context.Context) {
		res, err := r.put(ctx, inst, data)
		switch {
		case ctx.Err() != nil: // stopped
		case err != nil:
			r.opts.logger.Warn("registry: heartbeat failed", "service", inst.Service, "addr", inst.Addr, "err", err)
		case res == putAdded:
			r.opts.logger.Info("registry: heartbeat re-added instance", "service", inst.Service, "addr", inst.Addr)
		}
	})
}

// Results of the register script.
const (
	putUnchanged = 0 // refreshed only; nothing published
	putAdded     = 1 // the member was not there (new, or Redis lost it)
	putChanged   = 2 // its data changed or expired members were pruned
)

// put runs the register script once and returns its result (putUnchanged,
// putAdded or putChanged).
func (r *Redis) put(ctx context.Context, inst Instance, data []byte) (int64, error) {
	instances, dataKey, channel := r.keys(inst.Service)
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	n, err := r.register.Run(ctx, r.rdb, []string{instances, dataKey},
		inst.Addr, data, r.opts.ttl.Milliseconds(), channel).Int64()
	if err != nil {
		return 0, fmt.Errorf("registry: register %s %s: %w", inst.Service, inst.Addr, err)
	}
	return n, nil
}

// Deregister stops inst's heartbeat and removes it at once.
func (r *Redis) Deregister(ctx context.Context, inst Instance) error {
	if err := validate(inst); err != nil {
		return err
	}
	// Stop first, so no in-flight heartbeat re-adds what we remove.
	r.beats.stop(instanceKey{inst.Service, inst.Addr})
	if r.closed() {
		return ErrClosed
	}
	instances, dataKey, channel := r.keys(inst.Service)
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	if err := r.deregister.Run(ctx, r.rdb, []string{instances, dataKey}, inst.Addr, channel).Err(); err != nil {
		return fmt.Errorf("registry: deregister %s %s: %w", inst.Service, inst.Addr, err)
	}
	return nil
}

// Lookup returns the live instances of service, sorted by Addr.
func (r *Redis) Lookup(ctx context.Context, service string) ([]Instance, error) {
	if err := validateService(service); err != nil {
		return nil, err
	}
	if r.closed() {
		return nil, ErrClosed
	}
	insts, _, err := r.list(ctx, service)
	return insts, err
}

// list runs the lookup script; untilExpiry is the time until the earliest live
// instance expires on Redis's clock, or -1 when there is none.
func (r *Redis) list(ctx context.Context, service string) (insts []Instance, untilExpiry time.Duration, err error) {
	instances, dataKey, channel := r.keys(service)
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	vals, err := r.lookup.Run(ctx, r.rdb, []string{instances, dataKey}, channel).Slice()
	if err != nil {
		return nil, 0, fmt.Errorf("registry: lookup %s: %w", service, err)
	}
	if len(vals) == 0 || len(vals)%2 != 1 {
		return nil, 0, fmt.Errorf("registry: lookup %s: unexpected reply of %d values", service, len(vals))
	}
	ms, ok := vals[0].(int64)
	if !ok {
		return nil, 0, fmt.Errorf("registry: lookup %s: unexpected expiry %T", service, vals[0])
	}
	untilExpiry = -1
	if ms >= 0 {
		untilExpiry = time.Duration(ms) * time.Millisecond
	}
	insts = make([]Instance, 0, (len(vals)-1)/2)
	for i := 1; i < len(vals); i += 2 {
		addr, _ := vals[i].(string)
		data, _ := vals[i+1].(string)
		var rec record
		if data != "" {
			if err := json.Unmarshal([]byte(data), &rec); err != nil {
				return nil, 0, fmt.Errorf("registry: lookup %s: decode %s: %w", service, addr, err)
			}
		}
		insts = append(insts, Instance{Service: service, Addr: addr, Weight: rec.Weight, Meta: rec.Meta}.clone())
	}
	sortInstances(insts)
	return insts, untilExpiry, nil
}

// Close stops every heartbeat and watcher and waits for them. It does not
// deregister: the instances expire after one TTL, as if the process had
// crashed. It does not close the Redis client. A call to Redis in flight in
// a heartbeat or watcher is not interrupted, so Close can take up to one op
// timeout (WithOpTimeout) when Redis is unreachable. It is idempotent and
// returns nil.
func (r *Redis) Close() error {
	r.isClosed.Store(true)
	r.beats.close()
	r.watches.close()
	return nil
}

func (r *Redis) closed() bool { return r.isClosed.Load() }

// stopHeartbeat stops k's heartbeat without removing it, as a crash would.
func (r *Redis) stopHeartbeat(service, addr string) bool {
	return r.beats.stop(instanceKey{service, addr})
}

// errUnresponsive breaks a subscription whose PING went unanswered.
var errUnresponsive = errors.New("registry: subscription unresponsive")
