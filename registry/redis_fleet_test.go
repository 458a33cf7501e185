package registry

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc/internal/redistest"
)

// Tests of the registry at fleet scale: one subscription connection per
// registry, changes applied as deltas, gaps and breaks repaired by full
// reads, shared expiry checks, Sentinel failover, TLS, Cluster shard
// channels.

// pubsubClients returns the number of pub/sub connections srv has.
func pubsubClients(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	list, err := srv.Do("CLIENT", "LIST", "TYPE", "pubsub")
	if err != nil {
		t.Fatalf("CLIENT LIST TYPE pubsub: %v", err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.TrimSpace(line) != "" {
			n++
		}
	}
	return n
}

// commandStats returns the calls per command since the last CONFIG
// RESETSTAT, inner commands of scripts included.
func commandStats(t *testing.T, srv *redistest.Server) map[string]int {
	t.Helper()
	info, err := srv.Do("INFO", "commandstats")
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	stats := make(map[string]int)
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.Atoi(calls)
		stats[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return stats
}

func resetStats(t *testing.T, srv *redistest.Server) {
	t.Helper()
	if _, err := srv.Do("CONFIG", "RESETSTAT"); err != nil {
		t.Fatalf("CONFIG RESETSTAT: %v", err)
	}
}

// TestRedisOneSubscriptionConnection watches 20 services from one registry:
// Redis must see one pub/sub connection carrying 20 channels, and none once
// the watches end.
func TestRedisOneSubscriptionConnection(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	reg := newRedisReg(t, rdb)
	ctx, cancel := context.WithCancel(testCtx(t))
	const services = 20
	var chans []<-chan []Instance
	for i := range services {
		ch, err := reg.Watch(ctx, fmt.Sprintf("Svc%d", i))
		if err != nil {
			t.Fatalf("Watch(Svc%d) error = %v", i, err)
		}
		chans = append(chans, ch)
	}
	// A second Watch of a watched service shares its subscription.
	again, err := reg.Watch(ctx, "Svc0")
	if err != nil {
		t.Fatal(err)
	}
	if n := pubsubClients(t, srv); n != 1 {
		t.Errorf("pub/sub connections for %d watched services = %d, want 1", services, n)
	}
	if got, err := srv.Do("PUBSUB", "NUMPAT"); err != nil || got != "0" {
		t.Errorf("PUBSUB NUMPAT = %q, %v, want 0", got, err)
	}
	channels, err := srv.Do("PUBSUB", "CHANNELS")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Split(channels, "\n")); n != services {
		t.Errorf("subscribed channels = %d, want %d", n, services)
	}
	if err := reg.Register(ctx, Instance{Service: "Svc7", Addr: "h:7"}); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, chans[7], "h:7")
	if err := reg.Register(ctx, Instance{Service: "Svc0", Addr: "h:0"}); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, chans[0], "h:0")
	recvUntil(t, again, "h:0")

	// A second registry (another process) has its own single connection.
	other := newRedisReg(t, newClient(t, srv.Addr()))
	for i := range 5 {
		if _, err := other.Watch(ctx, fmt.Sprintf("Svc%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := pubsubClients(t, srv); n != 2 {
		t.Errorf("pub/sub connections for 2 registries = %d, want 2", n)
	}

	cancel()
	for _, ch := range append(chans, again) {
		drainUntilClosed(t, ch, "after cancel")
	}
	waitFor(t, "no pub/sub connection once every watch ended", func() bool { return pubsubClients(t, srv) == 0 })
}

// fleet is a service with instances registered by one registry and
// watched by several others, each with its own go-redis client (one process
// each).
type fleet struct {
	server   *Redis
	watchers []<-chan []Instance
}

func startFleet(t *testing.T, srv *redistest.Server, service string, instances, watchers int, opts ...Option) *fleet {
	t.Helper()
	ctx := testCtx(t)
	f := &fleet{server: newRedisReg(t, newClient(t, srv.Addr()), opts...)}
	var want []string
	for i := range instances {
		addr := fmt.Sprintf("10.0.0.%d:9000", 100+i)
		if err := f.server.Register(ctx, Instance{Service: service, Addr: addr, Weight: i}); err != nil {
			t.Fatal(err)
		}
		want = append(want, addr)
	}
	for range watchers {
		reg := newRedisReg(t, newClient(t, srv.Addr()), opts...)
		ch, err := reg.Watch(ctx, service)
		if err != nil {
			t.Fatal(err)
		}
		recvUntil(t, ch, want...)
		f.watchers = append(f.watchers, ch)
	}
	return f
}

// all waits until every watcher sent exactly want.
func (f *fleet) all(t *testing.T, want ...string) {
	t.Helper()
	for _, ch := range f.watchers {
		recvUntil(t, ch, want...)
	}
}

func addrRange(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("10.0.0.%d:9000", 100+i))
	}
	return out
}

// TestRedisDeltasWithoutReads: with 10 watchers of a 20-instance service, an
// add and a removal reach every watcher while Redis serves no read at all:
// the messages carry the change. The commands a change costs do not grow
// with watchers or instances.
func TestRedisDeltasWithoutReads(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	// A long TTL: no heartbeat and no expiry check falls inside the test.
	f := startFleet(t, srv, "Calc", 20, 10, WithTTL(time.Minute))
	ctx := testCtx(t)
	// Load the deregister script, so no NOSCRIPT round trip is counted.
	if err := f.server.Deregister(ctx, Instance{Service: "Calc", Addr: "none:1"}); err != nil {
		t.Fatal(err)
	}
	resetStats(t, srv)
	added := Instance{Service: "Calc", Addr: "10.0.0.250:9000", Weight: 3, Meta: map[string]string{"zone": "b"}}
	if err := f.server.Register(ctx, added); err != nil {
		t.Fatal(err)
	}
	f.all(t, append(addrRange(0, 20), added.Addr)...)
	if err := f.server.Deregister(ctx, added); err != nil {
		t.Fatal(err)
	}
	f.all(t, addrRange(0, 20)...)
	stats := commandStats(t, srv)
	t.Logf("commands for one add and one removal seen by 10 watchers: %v", stats)
	for _, cmd := range []string{"hgetall", "hget"} {
		if stats[cmd] > 0 {
			t.Errorf("%s called %d times, want 0: watchers must apply the change without reading", cmd, stats[cmd])
		}
	}
	if stats["zrange"] > 2 {
		t.Errorf("zrange called %d times, want at most 2 (the earliest expiry, once per change)", stats["zrange"])
	}
	if got := stats["evalsha"] + stats["eval"]; got != 2 {
		t.Errorf("scripts run = %d, want 2 (the register and the deregister; no watcher read)", got)
	}
	total := 0
	for cmd, n := range stats {
		if cmd != "info" && cmd != "config|resetstat" {
			total += n
		}
	}
	if total > 24 {
		t.Errorf("commands for two changes = %d, want at most 24 (a dozen per change, whatever the watchers)", total)
	}
	// The watcher got the data too.
	reg := newRedisReg(t, newClient(t, srv.Addr()), WithTTL(time.Minute))
	ch, err := reg.Watch(ctx, "Calc")
	if err != nil {
		t.Fatal(err)
	}
	recvUntil(t, ch, addrRange(0, 20)...)
	if err := f.server.Register(ctx, added); err != nil {
		t.Fatal(err)
	}
	found := false
	for insts := range ch { // ends with the test's ctx at the latest
		if i := slices.IndexFunc(insts, func(in Instance) bool { return in.Addr == added.Addr }); i >= 0 {
			if !equalInstances(insts[i:i+1], []Instance{added}) {
				t.Errorf("delta-applied instance = %+v, want %+v", insts[i], added)
			}
			found = true
			break
		}
	}
	if !found {
		t.Errorf("watcher never listed %s", added.Addr)
	}
}

// TestRedisVersionGapResyncs loses a change on purpose (the version moves
// and a member appears in Redis without a message): the next message shows
// a gap and every watcher reads the service in full, finding the member. A
// message in a format it does not know (an older registry's) does the same.
func TestRedisVersionGapResyncs(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	f := startFleet(t, srv, "Calc", 2, 3, WithTTL(time.Minute))
	ctx := testCtx(t)
	k := f.server.keys("Calc")
	score := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10) // far off: never pruned here
	for _, cmd := range [][]string{
		{"ZADD", k.instances, score, "ghost:1"},
		{"HSET", k.data, "ghost:1", "{}"},
		{"INCR", k.version}, // the lost message's version
	} {
		if _, err := srv.Do(cmd...); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	resetStats(t, srv)
	if err := f.server.Register(ctx, Instance{Service: "Calc", Addr: "10.0.0.200:9000"}); err != nil {
		t.Fatal(err)
	}
	want := append(addrRange(0, 2), "10.0.0.200:9000", "ghost:1")
	f.all(t, want...)
	if n := commandStats(t, srv)["hgetall"]; n != 3 {
		t.Errorf("full reads after a gap = %d, want 3 (one per watcher)", n)
	}

	// An older registry's message (the bare address) is not a delta: read.
	if _, err := srv.Do("ZADD", k.instances, score, "ghost:2"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("PUBLISH", k.channel, "ghost:2"); err != nil {
		t.Fatal(err)
	}
	f.all(t, append(want, "ghost:2")...)
}

// TestRedisExpiryChecksShared: idle watchers of a live service send almost
// nothing. When the earliest member they know of is due to expire, one of
// them checks and the others hear the answer, so the checks per service do
// not grow with the watchers; when the instance dies, every watcher drops it
// within about one TTL.
func TestRedisExpiryChecksShared(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const ttl = 2 * time.Second
	f := &fleet{server: newRedisReg(t, newClient(t, srv.Addr()), WithTTL(ttl))}
	ctx := testCtx(t)
	inst := Instance{Service: "Calc", Addr: "h:1"}
	if err := f.server.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	var checks atomic.Int64
	const watchers = 10
	for range watchers {
		rdb := newClient(t, srv.Addr())
		rdb.AddHook(&countHook{sha: f.server.check.Hash(), n: &checks})
		reg := newRedisReg(t, rdb, WithTTL(ttl))
		ch, err := reg.Watch(ctx, "Calc")
		if err != nil {
			t.Fatal(err)
		}
		recvUntil(t, ch, "h:1")
		f.watchers = append(f.watchers, ch)
	}
	const idle = 3 * time.Second
	time.Sleep(idle)
	// The earliest expiry is always at least TTL - heartbeat ahead, so each
	// watcher alone would check idle/(TTL-heartbeat) = 2.25 times: 22 in all.
	t.Logf("expiry checks by %d idle watchers in %v (TTL %v): %d", watchers, idle, ttl, checks.Load())
	if n := checks.Load(); n > 10 {
		t.Errorf("expiry checks by %d idle watchers in %v = %d, want at most 10 (shared, not per watcher)", watchers, idle, n)
	}
	for _, ch := range f.watchers {
		select {
		case insts := <-ch:
			t.Errorf("idle watcher sent %v with no change", addrs(insts))
		default:
		}
	}
	f.server.stopHeartbeat("Calc", "h:1")
	stopped := time.Now()
	f.all(t)
	if d := time.Since(stopped); d > ttl+500*time.Millisecond {
		t.Errorf("every watcher dropped the dead instance %v after its heartbeat stopped, want within about one TTL (%v)", d, ttl)
	}
}

// countHook counts the runs of one script.
type countHook struct {
	sha string
	n   *atomic.Int64
}

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) > 1 && strings.EqualFold(fmt.Sprint(args[0]), "evalsha") && args[1] == h.sha {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRedisSentinelFailover kills the master of a Sentinel setup while
// servers heartbeat and clients watch: after the failover no instance is
// lost (heartbeats re-add what replication had not copied yet) and every
// watcher converges on the full list, then follows a new change.
func TestRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	sn := redistest.StartSentinel(t, 1, 3)
	newFailover := func() redis.UniversalClient {
		rdb := redis.NewUniversalClient(&redis.UniversalOptions{
			MasterName:            sn.MasterName(),
			Addrs:                 sn.Addrs(),
			ContextTimeoutEnabled: true,
			DialTimeout:           300 * time.Millisecond,
			MaxRetries:            -1, // the registry retries on its own schedule
		})
		t.Cleanup(func() { rdb.Close() })
		return rdb
	}
	opts := []Option{WithTTL(3 * time.Second), WithOpTimeout(500 * time.Millisecond)}
	server := newRedisReg(t, newFailover(), opts...)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var want []string
	for i := range 5 {
		addr := fmt.Sprintf("10.0.1.%d:9000", i)
		if err := server.Register(ctx, Instance{Service: "Calc", Addr: addr}); err != nil {
			t.Fatal(err)
		}
		want = append(want, addr)
	}
	var watchers []<-chan []Instance
	var clients []*Redis
	for range 3 {
		reg := newRedisReg(t, newFailover(), opts...)
		ch, err := reg.Watch(ctx, "Calc")
		if err != nil {
			t.Fatal(err)
		}
		recvUntil(t, ch, want...)
		watchers = append(watchers, ch)
		clients = append(clients, reg)
	}

	// Two more right before the kill: replication is asynchronous, so the
	// promoted replica may never have seen them; their heartbeats must
	// bring them back.
	for _, addr := range []string{"10.0.1.5:9000", "10.0.1.6:9000"} {
		if err := server.Register(ctx, Instance{Service: "Calc", Addr: addr}); err != nil {
			t.Fatal(err)
		}
		want = append(want, addr)
	}
	old := sn.Master()
	old.Kill()
	killed := time.Now()
	m := sn.WaitFailover(old)
	t.Logf("sentinels promoted %s %v after the master died", m.Addr(), time.Since(killed))

	// No instance lost: Lookup on the new master lists all of them again.
	deadline := time.Now().Add(20 * time.Second)
	for {
		insts, err := clients[0].Lookup(ctx, "Calc")
		if err == nil && slices.Equal(addrs(insts), want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lookup after failover = %v, %v, want %v", addrs(insts), err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all instances listed %v after the master died", time.Since(killed))
	// Every watcher follows the new master: a change made there arrives.
	if err := server.Register(ctx, Instance{Service: "Calc", Addr: "10.0.1.9:9000"}); err != nil {
		t.Fatal(err)
	}
	for i, ch := range watchers {
		recvUntilWithin(t, ch, 20*time.Second, append(want, "10.0.1.9:9000")...)
		t.Logf("watcher %d converged %v after the master died", i, time.Since(killed))
	}
}

// recvUntilWithin is recvUntil with its own bound.
func recvUntilWithin(t *testing.T, ch <-chan []Instance, within time.Duration, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	timer := time.NewTimer(within)
	defer timer.Stop()
	var last []string
	for {
		select {
		case insts, ok := <-ch:
			if !ok {
				t.Fatalf("watch channel closed while waiting for %v (last %v)", want, last)
			}
			last = addrs(insts)
			if slices.Equal(last, want) {
				return time.Since(start)
			}
		case <-timer.C:
			t.Fatalf("watch: no list %v within %v (last %v)", want, within, last)
		}
	}
}

// TestRedisTLS runs the conformance suite over TLS to a redis-server with a
// self-signed certificate.
func TestRedisTLS(t *testing.T) {
	t.Parallel()
	srv := redistest.StartTLS(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	testRegistry(t, func(t *testing.T) Registry { return newRedisReg(t, rdb) })
}

// TestRedisClusterPlainPubSub runs the conformance suite on Cluster over
// plain PUBLISH/SUBSCRIBE, the path Redis 6 takes (it has no shard
// channels).
func TestRedisClusterPlainPubSub(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	testRegistry(t, func(t *testing.T) Registry { return newRedisReg(t, rdb, withPubSub(pubsubPlain)) })
}

// TestRedisClusterShardChannels: on Cluster a registry watching many
// services holds at most one pub/sub connection per node, on shard channels
// only.
func TestRedisClusterShardChannels(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	reg := newRedisReg(t, rdb)
	ctx := testCtx(t)
	const services = 30
	var chans []<-chan []Instance
	for i := range services {
		ch, err := reg.Watch(ctx, fmt.Sprintf("Svc%d", i))
		if err != nil {
			t.Fatalf("Watch(Svc%d) error = %v", i, err)
		}
		chans = append(chans, ch)
	}
	conns, shardSubs := 0, 0
	for _, n := range cl.Nodes() {
		conns += pubsubClients(t, n)
		if got, err := n.Do("PUBSUB", "NUMSUB"); err != nil || got != "" {
			t.Errorf("plain channels on %s = %q, %v, want none", n.Addr(), got, err)
		}
		list, err := n.Do("PUBSUB", "SHARDCHANNELS")
		if err != nil {
			t.Fatal(err)
		}
		if list != "" {
			shardSubs += len(strings.Split(list, "\n"))
		}
	}
	if conns < 1 || conns > len(cl.Nodes()) {
		t.Errorf("pub/sub connections for %d services on %d nodes = %d, want 1..%d", services, len(cl.Nodes()), conns, len(cl.Nodes()))
	}
	if shardSubs != services {
		t.Errorf("shard channels subscribed = %d, want %d", shardSubs, services)
	}
	for i := range 3 {
		svc := fmt.Sprintf("Svc%d", i*7)
		if err := reg.Register(ctx, Instance{Service: svc, Addr: "h:1"}); err != nil {
			t.Fatal(err)
		}
		recvUntil(t, chans[i*7], "h:1")
	}
}
