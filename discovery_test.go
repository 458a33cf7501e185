package rpc

// Integration tests of discovery through a registry (issue 3): real
// redis-server processes, in-process servers and child server processes.

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc/lb"
	"github.com/seedrpc/rpc/registry"
)

// checkRoundRobin makes rounds×len(addrs) sequential calls and checks that
// after every round each server answered rounds-so-far calls, ±1.
func checkRoundRobin(t *testing.T, cli *Client, addrs []string, rounds int) {
	t.Helper()
	counts := map[string]int{}
	n := len(addrs)
	for i := range rounds * n {
		var r FleetReply
		if err := cli.Call("Calc.Add", FleetArgs{A: i, B: 1}, &r, WithTimeout(time.Second)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if r.Sum != i+1 {
			t.Fatalf("call %d: sum %d from %s, want %d", i, r.Sum, r.Addr, i+1)
		}
		counts[r.Addr]++
		if (i+1)%n != 0 {
			continue
		}
		k := (i + 1) / n
		for _, a := range addrs {
			if d := counts[a] - k; d < -1 || d > 1 {
				t.Fatalf("after %d rounds: %s answered %d calls, want %d±1 (all: %v)", k, a, counts[a], k, counts)
			}
		}
	}
	if len(counts) != n {
		t.Fatalf("answers came from %v, want only %v", counts, addrs)
	}
	t.Logf("round robin over %d servers: %v", n, counts)
}

// startRoundRobinFleet starts three Calc servers registered in a fresh
// redis-server and a round-robin client that already routes to all three.
func startRoundRobinFleet(t *testing.T) (*Client, []string) {
	t.Helper()
	rs := startRedis(t)
	sreg := newRedisRegistry(t, rs.Addr())
	var addrs []string
	for range 3 {
		addrs = append(addrs, startFleetServer(t, sreg, "Calc", 0).addr)
	}
	cli := newFleetClient(t, newRedisRegistry(t, rs.Addr()), WithBalancer(lb.RoundRobin()))
	waitRouted(t, cli, "Calc", addrs...)
	return cli, addrs
}

func TestDiscoveryRedisRoundRobin(t *testing.T) {
	cli, addrs := startRoundRobinFleet(t)
	checkRoundRobin(t, cli, addrs, 100)
}

func TestDiscoveryMemoryRegistry(t *testing.T) {
	mem := registry.NewMemory(registry.WithTTL(fleetTTL), registry.WithHeartbeat(fleetHeartbeat))
	t.Cleanup(func() { mem.Close() })
	var fs []*fleetServer
	var addrs []string
	for range 3 {
		s := startFleetServer(t, mem, "Calc", 0)
		fs = append(fs, s)
		addrs = append(addrs, s.addr)
	}
	cli := newFleetClient(t, mem, WithBalancer(lb.RoundRobin()))
	waitRouted(t, cli, "Calc", addrs...)
	checkRoundRobin(t, cli, addrs, 20)

	// A graceful shutdown leaves the registry at once and the client
	// stops routing there without a failed call.
	fs[0].shutdown(t)
	if got, err := lookupAddrs(mem, "Calc"); err != nil || slices.Contains(got, fs[0].addr) {
		t.Fatalf("Lookup after Shutdown = %v, %v; want %s gone", got, err, fs[0].addr)
	}
	for i := range 30 {
		var r FleetReply
		if err := cli.Call("Calc.Add", FleetArgs{A: i}, &r, WithTimeout(time.Second)); err != nil {
			t.Fatalf("call %d after shutdown: %v", i, err)
		}
		if r.Addr == fs[0].addr {
			t.Fatalf("call %d after shutdown answered by the stopped server", i)
		}
	}

	// A new server gets calls.
	start := time.Now()
	s := startFleetServer(t, mem, "Calc", 0)
	waitRouted(t, cli, "Calc", s.addr)
	t.Logf("new server received calls %v after it was started", time.Since(start).Round(time.Millisecond))
}

// TestDiscoveryKill9Child kills a child server process with SIGKILL under
// load: it leaves Lookup within one TTL and the client's routing within
// 2×TTL+1s, and no call fails after that.
func TestDiscoveryKill9Child(t *testing.T) {
	rs := startRedis(t)
	a := startChild(t, childConfig{redis: rs.Addr()})
	b := startChild(t, childConfig{redis: rs.Addr()})
	reg := newRedisRegistry(t, rs.Addr())
	rb := &recBalancer{inner: lb.RoundRobin()}
	cli := newFleetClient(t, reg, WithBalancer(rb))
	waitRouted(t, cli, "Calc", a.addr, b.addr)
	busyCPU(t)

	const callers = 8
	ld := startLoad(t, cli, callers, "Calc.Add", FleetArgs{B: 1}, WithTimeout(time.Second))
	ld.waitAnswered(t, time.Time{}, 20, a.addr, b.addr)
	t0 := time.Now()
	a.kill()
	dead := time.Now()

	waitLookup(t, reg, "Calc", fleetTTL+time.Second, "killed instance gone from Lookup", func(addrs []string) bool {
		return !slices.Contains(addrs, a.addr) && slices.Contains(addrs, b.addr)
	})
	gone := time.Since(t0)
	t.Logf("kill -9 -> gone from Lookup after %v (TTL %v, heartbeat %v)", gone.Round(time.Millisecond), fleetTTL, fleetHeartbeat)
	if gone > fleetTTL+250*time.Millisecond {
		t.Errorf("killed instance gone from Lookup after %v, want within one TTL (%v) + 250ms", gone, fleetTTL)
	}

	limit := 2*fleetTTL + time.Second
	var unrouted time.Duration
	poll(t, time.Until(t0.Add(limit)), "the client to stop routing to the killed server", func() bool {
		addrs, at := rb.routable()
		unrouted = at.Sub(t0)
		return !slices.Contains(addrs, a.addr) && at.After(t0)
	})
	t.Logf("kill -9 -> client stopped routing there after %v", unrouted.Round(time.Millisecond))

	// The load goes on past the limit, in real time: no call may fail
	// then, whatever the registry's TTL did.
	if d := time.Until(t0.Add(limit + 500*time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
	recs := ld.stop()
	fails := failures(recs)
	logFailures(t, t0, fails)
	// Only calls in flight when the client learned of the death may fail
	// (see TestFleetKill9UnderLoad), each caller's at most once.
	k := countKill(recs, t0, a.addr)
	checkKill(t, k, t0, callers)
	t.Logf("in flight at the signal %d, when the client learned %d (%v after the signal; reaped after %v)",
		k.atSignal, k.inFlight, k.learned.Sub(t0).Round(time.Millisecond), dead.Sub(t0).Round(time.Millisecond))
	var late int
	for _, r := range recs {
		if r.start.After(t0.Add(unrouted)) && r.err == nil {
			late++
			if r.addr != b.addr {
				t.Errorf("call after the kill answered by %s", r.addr)
			}
		}
	}
	if late == 0 {
		t.Error("no successful calls after the kill")
	}
	t.Logf("%d calls, %d failed, %d succeeded after the client dropped the killed server", len(recs), len(fails), late)
}

// TestDiscoveryGracefulShutdownChild stops one of two child servers with
// SIGTERM (Shutdown) under 8 concurrent callers: zero failed calls.
func TestDiscoveryGracefulShutdownChild(t *testing.T) {
	rs := startRedis(t)
	a := startChild(t, childConfig{redis: rs.Addr(), delay: 2 * time.Millisecond})
	b := startChild(t, childConfig{redis: rs.Addr(), delay: 2 * time.Millisecond})
	reg := newRedisRegistry(t, rs.Addr())
	cli := newFleetClient(t, reg, WithBalancer(lb.RoundRobin()))
	waitRouted(t, cli, "Calc", a.addr, b.addr)

	ld := startLoad(t, cli, 8, "Calc.Add", FleetArgs{B: 1}, WithTimeout(2*time.Second))
	ld.waitAnswered(t, time.Time{}, 20, a.addr, b.addr)
	t0 := time.Now()
	a.term(t)
	stopped := time.Now()
	t.Logf("graceful shutdown of the child took %v", stopped.Sub(t0).Round(time.Millisecond))
	if got, err := lookupAddrs(reg, "Calc"); err != nil || slices.Contains(got, a.addr) || !slices.Contains(got, b.addr) {
		t.Errorf("Lookup after graceful shutdown = %v, %v; want only %s", got, err, b.addr)
	}
	ld.waitAnswered(t, stopped, 100)
	recs := ld.stop()

	fails := failures(recs)
	logFailures(t, t0, fails)
	if len(fails) > 0 {
		t.Errorf("%d of %d calls failed during a graceful shutdown; want 0", len(fails), len(recs))
	}
	before := countByAddr(slicesFilter(recs, func(r callRec) bool { return r.end.Before(t0) }))
	after := countByAddr(slicesFilter(recs, func(r callRec) bool { return r.start.After(stopped) }))
	if before[a.addr] == 0 || before[b.addr] == 0 {
		t.Errorf("before the shutdown calls reached %v, want both servers", before)
	}
	if after[a.addr] != 0 || after[b.addr] == 0 {
		t.Errorf("after the shutdown calls reached %v, want only %s", after, b.addr)
	}
	t.Logf("%d calls: before %v, after %v", len(recs), before, after)
}

// TestDiscoveryRedisRestart kills Redis under load (calls keep reaching both
// servers from the client's last known list), then restarts it empty: the
// servers re-register, the client keeps calling without a failure, and its
// watch works again (a new server gets calls).
func TestDiscoveryRedisRestart(t *testing.T) {
	rs := startRedis(t)
	a := startFleetServer(t, newRedisRegistry(t, rs.Addr()), "Calc", time.Millisecond)
	b := startFleetServer(t, newRedisRegistry(t, rs.Addr()), "Calc", time.Millisecond)
	reg := newRedisRegistry(t, rs.Addr())
	cli := newFleetClient(t, reg, WithBalancer(lb.RoundRobin()))
	waitRouted(t, cli, "Calc", a.addr, b.addr)

	ld := startLoad(t, cli, 8, "Calc.Add", FleetArgs{B: 1}, WithTimeout(time.Second))
	ld.waitAnswered(t, time.Time{}, 20, a.addr, b.addr)
	t0 := time.Now()
	rs.Kill()
	time.Sleep(fleetTTL + 500*time.Millisecond) // Redis down for longer than a TTL
	t1 := time.Now()
	down := countByAddr(slicesFilter(ld.snapshot(), func(r callRec) bool { return r.start.After(t0) && r.end.Before(t1) }))
	t.Logf("while Redis was down for %v: %v", t1.Sub(t0).Round(time.Millisecond), down)
	if down[a.addr] == 0 || down[b.addr] == 0 {
		t.Errorf("while Redis was down calls reached %v, want both %s and %s", down, a.addr, b.addr)
	}

	rs.Restart()
	t2 := time.Now()
	back := waitLookup(t, reg, "Calc", 2*fleetTTL+2*time.Second, "instances back after Redis restarted empty", func(addrs []string) bool {
		return slices.Contains(addrs, a.addr) && slices.Contains(addrs, b.addr)
	})
	t.Logf("Redis restarted empty -> both instances back in Lookup after %v (heartbeat %v)", back.Round(time.Millisecond), fleetHeartbeat)

	// The client's watch recovered: a server started now gets calls.
	c := startFleetServer(t, newRedisRegistry(t, rs.Addr()), "Calc", time.Millisecond)
	t3 := time.Now()
	took := poll(t, 3*time.Second, "a call to a server started after the Redis restart", func() bool {
		return slices.Contains(ld.addrsSince(t3), c.addr)
	})
	t.Logf("server started after the restart got calls %v after registering", took.Round(time.Millisecond))
	ld.waitAnswered(t, time.Now(), 20, a.addr, b.addr, c.addr)
	recs := ld.stop()
	fails := failures(recs)
	logFailures(t, t0, fails)
	if len(fails) > 0 {
		t.Errorf("%d of %d calls failed across the Redis outage and restart; want 0", len(fails), len(recs))
	}
	after := countByAddr(slicesFilter(recs, func(r callRec) bool { return r.start.After(t2) }))
	t.Logf("%d calls; after the restart: %v", len(recs), after)
}

// TestDiscoveryNewServerGetsCalls starts a child server under load: it
// receives calls within 3s of being started.
func TestDiscoveryNewServerGetsCalls(t *testing.T) {
	rs := startRedis(t)
	a := startFleetServer(t, newRedisRegistry(t, rs.Addr()), "Calc", time.Millisecond)
	cli := newFleetClient(t, newRedisRegistry(t, rs.Addr()), WithBalancer(lb.RoundRobin()))
	waitRouted(t, cli, "Calc", a.addr)
	ld := startLoad(t, cli, 4, "Calc.Add", FleetArgs{B: 1}, WithTimeout(time.Second))

	t0 := time.Now()
	b := startChild(t, childConfig{redis: rs.Addr()})
	serving := time.Since(t0)
	poll(t, 3*time.Second-serving, fmt.Sprintf("a call to the new server (serving after %v)", serving), func() bool {
		return slices.Contains(ld.addrsSince(t0), b.addr)
	})
	t.Logf("new child server: registered %v after start, first call after %v", serving.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	if fails := failures(ld.stop()); len(fails) > 0 {
		logFailures(t, t0, fails)
		t.Errorf("%d calls failed", len(fails))
	}
}

// TestDiscoveryNoInstances: a call to a service without instances fails at
// once with ErrNoInstances, in every call mode, and never hangs.
func TestDiscoveryNoInstances(t *testing.T) {
	rs := startRedis(t)
	mem := registry.NewMemory(registry.WithTTL(fleetTTL), registry.WithHeartbeat(fleetHeartbeat))
	t.Cleanup(func() { mem.Close() })
	for _, tc := range []struct {
		name string
		reg  registry.Registry
	}{
		{"redis", newRedisRegistry(t, rs.Addr())},
		{"memory", mem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := newFleetClient(t, tc.reg)
			check := func(what string, call func() error) {
				t.Helper()
				errc := make(chan error, 1)
				start := time.Now()
				go func() { errc <- call() }()
				select {
				case err := <-errc:
					el := time.Since(start)
					if !errors.Is(err, ErrNoInstances) {
						t.Errorf("%s: error %v, want ErrNoInstances", what, err)
					}
					if el > 100*time.Millisecond {
						t.Errorf("%s: failed after %v, want < 100ms", what, el)
					}
					t.Logf("%s: failed after %v: %v", what, el.Round(time.Microsecond), err)
				case <-time.After(5 * time.Second):
					t.Fatalf("%s: hangs (no answer in 5s)", what)
				}
			}
			var r FleetReply
			check("first Call", func() error { return cli.Call("Nope.Add", FleetArgs{}, &r) })
			check("second Call", func() error { return cli.Call("Nope.Add", FleetArgs{}, &r) })
			check("Go", func() error { return (<-cli.Go("Nope.Add", FleetArgs{}, &r, nil).Done).Error })
			check("Call with retries", func() error { return cli.Call("Nope.Add", FleetArgs{}, &r, WithRetries(3)) })

			// A service whose only server shut down gracefully: it
			// deregistered and sent draining frames, so the client knows
			// at once that no instance is left.
			s := startFleetServer(t, tc.reg, "Gone", 0)
			waitRouted(t, cli, "Gone", s.addr)
			s.shutdown(t)
			var err error
			took := poll(t, time.Second, "ErrNoInstances after the last server shut down", func() bool {
				err = cli.Call("Gone.Add", FleetArgs{}, &r, WithTimeout(time.Second))
				return errors.Is(err, ErrNoInstances)
			})
			t.Logf("ErrNoInstances %v after the last server's Shutdown returned", took.Round(time.Millisecond))
			check("Call after the last server left", func() error { return cli.Call("Gone.Add", FleetArgs{}, &r) })
		})
	}
}

// TestDiscoveryServiceIsolation: services Arith and Arith2 never see each
// other's instances (exact names, no prefix matching).
func TestDiscoveryServiceIsolation(t *testing.T) {
	rs := startRedis(t)
	sreg := newRedisRegistry(t, rs.Addr())
	arith := startFleetServer(t, sreg, "Arith", 0)
	arith2 := startFleetServer(t, sreg, "Arith2", 0)
	reg := newRedisRegistry(t, rs.Addr())
	for svc, want := range map[string]string{"Arith": arith.addr, "Arith2": arith2.addr} {
		if got, err := lookupAddrs(reg, svc); err != nil || !slices.Equal(got, []string{want}) {
			t.Errorf("Lookup(%s) = %v, %v; want [%s]", svc, got, err, want)
		}
	}
	if got, err := lookupAddrs(reg, "Arit"); err != nil || len(got) != 0 {
		t.Errorf("Lookup(Arit) = %v, %v; want none", got, err)
	}
	cli := newFleetClient(t, reg, WithBalancer(lb.Random()))
	for i := range 20 {
		for svc, want := range map[string]string{"Arith": arith.addr, "Arith2": arith2.addr} {
			var r FleetReply
			if err := cli.Call(svc+".Add", FleetArgs{A: i}, &r, WithTimeout(time.Second)); err != nil {
				t.Fatalf("%s.Add: %v", svc, err)
			}
			if r.Addr != want {
				t.Fatalf("%s.Add answered by %s, want %s", svc, r.Addr, want)
			}
		}
	}
	if n := arith.calc.calls.Load(); n != 20 {
		t.Errorf("Arith server got %d calls, want 20", n)
	}
	if n := arith2.calc.calls.Load(); n != 20 {
		t.Errorf("Arith2 server got %d calls, want 20", n)
	}
}

// TestDiscoveryFrozenRedis blackholes Redis (SIGSTOP) under load: calls keep
// flowing to the last known instances without a failure. A new client whose
// first lookup cannot finish still honours each call's timeout, and Go
// returns at once.
func TestDiscoveryFrozenRedis(t *testing.T) {
	rs := startRedis(t)
	a := startFleetServer(t, newRedisRegistry(t, rs.Addr()), "Calc", time.Millisecond)
	b := startFleetServer(t, newRedisRegistry(t, rs.Addr()), "Calc", time.Millisecond)
	cli := newFleetClient(t, newRedisRegistry(t, rs.Addr()), WithBalancer(lb.RoundRobin()))
	waitRouted(t, cli, "Calc", a.addr, b.addr)

	// 2s per call: generous, as Freeze and Thaw are heavy on a loaded
	// machine; a call that hung on Redis would still be caught.
	ld := startLoad(t, cli, 8, "Calc.Add", FleetArgs{B: 1}, WithTimeout(2*time.Second))
	ld.waitAnswered(t, time.Time{}, 20, a.addr, b.addr)
	t0 := time.Now()
	rs.Freeze()
	thawed := false
	t.Cleanup(func() {
		if !thawed {
			rs.Thaw()
		}
	})

	// Clients that have never looked the service up (default registry
	// options: up to 2s per Redis operation).
	freshClient := func() *Client {
		rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { rdb.Close() })
		reg := registry.NewRedis(rdb, registry.WithTTL(fleetTTL), registry.WithHeartbeat(fleetHeartbeat))
		t.Cleanup(func() { reg.Close() })
		return newFleetClient(t, reg)
	}
	var r FleetReply
	start := time.Now()
	err := freshClient().Call("Calc.Add", FleetArgs{}, &r, WithTimeout(100*time.Millisecond))
	el := time.Since(start)
	t.Logf("first Call of a new client while Redis is frozen: %v after %v", err, el.Round(time.Millisecond))
	if err == nil || el > 250*time.Millisecond {
		t.Errorf("BUG: Call with a 100ms timeout while the first lookup hangs returned %v after %v; want an error within 100ms + margin", err, el)
	}
	start = time.Now()
	call := freshClient().Go("Calc.Add", FleetArgs{}, &r, nil, WithTimeout(100*time.Millisecond))
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Errorf("BUG: Go blocked its caller for %v while the first lookup hangs; want it to return at once", el)
	}
	select {
	case <-call.Done:
		t.Logf("Go call of a new client: %v after %v", call.Error, time.Since(start).Round(time.Millisecond))
	case <-time.After(fleetWait):
		t.Fatal("Go call never finished")
	}

	if d := time.Until(t0.Add(fleetTTL + 500*time.Millisecond)); d > 0 {
		time.Sleep(d) // Redis frozen for longer than a TTL
	}
	t1 := time.Now()
	rs.Thaw()
	thawed = true
	ld.waitAnswered(t, time.Now(), 20, a.addr, b.addr)
	recs := ld.stop()
	frozen := countByAddr(slicesFilter(recs, func(r callRec) bool { return r.start.After(t0) && r.end.Before(t1) }))
	t.Logf("while Redis was frozen for %v: %v", t1.Sub(t0).Round(time.Millisecond), frozen)
	if frozen[a.addr] == 0 || frozen[b.addr] == 0 {
		t.Errorf("while Redis was frozen calls reached %v, want both servers", frozen)
	}
	fails := failures(recs)
	logFailures(t, t0, fails)
	if len(fails) > 0 {
		t.Errorf("%d of %d calls failed while Redis was frozen; want 0", len(fails), len(recs))
	}
}
