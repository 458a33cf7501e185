package wire

import (
	"bytes"
	"context"
	"runtime"
	"sync/atomic"
	"testing"
)

// probeWriter records, at each write, whether a goroutine that was made
// runnable just before the write had run by then.
type probeWriter struct {
	buf     bytes.Buffer
	ran     *atomic.Bool
	ranSeen []bool
}

func (p *probeWriter) Write(b []byte) (int, error) {
	p.ranSeen = append(p.ranSeen, p.ran.Load())
	return p.buf.Write(b)
}

// TestWriterYieldWhen checks that a flusher yields to runnable goroutines
// before writing only while YieldWhen's function says others may write:
// with one thread, a goroutine started just before the write runs first
// only if the writer yields.
func TestWriterYieldWhen(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	frame := testFrame(1, 1)
	for _, tt := range []struct {
		name      string
		others    func() bool
		wantYield bool
	}{
		{"default", nil, true},
		{"others", func() bool { return true }, true},
		{"alone", func() bool { return false }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ran atomic.Bool
			pw := &probeWriter{ran: &ran}
			w := NewWriter(pw)
			if tt.others != nil {
				w.YieldWhen(tt.others)
			}
			done := make(chan struct{})
			go func() { ran.Store(true); close(done) }()
			if err := w.Write(context.Background(), frame, true); err != nil {
				t.Fatalf("Write() = %v", err)
			}
			<-done
			if len(pw.ranSeen) != 1 {
				t.Fatalf("writes = %d, want 1", len(pw.ranSeen))
			}
			if pw.ranSeen[0] != tt.wantYield {
				t.Errorf("runnable goroutine ran before the write = %v, want %v", pw.ranSeen[0], tt.wantYield)
			}
			if !bytes.Equal(pw.buf.Bytes(), frame) {
				t.Error("frame not written intact")
			}
		})
	}
}
