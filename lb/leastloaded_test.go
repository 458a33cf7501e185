package lb

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manual clock for a leastLoaded.
type fakeClock struct {
	mu  sync.Mutex // guards now
	now time.Duration
}

func (c *fakeClock) Now() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += d
}

// newTestLeastLoaded returns a leastLoaded driven by a fake clock.
func newTestLeastLoaded() (*leastLoaded, *fakeClock) {
	b := LeastLoaded().(*leastLoaded)
	c := &fakeClock{now: time.Hour}
	b.now = c.Now
	return b, c
}

var errCall = errors.New("call failed")

// TestLeastLoadedAvoidsSlow runs 16 callers making 1600 calls in all, with
// real (slept) latencies, so in-flight counts behave as in a client.
func TestLeastLoadedAvoidsSlow(t *testing.T) {
	const (
		callers = 16
		calls   = 1600
		fast    = time.Millisecond
		slow    = fast + 30*time.Millisecond
	)
	for _, n := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("endpoints=%d", n), func(t *testing.T) {
			eps := endpoints(n)
			slowAddr := eps[n-1].Addr
			p := LeastLoaded().Build(eps)
			var mu sync.Mutex // guards counts
			counts := map[string]int{}
			var wg sync.WaitGroup
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range calls / callers {
						res, err := p.Pick(PickInfo{})
						if err != nil {
							t.Errorf("Pick() error = %v, want nil", err)
							return
						}
						lat := fast
						if res.Addr == slowAddr {
							lat = slow
						}
						time.Sleep(lat)
						res.Done(DoneInfo{Latency: lat})
						mu.Lock()
						counts[res.Addr]++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if share := float64(counts[slowAddr]) / calls; share >= 0.15 {
				t.Errorf("slow endpoint got %.3f of %d calls (counts %v), want < 0.15", share, calls, counts)
			} else {
				t.Logf("slow endpoint got %.3f of the calls (counts %v)", share, counts)
			}
		})
	}
}

func TestLeastLoadedAvoidsBusy(t *testing.T) {
	tests := []struct {
		name     string
		give     int // calls held in flight on the busy endpoint
		wantLess float64
	}{
		{name: "20 in flight", give: 20, wantLess: 0.02},
		{name: "3 in flight", give: 3, wantLess: 0.02},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := endpoints(4)
			busy := eps[0].Addr
			p := LeastLoaded().Build(eps)
			var held []PickResult
			for range tt.give { // force the busy one by excluding the others
				res, err := p.Pick(PickInfo{Exclude: addrsOf(eps[1:])})
				if err != nil || res.Addr != busy {
					t.Fatalf("Pick(Exclude others) = %+v, %v, want %s", res, err, busy)
				}
				held = append(held, res)
			}
			const picks = 2000
			got := 0
			for range picks {
				if pickAddr(t, p, PickInfo{}) == busy {
					got++
				}
			}
			if share := float64(got) / picks; share >= tt.wantLess {
				t.Errorf("endpoint with %d calls in flight got %.3f of the picks, want < %v", tt.give, share, tt.wantLess)
			}
			for _, res := range held {
				res.Done(DoneInfo{Latency: time.Millisecond})
			}
		})
	}
}

func TestLeastLoadedPenalizesErrors(t *testing.T) {
	eps := endpoints(3)
	bad := eps[0].Addr
	p := LeastLoaded().Build(eps)
	const picks = 3000
	got := 0
	for range picks {
		res, err := p.Pick(PickInfo{})
		if err != nil {
			t.Fatalf("Pick() error = %v, want nil", err)
		}
		d := DoneInfo{Latency: time.Millisecond}
		if res.Addr == bad {
			d = DoneInfo{Err: errCall, Latency: 100 * time.Microsecond} // fails fast
			got++
		}
		res.Done(d)
	}
	if share := float64(got) / picks; share >= 0.05 {
		t.Errorf("failing endpoint got %.3f of the picks, want < 0.05", share)
	}
}

func TestLeastLoadedStatsSurviveBuild(t *testing.T) {
	b := LeastLoaded()
	eps := endpoints(3)
	busy := eps[0].Addr
	p := b.Build(eps)
	var held []PickResult
	for range 10 {
		res, err := p.Pick(PickInfo{Exclude: addrsOf(eps[1:])})
		if err != nil {
			t.Fatalf("Pick(Exclude others) error = %v, want nil", err)
		}
		held = append(held, res)
	}

	p = b.Build(endpoints(4)) // membership change: one more endpoint
	for range 1000 {
		if a := pickAddr(t, p, PickInfo{}); a == busy {
			t.Fatalf("Pick() = %s, which has 10 calls in flight from the old picker", a)
		}
	}
	for _, res := range held { // calls of the old picker end
		res.Done(DoneInfo{Latency: time.Millisecond})
	}
	if got := b.(*leastLoaded).stats[busy].inflight.Load(); got != 0 {
		t.Errorf("in-flight calls on %s after all Done = %d, want 0", busy, got)
	}
}

func TestLeastLoadedDropsStats(t *testing.T) {
	tests := []struct {
		name         string
		giveAdvance  time.Duration
		giveInflight bool // a call still in flight on the removed address
		want         bool // stats of the removed address still held
	}{
		{name: "just removed", giveAdvance: time.Second, want: true},
		{name: "removed long ago", giveAdvance: statsRetention + time.Second, want: false},
		{name: "removed long ago but busy", giveAdvance: statsRetention + time.Second, giveInflight: true, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, clock := newTestLeastLoaded()
			eps := endpoints(3)
			gone := eps[2].Addr
			p := b.Build(eps)
			if tt.giveInflight {
				if _, err := p.Pick(PickInfo{Exclude: addrsOf(eps[:2])}); err != nil {
					t.Fatalf("Pick() error = %v, want nil", err)
				}
			}
			b.Build(eps[:2])
			clock.Advance(tt.giveAdvance)
			b.Build(eps[:2])
			if _, got := b.stats[gone]; got != tt.want {
				t.Errorf("after Build without %s for %v, stats held = %v, want %v", gone, tt.giveAdvance, got, tt.want)
			}
			if len(b.stats) < 2 {
				t.Errorf("Build dropped the stats of current endpoints: %v", b.stats)
			}
		})
	}
}

// TestLeastLoadedRetriesShunned checks that a slow endpoint's estimate decays
// while it gets no calls, so it is tried again once it may have recovered.
func TestLeastLoadedRetriesShunned(t *testing.T) {
	b, clock := newTestLeastLoaded()
	eps := endpoints(2)
	p := b.Build(eps)
	b.stats[eps[0].Addr].observe(DoneInfo{Latency: time.Millisecond}, clock.Now())
	b.stats[eps[1].Addr].observe(DoneInfo{Latency: 30 * time.Millisecond}, clock.Now())
	count := func() (n int) {
		for range 100 {
			res, err := p.Pick(PickInfo{})
			if err != nil {
				t.Fatalf("Pick() error = %v, want nil", err)
			}
			if res.Addr == eps[1].Addr {
				n++
			}
			res.Done(DoneInfo{Latency: time.Millisecond})
		}
		return n
	}
	if got := count(); got != 0 {
		t.Fatalf("slow endpoint got %d of 100 picks, want 0", got)
	}
	clock.Advance(time.Minute) // only the fast one got samples: the slow one decays
	if got := count(); got == 0 {
		t.Errorf("after a minute without calls the slow endpoint got %d of 100 picks, want > 0", got)
	}
}

func TestLoadStatsObserve(t *testing.T) {
	const ms = float64(time.Millisecond)
	tests := []struct {
		name    string
		give    []DoneInfo // at one instant
		advance time.Duration
		want    float64 // estimate in ns
	}{
		{name: "no sample", want: 0},
		{name: "first sample", give: []DoneInfo{{Latency: 10 * time.Millisecond}}, want: 10 * ms},
		{name: "zero latency", give: []DoneInfo{{}}, want: 1},
		{name: "negative latency", give: []DoneInfo{{Latency: -time.Second}}, want: 1},
		{
			name: "moving average",
			give: []DoneInfo{{Latency: 10 * time.Millisecond}, {Latency: 20 * time.Millisecond}},
			want: 10*ms + ewmaAlpha*10*ms,
		},
		{name: "first error", give: []DoneInfo{{Err: errCall, Latency: time.Microsecond}}, want: float64(errorFloor)},
		{
			name: "error after samples",
			give: []DoneInfo{{Latency: 10 * time.Millisecond}, {Err: errCall}},
			want: 10*ms + ewmaAlpha*(errorFactor*10*ms-10*ms),
		},
		{
			name:    "decay",
			give:    []DoneInfo{{Latency: 10 * time.Millisecond}},
			advance: ewmaDecay,
			want:    10 * ms / math.E,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s loadStats
			now := time.Hour
			for _, d := range tt.give {
				s.observe(d, now)
			}
			if got := s.latency(now + tt.advance); math.Abs(got-tt.want) > 1e-6*tt.want {
				t.Errorf("latency() after observe(%+v) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}
