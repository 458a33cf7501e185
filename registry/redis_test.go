package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc/internal/redistest"
)

// newClient returns a go-redis client for srv that honours ctx deadlines.
func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newRedisReg returns a registry on rdb under a prefix unique to t.
func newRedisReg(t *testing.T, rdb redis.UniversalClient, opts ...Option) *Redis {
	t.Helper()
	opts = append([]Option{WithTTL(testTTL), WithPrefix("test:" + t.Name()), WithLogger(testLogger(t))}, opts...)
	r := NewRedis(rdb, opts...)
	t.Cleanup(func() { r.Close() })
	return r
}

// testLogger sends background logs to t.Log until the test ends.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestRedis(t *testing.T) {
	t.Parallel()
	rdb := newClient(t, redistest.Start(t).Addr())
	testRegistry(t, func(t *testing.T) Registry { return newRedisReg(t, rdb) })
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	cl := redistest.StartCluster(t, 3)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	testRegistry(t, func(t *testing.T) Registry { return newRedisReg(t, rdb) })
}

func TestRedisKeys(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	reg := NewRedis(newClient(t, srv.Addr()))
	defer reg.Close()
	ctx := testCtx(t)
	if err := reg.Register(ctx, Instance{Service: "Calc", Addr: "h:1", Weight: 3, Meta: map[string]string{"z": "1", "a": "2"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := srv.Do("TYPE", "{seedrpc:Calc}:instances"); err != nil || got != "zset" {
		t.Errorf("TYPE {seedrpc:Calc}:instances = %q, %v, want zset", got, err)
	}
	if got, err := srv.Do("HGET", "{seedrpc:Calc}:data", "h:1"); err != nil || got != `{"w":3,"m":{"a":"2","z":"1"}}` {
		t.Errorf("HGET {seedrpc:Calc}:data h:1 = %q, %v, want sorted JSON", got, err)
	}
	for _, key := range []string{"{seedrpc:Calc}:instances", "{seedrpc:Calc}:data", "{seedrpc:Calc}:version"} {
		if got, err := srv.Do("PTTL", key); err != nil || got == "-1" || got == "-2" {
			t.Errorf("PTTL %s = %q, %v, want an expiry", key, got, err)
		}
	}
	if err := reg.Deregister(ctx, Instance{Service: "Calc", Addr: "h:1"}); err != nil {
		t.Fatal(err)
	}
	if got, err := srv.Do("EXISTS", "{seedrpc:Calc}:instances", "{seedrpc:Calc}:data", "{seedrpc:Calc}:version"); err != nil || got != "0" {
		t.Errorf("EXISTS after last Deregister = %q, %v, want 0", got, err)
	}
}

// TestRedisHeartbeatPublishesOnlyChanges counts the messages on the channel:
// registering publishes, heartbeats that change nothing do not.
func TestRedisHeartbeatPublishesOnlyChanges(t *testing.T) {
	t.Parallel()
	rdb := newClient(t, redistest.Start(t).Addr())
	reg := newRedisReg(t, rdb, WithHeartbeat(20*time.Millisecond))
	ctx := testCtx(t)
	channel := reg.keys("Calc").channel
	ps := rdb.Subscribe(ctx, channel)
	defer ps.Close()
	if _, err := ps.ReceiveTimeout(ctx, time.Second); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := reg.Register(ctx, Instance{Service: "Calc", Addr: "h:1"}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); { // ~15 heartbeats
		if _, err := ps.ReceiveTimeout(ctx, time.Until(end)+time.Millisecond); err == nil {
			n++
		}
	}
	if n != 1 {
		t.Errorf("messages published for one Register plus ~15 heartbeats = %d, want 1", n)
	}
}

// TestRedisCrashExpiry closes the registry that registered (a crash: no
// Deregister) and measures when another process's Lookup and Watch lose it.
func TestRedisCrashExpiry(t *testing.T) {
	t.Parallel()
	rdb := newClient(t, redistest.Start(t).Addr())
	server := newRedisReg(t, rdb)
	client := newRedisReg(t, rdb)
	ctx := testCtx(t)
	ch, err := client.Watch(ctx, "Calc")
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Register(ctx, Instance{Service: "Calc", Addr: "h:1"}); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, ch, "h:1")
	server.Close()
	stopped := time.Now()
	var lookupGone time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); lookupGone = waitLookup(t, client, "Calc") }()
	watchGone, _ := recvUntil(t, ch)
	wg.Wait()
	t.Logf("after the heartbeat stopped (TTL %v, heartbeat %v): gone from Lookup after %v, from Watch after %v",
		testTTL, testTTL/3, lookupGone, watchGone)
	if d := time.Since(stopped); d > testTTL+500*time.Millisecond {
		t.Errorf("crashed instance disappeared after %v, want within about one TTL (%v)", d, testTTL)
	}
}

// TestRedisRestartEmpty kills Redis and restarts it empty: the heartbeat must
// re-add the instance within about one heartbeat and the watcher must see it.
func TestRedisRestartEmpty(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	const heartbeat = 200 * time.Millisecond
	reg := newRedisReg(t, rdb, WithTTL(2*time.Second), WithHeartbeat(heartbeat))
	const opTimeout = 500 * time.Millisecond
	client := newRedisReg(t, rdb, WithTTL(2*time.Second), WithResync(time.Minute), WithOpTimeout(opTimeout))
	ctx := testCtx(t)
	if err := reg.Register(ctx, Instance{Service: "Calc", Addr: "h:1"}); err != nil {
		t.Fatal(err)
	}
	ch, err := client.Watch(ctx, "Calc")
	if err != nil {
		t.Fatal(err)
	}
	recvUntil(t, ch, "h:1")

	srv.Kill()
	start := time.Now()
	if _, err := client.Lookup(ctx, "Calc"); err == nil {
		t.Fatal("Lookup with Redis down succeeded")
	}
	if d := time.Since(start); d > opTimeout+300*time.Millisecond {
		t.Errorf("Lookup with Redis down took %v, want at most about the op timeout %v", d, opTimeout)
	}
	srv.Restart()
	restarted := time.Now()
	back := waitFor(t, "instance re-registered", func() bool {
		insts, err := client.Lookup(ctx, "Calc")
		return err == nil && len(insts) == 1
	})
	t.Logf("instance back in Lookup %v after Redis restarted empty (heartbeat %v)", back, heartbeat)
	if back > heartbeat+500*time.Millisecond {
		t.Errorf("re-registration took %v, want within about one heartbeat (%v)", back, heartbeat)
	}
	// The watcher lost its subscription; it must resync by itself. The list
	// may already be current (it never saw it empty); a change proves it follows.
	if err := reg.Register(ctx, Instance{Service: "Calc", Addr: "h:2"}); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, ch, "h:1", "h:2")
	t.Logf("watcher followed a change %v after the restart", time.Since(restarted))
}

// TestRedisWatchRecoversAfterClientKill kills every pub/sub connection; the
// watcher must re-subscribe and a later change must still arrive (the
// periodic resync is set far beyond the test, so only the subscription can
// deliver it).
func TestRedisWatchRecoversAfterClientKill(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	reg := newRedisReg(t, rdb, WithTTL(time.Minute), WithResync(time.Minute))
	ctx := testCtx(t)
	ch, err := reg.Watch(ctx, "Calc")
	if err != nil {
		t.Fatal(err)
	}
	recvUntil(t, ch)
	if err := reg.Register(ctx, Instance{Service: "Calc", Addr: "a:1"}); err != nil {
		t.Fatal(err)
	}
	recvUntil(t, ch, "a:1")
	for i := range 2 { // twice: recovery must not be a one-shot
		killed, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub")
		if err != nil || killed == "0" {
			t.Fatalf("CLIENT KILL TYPE pubsub = %q, %v, want one killed", killed, err)
		}
		addr := "b:" + strconv.Itoa(i)
		waitFor(t, "watcher re-subscribed", func() bool {
			n, err := rdb.PubSubNumSub(ctx, "{test:"+t.Name()+":Calc}:changes").Result()
			return err == nil && n["{test:"+t.Name()+":Calc}:changes"] == 1
		})
		if err := reg.Register(ctx, Instance{Service: "Calc", Addr: addr}); err != nil {
			t.Fatal(err)
		}
		took, _ := recvUntil(t, ch, "a:1", addr)
		t.Logf("change after CLIENT KILL #%d arrived after %v", i+1, took)
		if err := reg.Deregister(ctx, Instance{Service: "Calc", Addr: addr}); err != nil {
			t.Fatal(err)
		}
		recvUntil(t, ch, "a:1")
	}
}

// TestRedisBlackholed freezes Redis (SIGSTOP: connections open, no replies):
// every call must fail within the op timeout, and Close must not hang.
func TestRedisBlackholed(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	const opTimeout = 300 * time.Millisecond
	reg := newRedisReg(t, rdb, WithOpTimeout(opTimeout))
	ctx := context.Background() // no deadline: the registry must bound itself
	if err := reg.Register(ctx, Instance{Service: "Calc", Addr: "h:1"}); err != nil {
		t.Fatal(err)
	}
	ch, err := reg.Watch(ctx, "Calc")
	if err != nil {
		t.Fatal(err)
	}
	recvUntil(t, ch, "h:1")
	srv.Freeze()
	defer srv.Thaw()
	tests := []struct {
		name string
		give func() error
	}{
		{"Lookup", func() error { _, err := reg.Lookup(ctx, "Calc"); return err }},
		{"Register", func() error { return reg.Register(ctx, Instance{Service: "Calc", Addr: "h:2"}) }},
		{"Deregister", func() error { return reg.Deregister(ctx, Instance{Service: "Calc", Addr: "h:1"}) }},
		{"Watch", func() error { _, err := reg.Watch(ctx, "Other"); return err }},
	}
	for _, tt := range tests {
		start := time.Now()
		err := tt.give()
		took := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s on a blackholed Redis error = %v, want context.DeadlineExceeded", tt.name, err)
		}
		if took > opTimeout+500*time.Millisecond {
			t.Errorf("%s on a blackholed Redis took %v, want about %v", tt.name, took, opTimeout)
		}
	}
	// The watcher keeps its last list: nothing is sent while Redis is away.
	select {
	case insts := <-ch:
		t.Errorf("watch sent %v while Redis was blackholed", addrs(insts))
	default:
	}
	start := time.Now()
	reg.Close()
	if d := time.Since(start); d > opTimeout+500*time.Millisecond {
		t.Errorf("Close with Redis blackholed took %v, want at most about %v", d, opTimeout)
	}
}

// TestRedisServerClockNeverSent proves by construction that a server whose
// clock is an hour off still expires correctly: no argument the registry
// sends is a timestamp (only the TTL as a duration), and the stored score is
// Redis's TIME plus the TTL.
func TestRedisServerClockNeverSent(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	hook := &argsHook{}
	rdb.AddHook(hook)
	reg := newRedisReg(t, rdb, WithHeartbeat(50*time.Millisecond))
	ctx := testCtx(t)
	if err := reg.Register(ctx, Instance{Service: "Calc", Addr: "h:1"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(120 * time.Millisecond) // a couple of heartbeats
	if _, err := reg.Lookup(ctx, "Calc"); err != nil {
		t.Fatal(err)
	}
	if err := reg.Deregister(ctx, Instance{Service: "Calc", Addr: "h:1"}); err != nil {
		t.Fatal(err)
	}
	nowMs, nowS := time.Now().UnixMilli(), time.Now().Unix()
	hour := int64(2 * time.Hour / time.Millisecond)
	for _, arg := range hook.all() {
		n, err := strconv.ParseInt(fmt.Sprint(arg), 10, 64)
		if err != nil {
			continue
		}
		if abs(n-nowMs) < hour || abs(n-nowS) < 2*3600 {
			t.Errorf("registry sent %d, a local timestamp; expiry must use Redis's TIME only", n)
		}
	}

	// The score is Redis's clock plus the TTL.
	if err := reg.Register(ctx, Instance{Service: "Calc", Addr: "h:1"}); err != nil {
		t.Fatal(err)
	}
	instances := reg.keys("Calc").instances
	score, err := rdb.ZScore(ctx, instances, "h:1").Result()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Duration(int64(score)-tm.UnixMilli()) * time.Millisecond; left <= 0 || left > testTTL {
		t.Errorf("score - Redis TIME = %v, want in (0, %v]", left, testTTL)
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// argsHook records the arguments of every command sent.
type argsHook struct {
	mu   sync.Mutex // guards args
	args []any
}

func (h *argsHook) all() []any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]any(nil), h.args...)
}

func (h *argsHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *argsHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.args = append(h.args, cmd.Args()...)
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

func (h *argsHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
