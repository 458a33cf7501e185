package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testTimeout = 10 * time.Second

// testFrame is a response frame whose body says who wrote it: writer id
// and per-writer index, repeated to a size that varies with i.
func testFrame(id, i int) []byte {
	body := make([]byte, 8+(i*37+id*11)%300)
	binary.BigEndian.PutUint32(body[0:], uint32(id))
	binary.BigEndian.PutUint32(body[4:], uint32(i))
	for j := 8; j < len(body); j++ {
		body[j] = byte(id + i + j)
	}
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	PutHeader(b, &Header{Type: TypeResponse, Seq: uint64(id)<<32 | uint64(i), BodyLen: uint32(len(body))})
	return append(b, body...)
}

// countingWriter counts the writes it is handed.
type countingWriter struct {
	w      io.Writer
	writes atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.w.Write(p)
}

func TestWriterConcurrentFramesIntact(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	cw := &countingWriter{w: client}
	w := NewWriter(cw)

	const writers, perWriter = 32, 200
	type result struct {
		frames int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		next := make([]int, writers)
		var hb [HeaderSize]byte
		n := 0
		for n < writers*perWriter {
			if _, err := io.ReadFull(server, hb[:]); err != nil {
				done <- result{n, err}
				return
			}
			h, err := ParseHeader(hb[:], DefaultMaxFrameSize)
			if err != nil {
				done <- result{n, err}
				return
			}
			body := make([]byte, h.PayloadLen())
			if _, err := io.ReadFull(server, body); err != nil {
				done <- result{n, err}
				return
			}
			id, i := int(h.Seq>>32), int(uint32(h.Seq))
			want := testFrame(id, i)
			if !bytes.Equal(append(hb[:], body...), want) {
				done <- result{n, errors.New("frame corrupted")}
				return
			}
			if i != next[id] {
				done <- result{n, errors.New("frames of one writer out of order")}
				return
			}
			next[id]++
			n++
		}
		done <- result{n, nil}
	}()

	var wg sync.WaitGroup
	for id := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if err := w.Write(context.Background(), testFrame(id, i), i%3 == 0); err != nil {
					t.Errorf("Write(%d, %d) = %v", id, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case r := <-done:
		if r.err != nil || r.frames != writers*perWriter {
			t.Fatalf("reader got %d of %d frames, err %v", r.frames, writers*perWriter, r.err)
		}
	case <-time.After(testTimeout):
		t.Fatal("reader did not get every frame")
	}
	if !w.Idle() {
		t.Error("Idle() = false after every frame was read")
	}
	frames, writes := int64(writers*perWriter), cw.writes.Load()
	t.Logf("%d frames in %d writes", frames, writes)
	if writes >= frames {
		t.Errorf("%d frames took %d writes, want coalescing into fewer", frames, writes)
	}
}

// gateWriter blocks every Write until the gate is opened, then fails with
// err (if set) after failAfter bytes.
type gateWriter struct {
	gate      chan struct{}
	entered   chan struct{}
	mu        sync.Mutex
	buf       bytes.Buffer
	failAfter int
	err       error
}

func (g *gateWriter) Write(p []byte) (int, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil && g.buf.Len()+len(p) > g.failAfter {
		return 0, g.err
	}
	return g.buf.Write(p)
}

func newGateWriter() *gateWriter {
	return &gateWriter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
}

// waitUntil polls cond until it holds, failing the test after testTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testTimeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func waitEntered(t *testing.T, g *gateWriter) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(testTimeout):
		t.Fatal("no write reached the underlying writer")
	}
}

func TestWriterErrorPropagation(t *testing.T) {
	boom := errors.New("boom")
	g := newGateWriter()
	g.err, g.failAfter = boom, 0
	w := NewWriter(g)

	first := make(chan error, 1)
	go func() { first <- w.Write(context.Background(), testFrame(0, 0), false) }()
	waitEntered(t, g)
	// Queue behind the blocked flusher: one waiting, one not.
	waiting := make(chan error, 1)
	go func() { waiting <- w.Write(context.Background(), testFrame(1, 0), true) }()
	waitUntil(t, "the waiting writer to queue its frame", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.batchDone != nil
	})
	if err := w.Write(context.Background(), testFrame(2, 0), false); err != nil {
		t.Fatalf("queued Write(wait=false) = %v, want nil", err)
	}
	if w.Idle() {
		t.Error("Idle() = true while a write is in progress")
	}
	close(g.gate)
	for name, ch := range map[string]chan error{"flusher": first, "waiting writer": waiting} {
		select {
		case err := <-ch:
			if !errors.Is(err, boom) {
				t.Errorf("%s: Write error = %v, want %v", name, err, boom)
			}
		case <-time.After(testTimeout):
			t.Fatalf("%s: Write did not return", name)
		}
	}
	// Every later write fails with the first error.
	if err := w.Write(context.Background(), testFrame(3, 0), true); !errors.Is(err, boom) {
		t.Errorf("Write after failure = %v, want %v", err, boom)
	}
	if err := w.Write(context.Background(), testFrame(4, 0), false); !errors.Is(err, boom) {
		t.Errorf("Write(wait=false) after failure = %v, want %v", err, boom)
	}
}

func TestWriterCtxBoundsWaiting(t *testing.T) {
	g := newGateWriter()
	w := NewWriter(g)
	first := make(chan error, 1)
	go func() { first <- w.Write(context.Background(), testFrame(0, 0), false) }()
	waitEntered(t, g)

	// A waiting writer gives up when its ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := w.Write(ctx, testFrame(1, 0), true); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Write(wait=true) behind a stalled flusher = %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Write(wait=true) with a 30ms ctx took %v", el)
	}

	// More than maxBuffered queued: even wait=false writers block (backpressure).
	if err := w.Write(context.Background(), make([]byte, maxBuffered), false); err != nil {
		t.Fatalf("Write(big, wait=false) = %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel2()
	if err := w.Write(ctx2, testFrame(2, 0), false); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Write(wait=false) over the buffer limit = %v, want context.DeadlineExceeded", err)
	}

	close(g.gate)
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("flusher Write = %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("flusher did not return")
	}
	// The queued frame (frame 1 was queued before its ctx ended) went out.
	g.mu.Lock()
	got := g.buf.Len()
	g.mu.Unlock()
	if want := len(testFrame(0, 0)) + len(testFrame(1, 0)) + maxBuffered; got != want {
		t.Errorf("underlying writer got %d bytes, want %d", got, want)
	}
	if !w.Idle() {
		t.Error("Idle() = false after the flush")
	}
}

// TestWriterDeadlineKeepsStreamWhole: a flusher whose deadline passes
// mid-write returns on time, the rest of its frame is written in the
// background, and reusing the frame buffer right away changes nothing on
// the wire.
func TestWriterDeadlineKeepsStreamWhole(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	w := NewConnWriter(client, 5*time.Second)

	frame := bytes.Repeat([]byte{0xAB}, 200<<10) // above directWrite: written in place
	want := bytes.Clone(frame)
	got := make(chan []byte, 1)
	returned := make(chan struct{})
	go func() {
		buf := make([]byte, len(want))
		n, _ := io.ReadFull(server, buf[:1000]) // take a little, then stall
		<-returned                              // until the writer gave up
		m, _ := io.ReadFull(server, buf[n:])
		got <- buf[:n+m]
	}()

	start := time.Now()
	err := w.WriteBy(context.Background(), time.Now().Add(50*time.Millisecond), frame, false)
	close(returned)
	if el := time.Since(start); el > 150*time.Millisecond {
		t.Errorf("WriteBy returned after %v, want about 50ms", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WriteBy() error = %v, want context.DeadlineExceeded", err)
	}
	for i := range frame {
		frame[i] = 0xEE // the caller reuses its buffer
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want) {
			t.Fatalf("peer received %d bytes that differ from the frame written (%d bytes)", len(b), len(want))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("peer never received the whole frame")
	}
	w.Wait()
}

// deadlineConn is a connection that records the write deadlines set on it
// and whose writes block until their deadline when stall is set.
type deadlineConn struct {
	mu        sync.Mutex
	deadlines []time.Time
	stall     bool
	closed    bool
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadlines = append(c.deadlines, t)
	return nil
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	stall, dl := c.stall, c.deadlines[len(c.deadlines)-1]
	c.mu.Unlock()
	if stall {
		time.Sleep(time.Until(dl))
		return 0, os.ErrDeadlineExceeded
	}
	return len(p), nil
}

func (c *deadlineConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *deadlineConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.deadlines)
}

// TestWriterDeadlineArmedOnce: small writes bounded only by the Writer's
// timeout keep the deadline armed by an earlier one while it is at least
// 7/8 of the timeout away (moving it costs a lock and a timer per write);
// a large write, or one with an earlier deadline of its own, sets it, and
// a write after that arms the timeout again. A stalled write still ends
// within 7/8 of the timeout to the whole of it.
func TestWriterDeadlineArmedOnce(t *testing.T) {
	nc := &deadlineConn{}
	const timeout = 400 * time.Millisecond
	w := NewConnWriter(nc, timeout)
	frame := testFrame(1, 1)
	for range 10 {
		if err := w.Write(context.Background(), frame, true); err != nil {
			t.Fatal(err)
		}
	}
	if n := nc.count(); n != 1 {
		t.Errorf("10 writes within the timeout set the deadline %d times, want 1", n)
	}
	early := time.Now().Add(timeout / 4)
	if err := w.WriteBy(context.Background(), early, frame, true); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), frame, true); err != nil {
		t.Fatal(err)
	}
	nc.mu.Lock()
	got := slices.Clone(nc.deadlines)
	nc.mu.Unlock()
	if len(got) != 3 || !got[1].Equal(early) || got[2].Sub(got[1]) < timeout/2 {
		t.Errorf("deadlines after a write with its own = %v, want the first, %v, then about now+%v", got, early, timeout)
	}
	if err := w.Write(context.Background(), make([]byte, directWrite), true); err != nil {
		t.Fatal(err)
	}
	if n := nc.count(); n != 4 {
		t.Errorf("a large write set the deadline %d times in all, want 4 (it always gets the whole timeout)", n)
	}

	// Past an eighth of the timeout the deadline is armed again before a
	// write, so a write that stalls gets at least 7/8 of the timeout.
	time.Sleep(timeout/8 + 50*time.Millisecond)
	nc.mu.Lock()
	nc.stall = true
	nc.mu.Unlock()
	start := time.Now()
	if err := w.Write(context.Background(), frame, true); err == nil {
		t.Fatal("stalled write returned no error")
	}
	if el := time.Since(start); el < timeout-timeout/8 || el > timeout+200*time.Millisecond {
		t.Errorf("stalled write ended after %v, want between %v and %v", el, timeout-timeout/8, timeout)
	}
}
