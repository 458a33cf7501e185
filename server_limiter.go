package rpc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// limiter is the adaptive concurrency limit (WithAdaptiveLimit): a
// gradient controller in the manner of Envoy's adaptive concurrency
// filter. A server at its capacity that takes on more calls only makes
// them wait (for a CPU, a lock, a database connection), and once the wait
// nears callers' timeouts every call is late; the limiter keeps the number
// of running calls near what the server serves without a standing queue and
// refuses the rest at once with ErrOverloaded, before their args are
// decoded.
//
// The signal is queueing time: how much longer calls take, from the
// request read to the handler's return, than the same methods take on a
// quiet server. Each method's quiet latency is a moving average of calls
// that started with at most minLimit calls running. A lightly loaded
// server gives them all the time; a server that has been refusing calls
// for a while with none such, the limiter makes some by probing: for
// probeFor (every probeEvery at most) it admits only minLimit calls. A
// server that refuses nothing is never probed. Every window, the ratio r of the calls' total latency to their
// methods' total quiet latency moves the limit by the gradient
// (1+tolerance)/r, clamped to [0.5, 2], plus a headroom of its square root,
// once two windows in a row agree on the direction; it grows only while
// calls use at least half of it. Comparing averages per method keeps a
// changing mix of fast and slow methods, or a method with fast and slow
// cases, from reading as congestion.
type limiter struct {
	min, max int64
	// limit is the current limit of running calls.
	limit atomic.Int64

	// Window sums: latency and quiet latency (ns) of the calls finished in
	// the window, their count, and the most calls running at an admission.
	sumLat, sumBase atomic.Int64
	count           atomic.Int64
	peak            atomic.Int64
	// refused counts refusals since the last probe; lastQuiet is when a
	// quiet call last finished (unix ns).
	refused, lastQuiet atomic.Int64
	// quiet by method (*methodType -> *quietLatency).
	quiet sync.Map

	mu sync.Mutex // guards the fields below; held only to close a window
	// winStart is when the window began.
	winStart time.Time
	// probeUntil, when not zero, is when the running probe ends; saved is
	// the limit to restore then.
	probeUntil time.Time
	saved      int64
	nextProbe  time.Time
	// prevRatio is the previous window's latency ratio (0: none). The
	// limit moves only when the last two windows agree: down by the lower
	// ratio, up by the higher, so that one window slowed or sped up by
	// something else (a GC pause, a noisy neighbour) moves nothing.
	prevRatio float64
}

// Limiter tuning.
const (
	limitWindow     = 100 * time.Millisecond // how often the limit moves
	limitMinSamples = 8                      // fewer calls in a window move nothing
	limitTolerance  = 0.25                   // queueing up to 25% of the quiet latency is fine
	probeEvery      = 10 * time.Second       // ± 25% jitter
	probeFor        = 100 * time.Millisecond
	limitInitial    = 1000
)

// quietLatency is one method's average latency when the server is quiet,
// in nanoseconds (0: not known yet).
type quietLatency struct{ ns atomic.Int64 }

// newLimiter returns a limiter that keeps the limit within [lo, hi].
func newLimiter(lo, hi int, now time.Time) *limiter {
	l := &limiter{min: int64(lo), max: int64(hi)}
	l.limit.Store(int64(clampInt(limitInitial, lo, hi)))
	l.winStart = now
	l.nextProbe = now.Add(jitter(probeEvery))
	return l
}

// limitTicket is what the limiter keeps of one admitted call.
type limitTicket struct {
	q     *quietLatency // nil: the method is unknown
	start time.Time
	quiet bool // admitted with at most min calls running
}

// refuse reports whether a call that makes running calls run must be
// refused. A nil limiter refuses nothing.
func (l *limiter) refuse(running int64) bool {
	if l == nil {
		return false
	}
	if running > l.limit.Load() {
		l.refused.Add(1)
		return true
	}
	if running > l.peak.Load() {
		l.peak.Store(running) // racy max: good enough for "is the limit used"
	}
	return false
}

// admit starts measuring a call of method admitted with running calls
// running.
func (l *limiter) admit(s *Server, method []byte, running int64) limitTicket {
	if l == nil {
		return limitTicket{}
	}
	m, err := s.lookup(method)
	if err != nil {
		return limitTicket{} // answered at once with an error: nothing to learn
	}
	v, ok := l.quiet.Load(m)
	if !ok {
		v, _ = l.quiet.LoadOrStore(m, new(quietLatency))
	}
	return limitTicket{q: v.(*quietLatency), start: time.Now(), quiet: running <= l.min}
}

// done records the latency of a call admitted with tk.
func (l *limiter) done(tk *limitTicket) {
	if l == nil || tk.q == nil {
		return
	}
	now := time.Now()
	l.record(tk, now.Sub(tk.start), now)
}

// record adds a call of latency d, finished at now, to the window.
func (l *limiter) record(tk *limitTicket, lat time.Duration, now time.Time) {
	d := int64(lat)
	base := tk.q.ns.Load()
	if tk.quiet {
		l.lastQuiet.Store(now.UnixNano())
		if base == 0 {
			base = d
		} else {
			base += (d - base) / 8
		}
		tk.q.ns.Store(max(base, 1))
	}
	if base > 0 {
		l.sumLat.Add(d)
		l.sumBase.Add(base)
	}
	if l.count.Add(1)%limitMinSamples == 0 {
		l.update(now)
	}
}

// update closes the window if it is over and moves the limit.
func (l *limiter) update(now time.Time) {
	if !l.mu.TryLock() {
		return // another goroutine is at it
	}
	defer l.mu.Unlock()
	if now.Sub(l.winStart) < limitWindow {
		return
	}
	l.winStart = now
	sumLat, sumBase := l.sumLat.Swap(0), l.sumBase.Swap(0)
	l.count.Store(0)
	peak := l.peak.Swap(0)
	if !l.probeUntil.IsZero() {
		if now.Before(l.probeUntil) {
			return
		}
		l.probeUntil = time.Time{}
		l.limit.Store(l.saved)
		l.prevRatio = 0
		return // this window's calls ran under the probe: no signal
	}
	if now.After(l.nextProbe) {
		// Probe only a server that has been refusing calls, with no quiet
		// call to learn from for a while: its quiet latencies may be stale.
		l.nextProbe = now.Add(jitter(probeEvery))
		if l.refused.Swap(0) > 0 && now.Sub(time.Unix(0, l.lastQuiet.Load())) > probeEvery/2 {
			l.saved = l.limit.Load()
			l.probeUntil = now.Add(probeFor)
			l.limit.Store(l.min)
			return
		}
	}
	if sumBase == 0 || sumLat == 0 {
		l.prevRatio = 0
		return // no call of a method whose quiet latency is known
	}
	r := float64(sumLat) / float64(sumBase)
	prev := l.prevRatio
	l.prevRatio = r
	if prev == 0 {
		return
	}
	switch {
	case min(r, prev) > 1+limitTolerance:
		r = min(r, prev)
	case max(r, prev) < 1+limitTolerance:
		r = max(r, prev)
	default:
		return // the windows disagree
	}
	lim := float64(l.limit.Load())
	g := min(max((1+limitTolerance)/r, 0.5), 2)
	next := lim * g
	next += math.Sqrt(next)
	if next > lim && float64(peak) < lim/2 {
		next = lim // unused: no reason to grow
	}
	l.limit.Store(int64(clampInt(int(next), int(l.min), int(l.max))))
}

// overloadMessage is the text of an ErrOverloaded answer.
func (s *Server) overloadMessage() string {
	if s.limiter != nil && s.running.Load() <= int64(s.opts.maxCalls) {
		return fmt.Sprintf("rpc: server overloaded (adaptive limit of %d running calls)", s.limiter.limit.Load())
	}
	return fmt.Sprintf("rpc: server overloaded (%d calls running)", s.opts.maxCalls)
}

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }

// jitter returns d ± 25%.
func jitter(d time.Duration) time.Duration {
	return d - d/4 + rand.N(d/2+1)
}

// adaptiveMin is the least the adaptive limit goes down to: enough to
// keep every processor busy, and the concurrency of its probes.
func adaptiveMin() int { return max(4, runtime.GOMAXPROCS(0)) }
