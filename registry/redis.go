package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Registry backed by Redis (single node, Sentinel or Cluster).
//
// # Data layout
//
// Each service has three keys and one channel, all sharing the Redis Cluster
// hash tag {prefix:service}, so one service lives on one slot and its scripts
// run atomically there. For prefix "seedrpc" and service "Calc":
//
//	{seedrpc:Calc}:instances  sorted set: member = Addr, score = expiry time in
//	                          ms on Redis's clock (TIME)
//	{seedrpc:Calc}:data       hash: Addr -> JSON {"w":weight,"m":{meta}}
//	                          (encoding/json sorts meta keys, so the encoding
//	                          of an unchanged instance never changes)
//	{seedrpc:Calc}:version    counter: bumped by every published change
//	{seedrpc:Calc}:changes    pub/sub channel (a shard channel on Cluster):
//	                          one message per change, carrying the change
//
// The key is built from the exact service name, so "Arith" never sees
// "Arith2". The keys expire by themselves at least one TTL after the newest
// heartbeat, so an abandoned service leaves nothing behind.
//
// # Scripts and messages
//
// Every write is one Lua script (see redis_scripts.go) that reads Redis's
// own clock. Register and each heartbeat prune expired members, refresh
// their own, and publish only when membership or data changed; the message
// carries the change itself (added, updated or removed member with its
// data), the service's new version and its earliest expiry. A heartbeat that
// changes nothing publishes nothing and costs four commands inside the
// script. Reading a service is one ZRANGE and one HGETALL.
//
// # Watching
//
// A registry holds one pub/sub connection for all its watches (one per
// Cluster node holding watched services), subscribing and unsubscribing
// channels as watches come and go. Watchers apply the changes they receive
// and read a service in full only when a version is missing (a gap), after
// the subscription broke, and every WithResync. Nobody announces an expiry by
// itself: heartbeats prune their service's expired members, and a watcher
// whose earliest known member is due to expire runs a small check that
// prunes and publishes, whose answer every watcher of the service receives,
// so one check per service serves them all.
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
	hub     *hub
	syncs   syncTimes
	// isClosed is set by Close; it makes the public methods return ErrClosed.
	isClosed atomic.Bool

	register   *redis.Script
	deregister *redis.Script
	lookup     *redis.Script
	check      *redis.Script
}

// NewRedis returns a registry that stores instances through rdb. Close it when
// done; rdb stays open.
//
// On a *redis.ClusterClient, changes travel on shard channels (SPUBLISH,
// SSUBSCRIBE) so each message stays on the node that owns the service; on
// Redis 6, which has none, the registry falls back to plain pub/sub by
// itself.
func NewRedis(rdb redis.UniversalClient, opts ...Option) *Redis {
	r := &Redis{
		rdb:        rdb,
		opts:       newOptions(opts),
		register:   redis.NewScript(registerScript),
		deregister: redis.NewScript(deregisterScript),
		lookup:     redis.NewScript(lookupScript),
		check:      redis.NewScript(checkScript),
	}
	_, cluster := rdb.(*redis.ClusterClient)
	sharded := cluster && r.opts.pubsub != pubsubPlain
	r.hub = newHub(r, sharded)
	return r
}

// serviceKeys are the Redis names of one service.
type serviceKeys struct {
	instances, data, version, channel string
}

// keys returns the keys and channel of service.
func (r *Redis) keys(service string) serviceKeys {
	tag := "{" + r.opts.prefix + ":" + service + "}"
	return serviceKeys{
		instances: tag + ":instances",
		data:      tag + ":data",
		version:   tag + ":version",
		channel:   tag + ":changes",
	}
}

// run runs script for service with the common arguments (channel, shard
// flag, TTL) followed by args, bounded by the op timeout.
func (r *Redis) run(ctx context.Context, script *redis.Script, service string, args ...any) *redis.Cmd {
	k := r.keys(service)
	ctx, cancel := context.WithTimeout(ctx, r.opts.opTimeout)
	defer cancel()
	sharded := "0"
	if r.hub.shardedPublish() {
		sharded = "1"
	}
	all := append([]any{k.channel, sharded, r.opts.ttl.Milliseconds()}, args...)
	return script.Run(ctx, r.rdb, []string{k.instances, k.data, k.version}, all...)
}

// record is the stored data of one instance; Service and Addr are in the key
// and the member.
type record struct {
	Weight int               `json:"w,omitempty"`
	Meta   map[string]string `json:"m,omitempty"`
}

// decodeRecord builds the Instance stored as data (empty data is a bare
// instance).
func decodeRecord(service, addr, data string) (Instance, error) {
	var rec record
	if data != "" {
		if err := json.Unmarshal([]byte(data), &rec); err != nil {
			return Instance{}, fmt.Errorf("decode %s: %w", addr, err)
		}
	}
	return Instance{Service: service, Addr: addr, Weight: rec.Weight, Meta: rec.Meta}.clone(), nil
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
	if _, err := r.put(ctx, inst, data, "r"); err != nil {
		return err
	}
	k := instanceKey{inst.Service, inst.Addr}
	return r.beats.start(k, r.opts.heartbeat, func(ctx context.Context) {
		res, err := r.put(ctx, inst, data, "h")
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
	putChanged   = 2 // its data changed (Register only)
)

// put runs the register script once in mode "r" (Register) or "h"
// (heartbeat) and returns its result.
func (r *Redis) put(ctx context.Context, inst Instance, data []byte, mode string) (int64, error) {
	n, err := r.run(ctx, r.register, inst.Service, inst.Addr, data, mode).Int64()
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
	if err := r.run(ctx, r.deregister, inst.Service, inst.Addr).Err(); err != nil {
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
	s, err := r.read(ctx, service)
	return s.insts, err
}

// snapshot is a full read of one service.
type snapshot struct {
	insts   []Instance // sorted by Addr
	version int64      // 0 when the service has no version (empty)
	now     int64      // Redis's clock, ms
	expiry  int64      // earliest expiry, ms on Redis's clock; -1 when empty
}

// read runs the lookup script: a full read of service.
func (r *Redis) read(ctx context.Context, service string) (snapshot, error) {
	vals, err := r.run(ctx, r.lookup, service).Slice()
	if err != nil {
		return snapshot{}, fmt.Errorf("registry: lookup %s: %w", service, err)
	}
	s, err := parseSnapshot(service, vals)
	if err != nil {
		return snapshot{}, fmt.Errorf("registry: lookup %s: %w", service, err)
	}
	return s, nil
}

var errReply = errors.New("unexpected reply")

// parseSnapshot decodes {version, now, {addr, score, ...}, {addr, data, ...}}.
func parseSnapshot(service string, vals []any) (snapshot, error) {
	if len(vals) != 4 {
		return snapshot{}, fmt.Errorf("%w of %d values", errReply, len(vals))
	}
	version, ok1 := vals[0].(int64)
	now, ok2 := vals[1].(int64)
	live, ok3 := vals[2].([]any)
	data, ok4 := vals[3].([]any)
	if !ok1 || !ok2 || !ok3 || !ok4 || len(live)%2 != 0 || len(data)%2 != 0 {
		return snapshot{}, errReply
	}
	byAddr := make(map[string]string, len(data)/2)
	for i := 0; i < len(data); i += 2 {
		addr, _ := data[i].(string)
		d, _ := data[i+1].(string)
		byAddr[addr] = d
	}
	s := snapshot{version: version, now: now, expiry: -1, insts: make([]Instance, 0, len(live)/2)}
	for i := 0; i < len(live); i += 2 {
		addr, _ := live[i].(string)
		if i == 0 {
			score, err := parseScore(live[1])
			if err != nil {
				return snapshot{}, err
			}
			s.expiry = score
		}
		inst, err := decodeRecord(service, addr, byAddr[addr])
		if err != nil {
			return snapshot{}, err
		}
		s.insts = append(s.insts, inst)
	}
	sortInstances(s.insts)
	return s, nil
}

// parseScore reads a sorted-set score as returned inside a script reply
// (a string, or a float under RESP3).
func parseScore(v any) (int64, error) {
	switch s := v.(type) {
	case string:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: score %q", errReply, s)
		}
		return int64(f), nil
	case int64:
		return s, nil
	case float64:
		return int64(s), nil
	}
	return 0, fmt.Errorf("%w: score %T", errReply, v)
}

// tick is the answer of the check script.
type tick struct {
	version, now, expiry int64
}

// runCheck runs the check script: prune, and publish what it found.
func (r *Redis) runCheck(ctx context.Context, service string) (tick, error) {
	vals, err := r.run(ctx, r.check, service).Int64Slice()
	if err != nil {
		return tick{}, fmt.Errorf("registry: check %s: %w", service, err)
	}
	if len(vals) != 3 {
		return tick{}, fmt.Errorf("registry: check %s: %w of %d values", service, errReply, len(vals))
	}
	return tick{version: vals[0], now: vals[1], expiry: vals[2]}, nil
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
	r.hub.close()
	return nil
}

func (r *Redis) closed() bool { return r.isClosed.Load() }

// stopHeartbeat stops k's heartbeat without removing it, as a crash would.
func (r *Redis) stopHeartbeat(service, addr string) bool {
	return r.beats.stop(instanceKey{service, addr})
}

// toDuration converts ms to a Duration.
func toDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
