package rpc

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/seedrpc/rpc/registry"
)

// newTestTarget returns the discovery state of service "Calc" of a client
// that is never started: no watch runs, and its clock is clock. The test
// feeds it instance lists with update.
func newTestTarget(clock *fakeClock, opts ...ClientOption) *target {
	o := defaultClientOptions()
	for _, opt := range opts {
		opt.applyClient(&o)
	}
	c := &Client{opts: o, now: clock.Now}
	return &target{c: c, service: "Calc", cancel: func() {}, ready: make(chan struct{}), health: make(map[string]*addrHealth)}
}

func instances(addrs ...string) []registry.Instance {
	insts := make([]registry.Instance, len(addrs))
	for i, a := range addrs {
		insts[i] = registry.Instance{Service: "Calc", Addr: a}
	}
	return insts
}

// routable returns the addresses the target picks, sorted, or the error of
// a pick.
func routable(t *testing.T, tg *target) ([]string, error) {
	t.Helper()
	seen := map[string]bool{}
	for range 12 { // round robin over at most 3 instances, 4 times
		addr, _, err := tg.pick(&callOptions{}, nil, true)
		if err != nil {
			return nil, err
		}
		seen[addr] = true
	}
	var out []string
	for a := range seen {
		out = append(out, a)
	}
	slices.Sort(out)
	return out, nil
}

func wantRoutable(t *testing.T, tg *target, when string, want ...string) {
	t.Helper()
	got, err := routable(t, tg)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("%s: routable = %v, %v; want %v", when, got, err, want)
	}
}

func TestTargetEjection(t *testing.T) {
	const base = time.Second
	clock := newFakeClock()
	tg := newTestTarget(clock, WithEjection(3, base))
	tg.update(instances("a", "b", "c"))
	fail := errors.New("connection reset")

	tg.outcome("a", fail)
	tg.outcome("a", fail)
	wantRoutable(t, tg, "after 2 of 3 failures", "a", "b", "c")
	tg.outcome("a", nil) // a success resets the count
	tg.outcome("a", fail)
	tg.outcome("a", fail)
	wantRoutable(t, tg, "after a success and 2 failures", "a", "b", "c")
	tg.outcome("a", fail)
	wantRoutable(t, tg, "after 3 consecutive failures", "b", "c")

	clock.Advance(base - time.Millisecond)
	wantRoutable(t, tg, "just before the ejection ends", "b", "c")
	clock.Advance(time.Millisecond)
	wantRoutable(t, tg, "when the ejection ends", "a", "b", "c")

	// Ejected again soon after: for twice as long.
	for range 3 {
		tg.outcome("a", fail)
	}
	wantRoutable(t, tg, "ejected a second time", "b", "c")
	clock.Advance(2*base - time.Millisecond)
	wantRoutable(t, tg, "just before the second ejection ends", "b", "c")
	clock.Advance(time.Millisecond)
	wantRoutable(t, tg, "when the second ejection ends", "a", "b", "c")

	// After a long healthy spell the period starts from base again.
	clock.Advance(31 * base)
	for range 3 {
		tg.outcome("a", fail)
	}
	clock.Advance(base)
	wantRoutable(t, tg, "base after a long healthy spell", "a", "b", "c")

	// The last instances are never ejected: with all ejected, all route.
	for _, addr := range []string{"a", "b", "c"} {
		for range 3 {
			tg.outcome(addr, fail)
		}
	}
	wantRoutable(t, tg, "every instance ejected", "a", "b", "c")
}

func TestTargetEjectionDisabled(t *testing.T) {
	clock := newFakeClock()
	tg := newTestTarget(clock, WithEjection(0, 0))
	tg.update(instances("a", "b"))
	for range 100 {
		tg.outcome("a", errors.New("timeout"))
	}
	wantRoutable(t, tg, "with ejection off", "a", "b")
}

// TestTargetEmptyGrace: a registry that suddenly lists nothing (Redis came
// back empty) is not believed for emptyGrace, unless every instance had
// announced its shutdown.
func TestTargetEmptyGrace(t *testing.T) {
	clock := newFakeClock()
	tg := newTestTarget(clock)
	tg.update(instances("a", "b"))
	tg.update(nil)
	wantRoutable(t, tg, "right after an empty list", "a", "b")
	if !tg.stale() {
		t.Error("stale() = false while routing on a list the registry no longer confirms")
	}
	clock.Advance(emptyGrace - time.Millisecond)
	wantRoutable(t, tg, "just before the grace ends", "a", "b")
	clock.Advance(time.Millisecond)
	if got, err := routable(t, tg); !errors.Is(err, ErrNoInstances) {
		t.Errorf("after the grace: routable = %v, %v; want ErrNoInstances", got, err)
	}

	// The instances come back during a grace: it ends.
	tg.update(instances("a"))
	tg.update(nil)
	clock.Advance(time.Second)
	tg.update(instances("b"))
	if tg.stale() {
		t.Error("stale() = true after the registry listed instances again")
	}
	clock.Advance(emptyGrace)
	wantRoutable(t, tg, "a new list during the grace", "b")

	// Every instance announced its shutdown: an empty list is believed.
	tg.drain("b")
	tg.update(nil)
	if got, err := routable(t, tg); !errors.Is(err, ErrNoInstances) {
		t.Errorf("empty list after every instance drained: routable = %v, %v; want ErrNoInstances", got, err)
	}
}

func TestTargetDrain(t *testing.T) {
	clock := newFakeClock()
	tg := newTestTarget(clock)
	tg.update(instances("a", "b"))
	tg.drain("a")
	wantRoutable(t, tg, "a draining", "b")
	clock.Advance(drainMark)
	wantRoutable(t, tg, "after the drain mark", "a", "b")
	tg.drain("unknown") // not listed: nothing happens
	wantRoutable(t, tg, "draining an unknown address", "a", "b")
}

func TestTargetPickFilterAndTried(t *testing.T) {
	clock := newFakeClock()
	tg := newTestTarget(clock)
	insts := instances("a", "b", "c")
	for i := range insts {
		insts[i].Meta = map[string]string{"zone": fmt.Sprint(i % 2)}
	}
	tg.update(insts)
	for range 6 {
		addr, _, err := tg.pick(&callOptions{filter: map[string]string{"zone": "0"}}, []string{"a"}, true)
		if err != nil || addr != "c" {
			t.Fatalf("pick(zone=0, tried a) = %q, %v; want c", addr, err)
		}
	}
	// Everything matching was tried: a second go at one of them.
	addr, _, err := tg.pick(&callOptions{filter: map[string]string{"zone": "1"}}, []string{"b"}, true)
	if err != nil || addr != "b" {
		t.Errorf("pick(zone=1, tried b) = %q, %v; want b again", addr, err)
	}
	if _, _, err := tg.pick(&callOptions{filter: map[string]string{"zone": "9"}}, nil, true); !errors.Is(err, ErrNoInstances) {
		t.Errorf("pick(zone=9) error = %v, want ErrNoInstances", err)
	}
}
