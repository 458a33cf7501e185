package wire

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// recWriter records each write it is handed.
type recWriter struct {
	mu     sync.Mutex
	writes [][]byte
}

func (r *recWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func (r *recWriter) got() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.writes...)
}

// TestWriterHoldRelease: frames written during a hold leave in one write,
// in order, at Release, and not before.
func TestWriterHoldRelease(t *testing.T) {
	rw := &recWriter{}
	w := NewWriter(rw)
	w.YieldWhen(func() bool { return false })
	if !w.Hold() {
		t.Fatal("Hold on an idle writer = false")
	}
	if w.Hold() {
		t.Fatal("a second Hold = true")
	}
	var want []byte
	for i := range 3 {
		f := testFrame(1, i)
		want = append(want, f...)
		if err := w.Write(context.Background(), f, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteControl(TypePong, 0); err != nil {
		t.Fatal(err)
	}
	var pong [HeaderSize]byte
	PutHeader(pong[:], &Header{Type: TypePong})
	want = append(want, pong[:]...)
	if n := len(rw.got()); n != 0 {
		t.Fatalf("%d writes during the hold, want 0", n)
	}
	if w.Idle() {
		t.Fatal("Idle during a hold with frames queued")
	}
	if err := w.Release(); err != nil {
		t.Fatal(err)
	}
	got := rw.got()
	if len(got) != 1 || !bytes.Equal(got[0], want) {
		t.Fatalf("after Release: %d writes, want the 4 frames in one", len(got))
	}
	if !w.Idle() {
		t.Fatal("not Idle after Release")
	}
	// The writer is usable as before: a lone frame goes at once.
	if err := w.Write(context.Background(), testFrame(2, 0), false); err != nil {
		t.Fatal(err)
	}
	if n := len(rw.got()); n != 2 {
		t.Fatalf("%d writes after a frame written outside a hold, want 2", n)
	}
	if err := w.Release(); err != nil || len(rw.got()) != 2 {
		t.Fatalf("Release without a hold = %v, %d writes", err, len(rw.got()))
	}
}

// TestWriterHoldTakenOver: a writer that waits for its frame, or whose
// frame takes the held bytes past the limit, writes the held frames and
// its own at once: a hold never makes anyone wait, not even the holder.
func TestWriterHoldTakenOver(t *testing.T) {
	for _, tt := range []struct {
		name  string
		frame []byte
		wait  bool
	}{
		{"waiting writer", testFrame(3, 1), true},
		{"over the limit", make([]byte, maxHeld), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rw := &recWriter{}
			w := NewWriter(rw)
			if !w.Hold() {
				t.Fatal("Hold = false")
			}
			first := testFrame(3, 0)
			if err := w.Write(context.Background(), first, false); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- w.Write(context.Background(), tt.frame, tt.wait) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(testTimeout):
				t.Fatal("a writer waited for the hold")
			}
			got := rw.got()
			if len(got) != 1 || !bytes.Equal(got[0], append(bytes.Clone(first), tt.frame...)) {
				t.Fatalf("%d writes, want the held frame and the new one in one", len(got))
			}
			if err := w.Release(); err != nil || len(rw.got()) != 1 {
				t.Fatalf("Release after a takeover = %v, %d writes, want a no-op", err, len(rw.got()))
			}
			if !w.Idle() {
				t.Fatal("not Idle")
			}
		})
	}
}

// TestWriterHoldWhileFlushing: Hold refuses while another goroutine
// writes; the frames then join that write.
func TestWriterHoldWhileFlushing(t *testing.T) {
	gate := make(chan struct{})
	bw := &blockingWriter{gate: gate}
	w := NewWriter(bw)
	w.YieldWhen(func() bool { return false })
	done := make(chan error, 1)
	go func() { done <- w.Write(context.Background(), testFrame(4, 0), true) }()
	deadline := time.Now().Add(testTimeout)
	for w.Idle() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if w.Hold() {
		t.Fatal("Hold during a write in progress = true")
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// blockingWriter blocks every write until gate is closed.
type blockingWriter struct {
	gate chan struct{}
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.gate
	return len(p), nil
}
