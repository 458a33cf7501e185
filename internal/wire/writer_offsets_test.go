package wire

import (
	"context"
	"errors"
	"testing"
	"time"
)

// scriptWriter answers each Write with the next step the test sends: how
// many bytes it takes and the error it returns.
type scriptWriter struct {
	entered chan int // receives the length of each Write
	steps   chan scriptStep
}

type scriptStep struct {
	n   int
	err error
}

func (s *scriptWriter) Write(p []byte) (int, error) {
	s.entered <- len(p)
	st := <-s.steps
	return min(st.n, len(p)), st.err
}

// TestWriterStreamOffsets: WriteFrame reports where each frame ends in the
// stream, and Settle how much the underlying writer took, so that after a
// failed write a frame's owner knows whether it went out whole.
func TestWriterStreamOffsets(t *testing.T) {
	sw := &scriptWriter{entered: make(chan int, 4), steps: make(chan scriptStep, 4)}
	w := NewWriter(sw)
	ctx := context.Background()
	first, second := make([]byte, 100), make([]byte, 50)

	type res struct {
		end int64
		err error
	}
	firstDone := make(chan res, 1)
	go func() {
		end, err := w.WriteFrame(ctx, time.Time{}, first, false)
		firstDone <- res{end, err}
	}()
	select {
	case n := <-sw.entered: // the first frame's writer is writing it
		if n != len(first) {
			t.Fatalf("first write of %d bytes, want %d", n, len(first))
		}
	case <-time.After(testTimeout):
		t.Fatal("first frame never written")
	}
	// Queued behind the write in progress: its end is known at once.
	end2, err := w.WriteFrame(ctx, time.Time{}, second, false)
	if err != nil || end2 != 150 {
		t.Fatalf("queued WriteFrame = %d, %v; want 150, nil", end2, err)
	}
	broken := errors.New("connection reset")
	sw.steps <- scriptStep{n: 100}             // the first frame goes out whole
	sw.steps <- scriptStep{n: 20, err: broken} // the second only in part
	r := <-firstDone
	if r.end != 100 || !errors.Is(r.err, broken) {
		t.Errorf("first WriteFrame = %d, %v; want 100 and the write error", r.end, r.err)
	}
	written := w.Settle()
	if written != 120 {
		t.Errorf("Settle() = %d, want 120", written)
	}
	if !(r.end <= written) || end2 <= written {
		t.Errorf("ends %d and %d against %d written: want the first whole, the second not", r.end, end2, written)
	}
	if end, err := w.WriteFrame(ctx, time.Time{}, second, false); end != 0 || !errors.Is(err, broken) {
		t.Errorf("WriteFrame after the failure = %d, %v; want 0 (never entered the stream) and the error", end, err)
	}
}
