package main

import (
	"testing"
	"time"
)

// TestUsageLine: the line the child sends its counters in parses back to
// the same counters, and a difference keeps the later goroutine count (a
// level) while it subtracts the counts.
func TestUsageLine(t *testing.T) {
	u := usage{mallocs: 1, bytes: 2, cpu: 3 * time.Microsecond, wakeups: 4, syscr: 5, syscw: 6, ctxsw: 7, gcs: 8, goroutines: 9}
	got, err := parseUsage(u.String())
	if err != nil || got != u {
		t.Fatalf("parseUsage(%q) = %+v, %v; want %+v", u.String(), got, err, u)
	}
	d := u.sub(usage{mallocs: 1, gcs: 3, goroutines: 100})
	if d.mallocs != 0 || d.gcs != 5 || d.goroutines != 9 {
		t.Errorf("sub = %+v, want mallocs 0, gcs 5, goroutines 9", d)
	}
}
