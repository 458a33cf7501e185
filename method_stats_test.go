package rpc

import (
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

func TestHistBuckets(t *testing.T) {
	prevUpper := time.Duration(0)
	for i := range histBuckets {
		up := histUpper(i)
		if up <= prevUpper {
			t.Fatalf("histUpper(%d) = %v, not above histUpper(%d) = %v", i, up, i-1, prevUpper)
		}
		// Every value in [prevUpper, up) falls in bucket i.
		for _, v := range []time.Duration{prevUpper, (prevUpper + up) / 2, up - 1} {
			if got := histBucket(v); got != i && i < histBuckets-1 {
				t.Fatalf("histBucket(%v) = %d, want %d (bucket [%v, %v))", v, got, i, prevUpper, up)
			}
		}
		if prevUpper >= 8 && float64(up-prevUpper)/float64(prevUpper) > 0.25 {
			t.Errorf("bucket %d [%v, %v) is wider than 25%%", i, prevUpper, up)
		}
		prevUpper = up
	}
	for _, d := range []time.Duration{-1, 0, time.Hour, 1 << 62} {
		if b := histBucket(d); b < 0 || b >= histBuckets {
			t.Errorf("histBucket(%v) = %d, out of range", d, b)
		}
	}
}

func TestPercentile(t *testing.T) {
	var s methodStats
	ok, failed := wire.StatusOK, wire.StatusServerError
	for i := range 10 {
		st := ok
		if i%5 == 0 {
			st = failed
		}
		s.record(time.Duration(i)*time.Microsecond, st)
	}
	if _, total := s.latency.snapshot(); total != 10 || s.errors.Load() != 2 {
		t.Fatalf("after 10 records: calls, errors = %d, %d; want 10, 2", total, s.errors.Load())
	}

	var h latencyHistogram
	for i := range 100 {
		d := 100 * time.Microsecond
		if i == 99 {
			d = 50 * time.Millisecond // the slowest 1%
		}
		h.add(d)
	}
	counts, total := h.snapshot()
	within := func(got, want time.Duration) bool { return got >= want && got <= want*5/4+time.Microsecond }
	if p := percentile(&counts, total, 0.5); !within(p, 100*time.Microsecond) {
		t.Errorf("p50 = %v, want about 100µs", p)
	}
	if p := percentile(&counts, total, 0.99); !within(p, 100*time.Microsecond) {
		t.Errorf("p99 = %v, want about 100µs (99 of 100 calls took that)", p)
	}
	if p := percentile(&counts, total, 1); !within(p, 50*time.Millisecond) {
		t.Errorf("p100 = %v, want about 50ms", p)
	}
	var empty [histBuckets]uint64
	if p := percentile(&empty, 0, 0.5); p != 0 {
		t.Errorf("p50 of nothing = %v, want 0", p)
	}
	var nilStats *methodStats
	nilStats.record(time.Millisecond, ok) // must not panic
}

// BenchmarkMethodStats measures what DebugHandler's counting adds to every
// call: record in serverCall.ran (the duration is measured anyway, for the
// inline decision; one atomic add), all goroutines on one method as the
// worst case for contention.
func BenchmarkMethodStats(b *testing.B) {
	var s methodStats
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.record(time.Microsecond, wire.StatusOK)
		}
	})
}

// TestOneSlowRunKeepsMethodQuick: a quick method's short run of slow runs
// (a pause, most often) leaves it quick: four in a row do, as each counts
// as at most slowRunCap*batchQuick; five make it slow, its slow runs on
// workers keep it so, and quick runs there bring it back.
func TestOneSlowRunKeepsMethodQuick(t *testing.T) {
	var s methodStats
	for range 20 {
		s.ranInline(batchQuick / 10)
	}
	for i := range 4 {
		s.ranInline(time.Second)
		if !s.quick() {
			t.Fatalf("%d runs of 1s in a row made the method slow (average %v): each counts as at most %v", i+1, time.Duration(s.inlineAvg.Load()), slowRunCap*batchQuick)
		}
	}
	s.ranInline(time.Second)
	if s.quick() {
		t.Fatalf("five runs of 1s in a row left the method quick (average %v)", time.Duration(s.inlineAvg.Load()))
	}
	for range 20 {
		s.ranOnWorker(time.Second)
	}
	if s.quick() {
		t.Fatalf("slow runs on workers made the method quick (average %v)", time.Duration(s.inlineAvg.Load()))
	}
	// From 1.93*batchQuick (twenty slow runs from 1.02), 1.93*(7/8)^n < 1
	// takes five quick runs.
	for i := range 20 {
		s.ranOnWorker(0)
		if s.quick() {
			if i+1 < 5 {
				t.Errorf("quick again after %d quick runs, want five", i+1)
			}
			return
		}
	}
	t.Fatalf("twenty quick runs left the method slow (average %v)", time.Duration(s.inlineAvg.Load()))
}
