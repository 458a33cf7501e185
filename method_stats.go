package rpc

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// methodStats counts the calls of one method for DebugHandler. The method
// table points to it, allocated at Register time (apart from the table's
// read-mostly fields, which its counters would otherwise keep evicting
// from other cores' caches), so recording a
// call costs one or two atomic adds (its duration is measured anyway, to
// decide where calls run): no clock read, no lookup, no lock, no
// allocation. Percentiles are computed only when a page is
// rendered.
type methodStats struct {
	errors  atomic.Uint64 // calls answered with a status other than OK
	latency latencyHistogram
	// inlineAvg is a moving average (ns) of how long the method's handler
	// took when it ran on its connection's reading goroutine (and on
	// workers while it was not quick); see quick.
	inlineAvg atomic.Int64
	// probes counts the lone calls of the method while it was not quick
	// (probeInline).
	probes atomic.Uint32
}

// record counts a call that took d (decoding its args and running its
// handler, or its interceptors) and ended with status. The call's serve
// records it with the duration it measures anyway (serverCall.ran), so the
// count costs no clock reading of its own.
func (s *methodStats) record(d time.Duration, status wire.Status) {
	if s == nil {
		return
	}
	s.latency.add(d)
	if status != wire.StatusOK {
		s.errors.Add(1)
	}
}

// batchQuick: a method whose handler took less than this on average
// (a moving average over its last eight or so runs on its connection's
// reading goroutine) is quick, and its calls may run on the reading
// goroutine while other requests wait behind them (server_inline.go); a
// method that is not quick runs on workers, but for a probe now and then
// (probeInline). Only inline runs count while a method is quick (see
// ranOnWorker): a call on a worker of a busy server mostly waits for a
// core, which says nothing of the handler; and only the handler (with its
// args' decoding) is timed, not the writing of its response. An average,
// not the last run, in which a run counts as at most slowRunCap: see there.
var batchQuick = 50 * time.Microsecond // tests change it

// slowRunCap is the most a run counts as in a method's average, in
// batchQuicks: one run moves the average by at most batchQuick/4, so one
// slow run cannot make slow a method that averages under 6/7 of
// batchQuick (the average a becomes at most 7a/8 + batchQuick/4), nor can
// four in a row one that averages under a tenth of it; five or six slow
// runs in a row do (six from an average near zero). Such a short run of
// slow runs is most often a pause of the process or its thread (a GC, a
// preemption, the VM taking the core away), not a slow handler. Counted in
// full, every one of them sent all the requests buffered behind it to
// workers until runs there brought the average down: bursts of hundreds
// of worker goroutines at 256 callers, each a stack every garbage
// collection scanned. With a cap of 4 the bursts still came (two or three
// paused runs in a row are not rare on a busy machine) and the server's
// CPU per call at 256 callers was 6.4–6.5 µs; with 2, 5.9–6.0, medians
// of alternated rounds (docs/BENCHMARKS.md, issue 15, sixth and seventh
// steps). A handler that is really slow (two batchQuicks or more a run)
// costs the calls behind it up to six inline runs, each bounded by the
// inline guard, before its calls go to workers; one just over batchQuick
// takes more runs to tell from a quick one (about fourteen at 1.2 ×
// batchQuick), each holding the calls behind it only that long. Its runs on
// workers (ranOnWorker) then keep it slow.
const slowRunCap = 2

// ranInline notes an inline run of the method whose handler (with the
// decoding of its args) took d. Concurrent runs may lose an update: it is
// an estimate.
func (s *methodStats) ranInline(d time.Duration) {
	if s != nil {
		d = min(d, slowRunCap*batchQuick)
		old := s.inlineAvg.Load()
		s.inlineAvg.Store(old - old/8 + int64(d)/8)
	}
}

// ranOnWorker notes a run of the method on a worker that took d, while
// the method is not quick: such a method runs only on workers, and these
// runs are what can show it quick again (a handler slow only while its
// cache was cold). While the method is quick they are not counted: on a
// busy server a run on a worker also counts the time its goroutine waited
// for a core, and would take the batching away from quick methods.
func (s *methodStats) ranOnWorker(d time.Duration) {
	if s != nil && !s.quick() {
		s.ranInline(d)
	}
}

// inlineProbeEvery: one in this many lone calls of a method that is not quick
// runs inline anyway (probeInline).
const inlineProbeEvery = 16

// probeInline reports whether this lone call of a method that is not
// quick runs inline anyway, to measure it there afresh: its runs on
// workers may stay slow only because the server is busy (they count the
// time their goroutine waited for a core), which would keep the method
// off the reading goroutine for as long as the load lasts. The guard
// still bounds what such a run costs the calls behind it.
func (s *methodStats) probeInline() bool {
	return s.probes.Add(1)%inlineProbeEvery == 0
}

// quick reports whether the method's handler has been quick when it ran
// (inline, or on workers while it was not quick): every method is until
// one of its runs says otherwise.
func (s *methodStats) quick() bool {
	return s != nil && s.inlineAvg.Load() < int64(batchQuick)
}

// monoEpoch is the reference monoNow measures from.
var monoEpoch = time.Now()

// monoNow reads the monotonic clock only: time.Since of a time holding a
// monotonic reading is one clock read, where time.Now is two (wall and
// monotonic), and the hot path takes two readings per call.
func monoNow() time.Duration { return time.Since(monoEpoch) }

// latencyHistogram counts durations in log-linear buckets: four per power
// of two (each at most 25% wide), from 1ns to about 18 minutes; longer
// durations land in the last bucket. A percentile is the upper bound of
// the bucket it falls in, so it overstates by less than 25%.
type latencyHistogram struct {
	counts [histBuckets]atomic.Uint64
}

const (
	histSubBits = 2 // 1<<histSubBits buckets per power of two
	histMaxBits = 40
	histBuckets = (histMaxBits - histSubBits + 1) << histSubBits
)

func (h *latencyHistogram) add(d time.Duration) {
	h.counts[histBucket(d)].Add(1)
}

// histBucket returns the bucket of d: below 1<<histSubBits ns one bucket
// per nanosecond, then for a value with n significant bits the bucket
// ((n-histSubBits) << histSubBits) + the histSubBits bits after the top one.
func histBucket(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 1<<histSubBits {
		return int(v)
	}
	n := bits.Len64(v)
	if n > histMaxBits {
		return histBuckets - 1
	}
	shift := n - histSubBits - 1
	sub := int(v>>shift) & (1<<histSubBits - 1)
	return (n-histSubBits)<<histSubBits + sub
}

// histUpper returns the smallest duration above bucket i.
func histUpper(i int) time.Duration {
	if i < 1<<histSubBits {
		return time.Duration(i + 1)
	}
	n := i>>histSubBits + histSubBits
	sub := uint64(i & (1<<histSubBits - 1))
	shift := n - histSubBits - 1
	return time.Duration((1<<histSubBits + sub + 1) << shift)
}

// snapshot reads the counts. Calls that complete meanwhile may or may not
// be in it.
func (h *latencyHistogram) snapshot() (counts [histBuckets]uint64, total uint64) {
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
		total += counts[i]
	}
	return counts, total
}

// percentile returns the duration under which a fraction q of the counted
// calls ended, or 0 when none was counted.
func percentile(counts *[histBuckets]uint64, total uint64, q float64) time.Duration {
	if total == 0 {
		return 0
	}
	rank := min(max(uint64(math.Ceil(q*float64(total))), 1), total)
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return histUpper(i)
		}
	}
	return histUpper(histBuckets - 1)
}
