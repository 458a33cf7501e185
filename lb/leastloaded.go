package lb

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// ewmaAlpha is the weight of a new latency sample in the moving average.
	ewmaAlpha = 0.3
	// ewmaDecay is the time constant with which an endpoint's latency
	// estimate decays toward zero while it gets no samples, so an endpoint
	// shunned for being slow is tried again after a while.
	ewmaDecay = 10 * time.Second
	// errorFactor and errorFloor make a failed call count as a sample of at
	// least errorFactor times the current estimate and at least errorFloor,
	// so an endpoint that keeps failing fast looks worse, not better.
	errorFactor = 4
	errorFloor  = 10 * time.Millisecond
	// statsRetention is how long the stats of an address no Build has
	// mentioned are kept (when idle) before a Build drops them.
	statsRetention = time.Minute
)

// LeastLoaded returns a Balancer that sends each call to the less loaded of
// two endpoints drawn at random ("power of two choices"). The load of an
// endpoint is (in-flight calls + 1) × its latency, an exponentially weighted
// moving average of the latencies reported through PickResult.Done; a failed
// call counts as a slow one. While either endpoint has no latency sample yet,
// the one with fewer calls in flight wins. A latency estimate decays toward
// zero while the endpoint gets no calls, so a shunned endpoint is retried.
//
// The statistics live in the Balancer, keyed by address, and survive Build:
// a new picker keeps what the old one learned. The stats of an address are
// dropped by a Build once no Build has included it for a minute and it has
// no call in flight. Use one LeastLoaded per client; endpoints with the same
// address share their statistics, whatever the service.
//
// Pick allocates nothing: the Done function of each endpoint is made once,
// by Build. Done must be called exactly once per successful Pick.
func LeastLoaded() Balancer {
	epoch := time.Now()
	return &leastLoaded{
		now:   func() time.Duration { return time.Since(epoch) },
		stats: make(map[string]*loadStats),
	}
}

// leastLoaded is the Balancer returned by LeastLoaded.
type leastLoaded struct {
	now func() time.Duration // monotonic clock; replaced in tests

	mu    sync.Mutex // guards stats (the map, and loadStats.seen)
	stats map[string]*loadStats
}

var (
	_ Balancer = (*leastLoaded)(nil)
	_ Picker   = (*llPicker)(nil)
)

// loadStats is what a leastLoaded knows about one address.
type loadStats struct {
	inflight atomic.Int64
	ewma     atomic.Uint64 // float64 bits of the latency estimate in ns; 0: no sample yet
	stamp    atomic.Int64  // now() of the last sample, as a time.Duration

	seen time.Duration // now() of the last Build that included it; guarded by leastLoaded.mu
}

// Name returns "least_loaded".
func (b *leastLoaded) Name() string { return "least_loaded" }

// Build returns a picker over eps that shares b's statistics.
func (b *leastLoaded) Build(eps []Endpoint) Picker {
	eps = snapshot(eps)
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	p := &llPicker{
		now:   b.now,
		addrs: addrsOf(eps),
		stats: make([]*loadStats, len(eps)),
		done:  make([]func(DoneInfo), len(eps)),
	}
	for i, a := range p.addrs {
		s := b.stats[a]
		if s == nil {
			s = &loadStats{}
			b.stats[a] = s
		}
		s.seen = now
		p.stats[i] = s
		p.done[i] = func(d DoneInfo) {
			s.inflight.Add(-1)
			s.observe(d, b.now())
		}
	}
	for a, s := range b.stats {
		if now-s.seen > statsRetention && s.inflight.Load() <= 0 {
			delete(b.stats, a)
		}
	}
	if len(eps) == 0 {
		return emptyPicker{}
	}
	return p
}

// latency returns the estimate at time now in ns, decayed for the time since
// the last sample, or 0 when there has been no sample.
func (s *loadStats) latency(now time.Duration) float64 {
	return s.decayed(s.ewma.Load(), now)
}

// decayed returns the estimate held in bits, decayed from the last sample to
// now.
func (s *loadStats) decayed(bits uint64, now time.Duration) float64 {
	v := math.Float64frombits(bits)
	// Ages under ewmaDecay/1000 would change v by under 0.1%: skip math.Exp,
	// the common case for an endpoint under load.
	if age := now - time.Duration(s.stamp.Load()); age > ewmaDecay/1000 && v > 0 {
		v *= math.Exp(-float64(age) / float64(ewmaDecay))
	}
	return v
}

// observe folds the outcome of one call into the latency estimate.
func (s *loadStats) observe(d DoneInfo, now time.Duration) {
	lat := float64(max(d.Latency, 0))
	for {
		bits := s.ewma.Load()
		old := s.decayed(bits, now)
		sample := lat
		if d.Err != nil {
			sample = max(sample, errorFactor*old, float64(errorFloor))
		}
		v := sample
		if bits != 0 {
			v = old + ewmaAlpha*(sample-old)
		}
		v = max(v, 1) // 0 means "no sample"
		if s.ewma.CompareAndSwap(bits, math.Float64bits(v)) {
			s.stamp.Store(int64(now))
			return
		}
	}
}

// llPicker is a snapshot of one membership. Its slices never change; the
// loadStats they point to are shared with the Balancer and other pickers.
type llPicker struct {
	now   func() time.Duration
	addrs []string         // not empty
	stats []*loadStats     // stats[i] belongs to addrs[i]
	done  []func(DoneInfo) // done[i] releases a call on addrs[i]
}

// Pick returns the less loaded of two random endpoints that are not
// excluded, counts a call in flight on it and returns its Done function.
func (p *llPicker) Pick(info PickInfo) (PickResult, error) {
	var i int
	if len(info.Exclude) == 0 {
		i = 0
		if n := len(p.addrs); n > 1 {
			a, b := rand.IntN(n), rand.IntN(n-1)
			if b >= a {
				b++
			}
			i = p.lighter(a, b)
		}
	} else {
		switch c := countAllowed(p.addrs, info.Exclude); c {
		case 0:
			return PickResult{}, ErrNoEndpoints
		case 1:
			i = nthAllowed(p.addrs, info.Exclude, 0)
		default:
			a, b := rand.IntN(c), rand.IntN(c-1)
			if b >= a {
				b++
			}
			i = p.lighter(nthAllowed(p.addrs, info.Exclude, a), nthAllowed(p.addrs, info.Exclude, b))
		}
	}
	p.stats[i].inflight.Add(1)
	return PickResult{Addr: p.addrs[i], Done: p.done[i]}, nil
}

// lighter returns whichever of endpoints a and b has the lower load, a on a
// tie.
func (p *llPicker) lighter(a, b int) int {
	sa, sb := p.stats[a], p.stats[b]
	ia, ib := max(sa.inflight.Load(), 0), max(sb.inflight.Load(), 0)
	now := p.now()
	la, lb := sa.latency(now), sb.latency(now)
	if la == 0 || lb == 0 { // an endpoint without samples: compare calls in flight
		if ib < ia {
			return b
		}
		return a
	}
	if float64(ib+1)*lb < float64(ia+1)*la {
		return b
	}
	return a
}
