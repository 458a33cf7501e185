package rpc

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/seedrpc/rpc/lb"
)

// TestAttemptReportOnce: the balancer hears of an attempt exactly once,
// however many paths (reader, timer, hedge winner) report it.
func TestAttemptReportOnce(t *testing.T) {
	var n atomic.Int32
	a := &attempt{lbDone: func(lb.DoneInfo) { n.Add(1) }}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.report(nil, nil)
		}()
	}
	wg.Wait()
	if got := n.Load(); got != 1 {
		t.Fatalf("lbDone called %d times, want 1", got)
	}
}
