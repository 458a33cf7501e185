package wire

import (
	"bytes"
	"context"
	"runtime"
	"testing"
)

// TestWriterYieldWhen checks that a flusher yields before writing only
// while YieldWhen's function says others may write (always without one).
// The yield is counted rather than inferred from what the scheduler ran,
// which a preemption or a background goroutine could blur.
func TestWriterYieldWhen(t *testing.T) {
	var yields int
	yield = func() { yields++; runtime.Gosched() }
	defer func() { yield = runtime.Gosched }()
	frame := testFrame(1, 1)
	for _, tt := range []struct {
		name      string
		others    func() bool
		wantYield int
	}{
		{"default", nil, 1},
		{"others", func() bool { return true }, 1},
		{"alone", func() bool { return false }, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yields = 0
			var buf bytes.Buffer
			w := NewWriter(&buf)
			if tt.others != nil {
				w.YieldWhen(tt.others)
			}
			if err := w.Write(context.Background(), frame, true); err != nil {
				t.Fatalf("Write() = %v", err)
			}
			if yields != tt.wantYield {
				t.Errorf("yields before the write = %d, want %d", yields, tt.wantYield)
			}
			if !bytes.Equal(buf.Bytes(), frame) {
				t.Error("frame not written intact")
			}
		})
	}
}
