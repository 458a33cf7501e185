package rpc

// Integration tests of the cluster client (issue 4): balancers over real
// servers, failover when a server process is killed, graceful drain,
// hedging, retries within a budget, outlier ejection and metadata filters.

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seedrpc/rpc/lb"
	"github.com/seedrpc/rpc/registry"
)

func TestFleetRoundRobinShares(t *testing.T) {
	cli, addrs := startRoundRobinFleet(t)

	const callers, n = 16, 150
	recs := callN(t, cli, callers, n, plainArgs, WithTimeout(2*time.Second))
	if f := failures(recs); len(f) > 0 {
		logFailures(t, recs[0].start, f)
		t.Fatalf("%d calls failed", len(f))
	}
	counts := countByAddr(recs)
	want := callers * n / 3
	for _, a := range addrs {
		if d := counts[a] - want; d < -1 || d > 1 {
			t.Errorf("%s answered %d of %d concurrent calls, want %d±1", a, counts[a], callers*n, want)
		}
	}
	t.Logf("round robin, %d callers: %v", callers, counts)
}

func TestFleetConsistentHash(t *testing.T) {
	mem := newMemoryRegistry(t)
	var fs []*fleetServer
	var addrs []string
	for range 4 {
		s := startFleetServer(t, mem, "Calc", 0)
		fs = append(fs, s)
		addrs = append(addrs, s.addr)
	}
	cli := newFleetClient(t, mem, WithBalancer(lb.ConsistentHash()))
	// Wait until the client's ring has all 4 servers.
	deadline := time.Now().Add(fleetWait)
	for {
		seen := map[string]bool{}
		for k := range 40 {
			var r FleetReply
			if err := cli.Call("Calc.Add", FleetArgs{}, &r, WithHashKey(fmt.Sprint("warm-", k)), WithTimeout(time.Second)); err == nil {
				seen[r.Addr] = true
			}
		}
		if len(seen) == 4 || time.Now().After(deadline) {
			break
		}
	}

	owner := map[string]string{}
	for round := range 5 {
		for k := range 40 {
			key := fmt.Sprint("user-", k)
			var r FleetReply
			if err := cli.Call("Calc.Add", FleetArgs{A: k}, &r, WithHashKey(key), WithTimeout(time.Second)); err != nil {
				t.Fatalf("key %s: %v", key, err)
			}
			if round == 0 {
				owner[key] = r.Addr
			} else if owner[key] != r.Addr {
				t.Fatalf("key %s went to %s, then to %s", key, owner[key], r.Addr)
			}
		}
	}
	perServer := map[string]int{}
	for _, a := range owner {
		perServer[a]++
	}
	if len(perServer) < 3 {
		t.Errorf("40 keys landed on %d servers (%v), want at least 3 of 4", len(perServer), perServer)
	}
	t.Logf("40 keys over 4 servers: %v", perServer)

	// One server leaves: only its keys move.
	gone := fs[0].addr
	fs[0].shutdown(t)
	deadline = time.Now().Add(fleetWait)
	for k := 0; k < 40; k++ {
		key := fmt.Sprint("user-", k)
		var r FleetReply
		if err := cli.Call("Calc.Add", FleetArgs{A: k}, &r, WithHashKey(key), WithTimeout(time.Second)); err != nil {
			t.Fatalf("after shutdown, key %s: %v", key, err)
		}
		if r.Addr == gone {
			if time.Now().After(deadline) {
				t.Fatalf("key %s still routed to the stopped server", key)
			}
			k-- // the client has not seen the change yet: ask again
			continue
		}
		if owner[key] != gone && owner[key] != r.Addr {
			t.Errorf("key %s moved from %s to %s although its server stayed", key, owner[key], r.Addr)
		}
	}
}

func TestFleetLeastLoaded(t *testing.T) {
	mem := newMemoryRegistry(t)
	fast1 := startFleetServer(t, mem, "Calc", 2*time.Millisecond)
	fast2 := startFleetServer(t, mem, "Calc", 2*time.Millisecond)
	slow := startFleetServer(t, mem, "Calc", 32*time.Millisecond)
	cli := newFleetClient(t, mem, WithBalancer(lb.LeastLoaded()))
	waitRouted(t, cli, "Calc", fast1.addr, fast2.addr, slow.addr)

	start := time.Now()
	recs := callN(t, cli, 16, 100, plainArgs, WithTimeout(2*time.Second))
	if f := failures(recs); len(f) > 0 {
		logFailures(t, start, f)
		t.Fatalf("%d calls failed", len(f))
	}
	counts := countByAddr(recs)
	share := float64(counts[slow.addr]) / float64(len(recs))
	t.Logf("least loaded, 1600 calls from 16 callers in %v: slow %d (%.1f%%), fast %d and %d",
		time.Since(start).Round(time.Millisecond), counts[slow.addr], 100*share, counts[fast1.addr], counts[fast2.addr])
	if share >= 0.15 {
		t.Errorf("the server 30ms slower got %.1f%% of the calls, want < 15%%", 100*share)
	}
}

// TestFleetKill9UnderLoad kills one of three child server processes under
// 8 concurrent callers: only calls in flight when it died fail (each caller
// loses at most the one call it had there), none started after the client
// learned of the death, none a second later, and none waits past its
// timeout. With SEEDRPC_TEST_BUSY=1 a CPU burner runs alongside.
func TestFleetKill9UnderLoad(t *testing.T) {
	rs := startRedis(t)
	var kids []*childServer
	var addrs []string
	for range 3 {
		c := startChild(t, childConfig{redis: rs.Addr(), delay: 2 * time.Millisecond})
		kids = append(kids, c)
		addrs = append(addrs, c.addr)
	}
	cli := newFleetClient(t, newRedisRegistry(t, rs.Addr()), WithBalancer(lb.RoundRobin()))
	waitRouted(t, cli, "Calc", addrs...)
	busy := busyCPU(t)

	const callers = 8
	const timeout = time.Second
	stalls := watchStalls(t)
	ld := startLoad(t, cli, callers, "Calc.Add", FleetArgs{B: 1}, WithTimeout(timeout))
	ld.waitAnswered(t, time.Time{}, 20, addrs...)
	victim := kids[0]
	t0 := time.Now()
	victim.kill()
	dead := time.Now()
	ld.waitAnswered(t, t0.Add(time.Second), 50) // calls a second after the kill
	recs := ld.stop()
	stall := stalls.stop()

	fails := failures(recs)
	logFailures(t, t0, fails)
	k := countKill(recs, t0, victim.addr)
	checkKill(t, k, t0, callers)
	var maxDur time.Duration
	for _, r := range recs {
		maxDur = max(maxDur, r.end.Sub(r.start))
	}
	// A test process frozen for a while (a loaded machine) answers late:
	// that is not the client's doing.
	if maxDur > timeout+100*time.Millisecond+stall {
		t.Errorf("a call took %v, past its %v timeout (the test process stalled for %v at most)", maxDur, timeout, stall)
	}
	late := slicesFilter(recs, func(r callRec) bool { return r.start.After(t0.Add(time.Second)) })
	if len(late) == 0 {
		t.Error("no calls a second after the kill")
	}
	for _, r := range late {
		if r.addr == victim.addr || r.err != nil && !k.elsewhere(r) {
			t.Errorf("a call a second after the kill: answered by %q, error %v", r.addr, r.err)
			break
		}
	}
	t.Logf("kill -9 of 1 of 3 under %d callers (busy CPU: %v): %d calls, %d failed (%d on the survivors, timeouts); in flight at the signal %d, when the client learned %d (%v after the signal; reaped after %v); failed calls started after the signal: %d; max call %v, longest stall %v",
		callers, busy, len(recs), len(k.fails), len(fails)-len(k.fails), k.atSignal, k.inFlight, k.learned.Sub(t0).Round(time.Millisecond),
		dead.Sub(t0).Round(time.Millisecond), k.startedAfter, maxDur.Round(time.Millisecond), stall.Round(time.Millisecond))
}

// killCount counts calls around the kill of victim at t0.
type killCount struct {
	victim string
	// fails are the calls the kill failed: every failed call but timeouts
	// on the survivors (those are a loaded machine's, see elsewhere).
	fails []callRec
	// learned is when the client first failed a call because of the death
	// (t0 if none failed).
	learned time.Time
	// atSignal and inFlight count the calls in flight at t0 and at learned.
	atSignal, inFlight int
	// startedAfter counts failed calls started after t0.
	startedAfter int
	// perCaller counts failed calls by caller.
	perCaller map[int]int
}

// elsewhere reports whether r timed out on a surviving instance: the
// survivor or the machine was slow, which no failover can help.
func (k *killCount) elsewhere(r callRec) bool {
	var ce *callErr
	return errors.Is(r.err, ErrTimeout) && errors.As(r.err, &ce) && ce.addr != "" && ce.addr != k.victim
}

func countKill(recs []callRec, t0 time.Time, victim string) killCount {
	k := killCount{victim: victim, learned: t0, perCaller: map[int]int{}}
	for _, r := range recs {
		if r.err != nil && !k.elsewhere(r) {
			if len(k.fails) == 0 || r.end.Before(k.learned) {
				k.learned = r.end
			}
			k.fails = append(k.fails, r)
		}
	}
	for _, r := range recs {
		if !r.start.After(t0) && r.end.After(t0) {
			k.atSignal++
		}
		if !r.start.After(k.learned) && !r.end.Before(k.learned) {
			k.inFlight++
		}
	}
	for _, f := range k.fails {
		k.perCaller[f.caller]++
		if f.start.After(t0) {
			k.startedAfter++
		}
	}
	return k
}

// checkKill checks that only calls in flight when the kill became known
// failed. The kill is not an instant: the process dies some time after
// the signal, and the client hears of it when the kernel resets the
// connections. A call sent there meanwhile cannot be told from one the
// server ran, so it may fail: it was in flight when the death became known.
// Nothing started after that may fail, and every caller loses at most that
// one call.
func checkKill(t *testing.T, k killCount, t0 time.Time, callers int) {
	t.Helper()
	for _, f := range k.fails {
		if f.start.After(k.learned) {
			t.Errorf("call of caller %d started %v after the kill, %v after the client learned of it, failed: %v",
				f.caller, f.start.Sub(t0).Round(time.Millisecond), f.start.Sub(k.learned).Round(time.Millisecond), f.err)
		}
	}
	for c, n := range k.perCaller {
		if n > 1 {
			t.Errorf("caller %d lost %d calls; at most the one in flight may fail", c, n)
		}
	}
	if len(k.fails) > k.inFlight || len(k.fails) > callers {
		t.Errorf("%d calls failed; at most the %d in flight when the death became known may (%d callers)", len(k.fails), k.inFlight, callers)
	}
}

// TestFleetRollingRestart replaces each of three servers in turn (start a
// new one, gracefully shut an old one down) under 16 callers: zero failed
// calls.
func TestFleetRollingRestart(t *testing.T) {
	rs := startRedis(t)
	sreg := newRedisRegistry(t, rs.Addr())
	var old []*fleetServer
	for range 3 {
		old = append(old, startFleetServer(t, sreg, "Calc", 5*time.Millisecond))
	}
	cli := newFleetClient(t, newRedisRegistry(t, rs.Addr()), WithBalancer(lb.RoundRobin()))
	waitRouted(t, cli, "Calc", old[0].addr, old[1].addr, old[2].addr)

	ld := startLoad(t, cli, 16, "Calc.Add", FleetArgs{B: 1}, WithTimeout(2*time.Second))
	t0 := time.Now()
	ld.waitAnswered(t, t0, 20, old[0].addr, old[1].addr, old[2].addr)
	var fresh []*fleetServer
	for _, s := range old {
		n := startFleetServer(t, sreg, "Calc", 5*time.Millisecond)
		fresh = append(fresh, n)
		ld.waitAnswered(t, time.Now(), 5, n.addr) // the client routes to it
		start := time.Now()
		s.shutdown(t)
		t.Logf("Shutdown of %s under load took %v (%d calls served)", s.addr, time.Since(start).Round(time.Millisecond), s.calc.calls.Load())
		ld.waitAnswered(t, time.Now(), 20)
	}
	end := time.Now()
	ld.waitAnswered(t, end, 10, fresh[0].addr, fresh[1].addr, fresh[2].addr)
	recs := ld.stop()
	fails := failures(recs)
	logFailures(t, t0, fails)
	if len(fails) > 0 {
		t.Errorf("%d of %d calls failed during a rolling restart; want 0", len(fails), len(recs))
	}
	after := countByAddr(slicesFilter(recs, func(r callRec) bool { return r.start.After(end) }))
	for _, s := range old {
		if after[s.addr] != 0 {
			t.Errorf("stopped server %s answered calls after the restart", s.addr)
		}
	}
	for _, s := range fresh {
		if after[s.addr] == 0 {
			t.Errorf("new server %s got no calls after the restart (%v)", s.addr, after)
		}
	}
	t.Logf("rolling restart: %d calls, 0 allowed to fail, %d failed", len(recs), len(fails))
}

// TestFleetHedge: the first instance tried is slow; a hedge sent after 20ms
// to the fast one wins, and the slow handler sees its ctx cancelled.
func TestFleetHedge(t *testing.T) {
	mem := newMemoryRegistry(t)
	slow := startFleetServer(t, mem, "Calc", 500*time.Millisecond, withMeta("order", "0"))
	fast := startFleetServer(t, mem, "Calc", 0, withMeta("order", "1"))
	cli := newFleetClient(t, mem, WithBalancer(orderedBalancer{}))

	// Without a hedge the ordered balancer sends everything to the slow one.
	var r FleetReply
	start := time.Now()
	if err := cli.Call("Calc.Add", FleetArgs{A: 1}, &r, WithTimeout(2*time.Second)); err != nil || r.Addr != slow.addr {
		t.Fatalf("unhedged call: answered by %s, %v; want %s", r.Addr, err, slow.addr)
	}
	t.Logf("unhedged call took %v", time.Since(start).Round(time.Millisecond))

	const n = 5
	for i := range n {
		start := time.Now()
		var r FleetReply
		err := cli.Call("Calc.Add", FleetArgs{A: i, B: 1}, &r, WithHedge(20*time.Millisecond), WithTimeout(2*time.Second))
		el := time.Since(start)
		if err != nil || r.Addr != fast.addr || r.Sum != i+1 {
			t.Fatalf("hedged call %d: %+v, %v; want an answer from %s", i, r, err, fast.addr)
		}
		if el > 250*time.Millisecond {
			t.Errorf("hedged call %d took %v, want about 20ms (the slow server takes 500ms)", i, el)
		}
		t.Logf("hedged call %d took %v", i, el.Round(time.Millisecond))
	}
	poll(t, fleetWait, "the losing handlers to be cancelled", func() bool { return slow.calc.cancelled.Load() >= n })
	if got := slow.calc.cancelled.Load(); got != n {
		t.Errorf("the slow server saw %d of %d losing handlers cancelled", got, n)
	}

	// A fast first answer sends no hedge.
	before := fast.calc.calls.Load()
	noHedge := startFleetServer(t, mem, "Calc", 0, withMeta("order", "-")) // sorts first
	waitRouted(t, cli, "Calc", noHedge.addr)
	for range 5 {
		if err := cli.Call("Calc.Add", FleetArgs{}, &r, WithHedge(100*time.Millisecond), WithTimeout(time.Second)); err != nil || r.Addr != noHedge.addr {
			t.Fatalf("call: answered by %s, %v; want %s", r.Addr, err, noHedge.addr)
		}
	}
	if got := fast.calc.calls.Load() - before; got != 0 {
		t.Errorf("%d hedges sent although the first answer came at once", got)
	}
}

// TestFleetRetryBudget: with 5 retries and a 300ms timeout against servers
// that are blackholed, slow or refusing, no call exceeds 300ms plus a small
// margin.
func TestFleetRetryBudget(t *testing.T) {
	const timeout, margin = 300 * time.Millisecond, 150 * time.Millisecond
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, reg registry.Registry)
		wantErr error
	}{
		{"blackholed", func(t *testing.T, reg registry.Registry) {
			for range 3 {
				registerFake(t, reg, "Calc", startFakeServer(t, fakeBlackhole).addr())
			}
		}, ErrTimeout},
		{"slow", func(t *testing.T, reg registry.Registry) {
			for range 3 {
				startFleetServer(t, reg, "Calc", 2*time.Second)
			}
		}, ErrTimeout},
		{"dropping and refusing", func(t *testing.T, reg registry.Registry) {
			registerFake(t, reg, "Calc", startFakeServer(t, fakeDrop).addr())
			registerFake(t, reg, "Calc", deadAddr(t))
			registerFake(t, reg, "Calc", startFakeServer(t, fakeBlackhole).addr())
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMemoryRegistry(t)
			tc.setup(t, mem)
			cli := newFleetClient(t, mem, WithBalancer(lb.RoundRobin()), WithEjection(0, 0))
			recs := callN(t, cli, 8, 3, plainArgs, WithRetries(5), WithTimeout(timeout))
			var maxDur time.Duration
			for _, r := range recs {
				d := r.end.Sub(r.start)
				if d > timeout+margin {
					// The error says when the call's timer fired: if that is
					// near 300ms, the caller was held up after it.
					t.Errorf("a call with 5 retries and a %v timeout took %v: %v", timeout, d, r.err)
				}
				maxDur = max(maxDur, d)
				if r.err == nil {
					t.Errorf("a call succeeded against %s servers", tc.name)
				} else if tc.wantErr != nil && !errors.Is(r.err, tc.wantErr) {
					t.Errorf("error %v, want %v", r.err, tc.wantErr)
				}
			}
			t.Logf("%d calls, longest %v; e.g. %v", len(recs), maxDur.Round(time.Millisecond), recs[0].err)
		})
	}
}

// TestFleetConnRefusedRetried: an instance whose address refuses
// connections is skipped by itself; every call succeeds without retries
// being asked for.
func TestFleetConnRefusedRetried(t *testing.T) {
	mem := newMemoryRegistry(t)
	registerFake(t, mem, "Calc", deadAddr(t))
	registerFake(t, mem, "Calc", deadAddr(t))
	good := startFleetServer(t, mem, "Calc", 0)
	cli := newFleetClient(t, mem, WithBalancer(lb.RoundRobin()), WithEjection(0, 0))
	for i := range 30 {
		var r FleetReply
		start := time.Now()
		if err := cli.Call("Calc.Add", FleetArgs{A: i}, &r, WithTimeout(2*time.Second)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if r.Addr != good.addr {
			t.Fatalf("call %d answered by %s", i, r.Addr)
		}
		if el := time.Since(start); el > 500*time.Millisecond {
			t.Errorf("call %d took %v", i, el)
		}
	}
}

// TestFleetOutlierEjection: an instance that fails every call is ejected
// after n consecutive failures, probed back after the ejection period, and
// ejected for longer the next time; timeouts count too; the last instance
// is never ejected.
func TestFleetOutlierEjection(t *testing.T) {
	t.Run("dropping", func(t *testing.T) {
		mem := newMemoryRegistry(t)
		bad := startFakeServer(t, fakeDrop)
		registerFake(t, mem, "Calc", bad.addr())
		a := startFleetServer(t, mem, "Calc", 0)
		b := startFleetServer(t, mem, "Calc", 0)
		const base = 500 * time.Millisecond
		cli := newFleetClient(t, mem, WithBalancer(lb.RoundRobin()), WithEjection(3, base))
		clock := newFakeClock()
		cli.now = clock.Now // before the first call creates the target
		call := func() {
			t.Helper()
			var r FleetReply
			if err := cli.Call("Calc.Add", FleetArgs{}, &r, WithRetries(2), WithTimeout(time.Second)); err != nil {
				t.Fatalf("call with retries failed: %v", err)
			}
			if r.Addr != a.addr && r.Addr != b.addr {
				t.Fatalf("answered by %s", r.Addr)
			}
		}
		// callsUntil calls until the bad instance saw want requests and
		// returns the clock's time then.
		callsUntil := func(want int64) time.Time {
			t.Helper()
			poll(t, 5*time.Second, fmt.Sprintf("%d requests to the bad instance", want), func() bool {
				call()
				return bad.requests.Load() >= want
			})
			return clock.Now()
		}
		// callsUntilEjected calls until the bad instance was ejected the
		// nth time and returns the clock's time then. The client's own
		// count is read: the fake counts connections that carried data,
		// and a call written on a connection the fake already closed fails
		// (and counts towards ejection) without reaching it.
		callsUntilEjected := func(nth int) time.Time {
			t.Helper()
			poll(t, 5*time.Second, fmt.Sprintf("ejection %d of the bad instance", nth), func() bool {
				call()
				v, ok := cli.targets.Load("Calc")
				if !ok {
					return false
				}
				tg := v.(*target)
				tg.mu.Lock()
				defer tg.mu.Unlock()
				h := tg.health[bad.addr()]
				return h != nil && h.ejections >= nth
			})
			return clock.Now()
		}
		// quiet makes 30 calls and checks the bad instance gets none.
		quiet := func(what string) {
			t.Helper()
			// Let data already on its way to the fake (a request written
			// just before the ejection) be counted first.
			n := bad.requests.Load()
			for range 20 {
				time.Sleep(10 * time.Millisecond)
				if m := bad.requests.Load(); m != n {
					n = m
					continue
				}
				break
			}
			for range 30 {
				call()
			}
			if got := bad.requests.Load(); got != n {
				t.Fatalf("an ejected instance got %d requests %s", got-n, what)
			}
		}

		ejected := callsUntilEjected(1)
		quiet("right after its ejection")
		clock.Advance(base - time.Millisecond)
		quiet("just before the ejection period ended")
		clock.Advance(time.Millisecond)
		probed := callsUntil(bad.requests.Load() + 1)
		if d := probed.Sub(ejected); d < base {
			t.Errorf("probed back after %v, before the ejection period %v ended", d, base)
		}
		ejected = callsUntilEjected(2) // 3 more consecutive failures
		clock.Advance(2*base - time.Millisecond)
		quiet("before the second ejection period, 2×base, ended")
		clock.Advance(time.Millisecond)
		probed = callsUntil(bad.requests.Load() + 1)
		if d := probed.Sub(ejected); d < 2*base {
			t.Errorf("second ejection lasted %v, want it to grow to %v", d, 2*base)
		}
	})

	t.Run("timeouts", func(t *testing.T) {
		mem := newMemoryRegistry(t)
		registerFake(t, mem, "Calc", startFakeServer(t, fakeBlackhole).addr())
		good := startFleetServer(t, mem, "Calc", 0)
		cli := newFleetClient(t, mem, WithBalancer(lb.RoundRobin()), WithEjection(2, 5*time.Second))
		var timeouts int
		for i := range 40 {
			var r FleetReply
			err := cli.Call("Calc.Add", FleetArgs{A: i}, &r, WithTimeout(100*time.Millisecond))
			switch {
			case errors.Is(err, ErrTimeout):
				timeouts++
			case err != nil:
				t.Fatalf("call %d: %v", i, err)
			case r.Addr != good.addr:
				t.Fatalf("call %d answered by %s", i, r.Addr)
			}
		}
		if timeouts != 2 {
			t.Errorf("%d of 40 calls timed out on the blackholed instance; want it ejected after 2", timeouts)
		}
	})

	t.Run("last instance", func(t *testing.T) {
		mem := newMemoryRegistry(t)
		bad := startFakeServer(t, fakeDrop)
		registerFake(t, mem, "Calc", bad.addr())
		cli := newFleetClient(t, mem, WithEjection(2, 10*time.Second))
		for i := range 10 {
			var r FleetReply
			err := cli.Call("Calc.Add", FleetArgs{}, &r, WithTimeout(time.Second))
			if err == nil || errors.Is(err, ErrNoInstances) || errors.Is(err, ErrTimeout) {
				t.Fatalf("call %d to the only (failing) instance: %v; want a transport error, not ejection", i, err)
			}
		}
		// Every call above failed with a transport error, not
		// ErrNoInstances: the instance was tried each time. The fake counts
		// connections that carried data, not calls (a connection the fake
		// has closed may still take a call or two before the client sees
		// the close), so it must only have been reached at all.
		if got := bad.requests.Load(); got < 1 {
			t.Errorf("the last instance saw no data in 10 calls; it must never be ejected")
		}
	})
}

// TestFleetFilter: WithFilter("version", "v2") routes only to servers
// registered with the label version=v2, as a call option and as a client
// default.
func TestFleetFilter(t *testing.T) {
	rs := startRedis(t)
	sreg := newRedisRegistry(t, rs.Addr())
	var v1, v2 []string
	for range 2 {
		v1 = append(v1, startFleetServer(t, sreg, "Calc", 0, withMeta("version", "v1")).addr)
		v2 = append(v2, startFleetServer(t, sreg, "Calc", 0, withMeta("version", "v2", "zone", "a")).addr)
	}
	creg := newRedisRegistry(t, rs.Addr())
	cli := newFleetClient(t, creg, WithBalancer(lb.RoundRobin()))
	waitRouted(t, cli, "Calc", append(slices.Clone(v1), v2...)...)

	check := func(cli *Client, want []string, opts ...CallOption) {
		t.Helper()
		counts := map[string]int{}
		for i := range 40 {
			var r FleetReply
			if err := cli.Call("Calc.Add", FleetArgs{A: i}, &r, append(opts, WithTimeout(time.Second))...); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			counts[r.Addr]++
		}
		for a := range counts {
			if !slices.Contains(want, a) {
				t.Errorf("filtered calls reached %s; want only %v (got %v)", a, want, counts)
			}
		}
		for _, a := range want {
			if counts[a] == 0 {
				t.Errorf("no filtered call reached %s (%v)", a, counts)
			}
		}
	}
	check(cli, v2, WithFilter("version", "v2"))
	check(cli, v1, WithFilter("version", "v1"))
	check(cli, v2, WithFilter("version", "v2"), WithFilter("zone", "a"))

	v1cli := newFleetClient(t, creg, WithBalancer(lb.RoundRobin()), WithFilter("version", "v1"))
	check(v1cli, v1)

	start := time.Now()
	var r FleetReply
	err := cli.Call("Calc.Add", FleetArgs{}, &r, WithFilter("version", "v3"))
	if !errors.Is(err, ErrNoInstances) || time.Since(start) > 100*time.Millisecond {
		t.Errorf("call filtered to no instance: %v after %v; want ErrNoInstances at once", err, time.Since(start))
	}
}
