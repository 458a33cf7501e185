package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"
)

// directWrite is the frame size from which a lone writer writes its frame
// directly rather than copying it into a batch.
const directWrite = 64 << 10

// maxKept is the largest batch buffer kept for reuse.
const maxKept = 1 << 20

// maxBuffered is how many bytes may wait behind a write in progress before
// further writers block (backpressure toward a slow peer).
const maxBuffered = 4 << 20

// ErrWriteContinues is returned (wrapping the ctx error or
// context.DeadlineExceeded) by a write whose deadline passed mid-frame: the
// frames were not lost, the rest is being written in the background, so the
// peer will receive them.
var ErrWriteContinues = errors.New("wire: deadline passed mid-write; the rest follows in the background")

// deadliner is the part of net.Conn the Writer uses to bound writes.
type deadliner interface {
	SetWriteDeadline(t time.Time) error
}

// Writer coalesces frames written by many goroutines into few syscalls.
//
// The first goroutine to write while no write is in progress becomes the
// flusher. It queues its frame, yields once so that goroutines ready to run
// (under load: other callers and handlers about to write) can queue theirs,
// then writes the batch, and keeps writing whatever was queued meanwhile
// until nothing is left. No goroutine is dedicated to writing, so a lone
// caller pays one syscall and many callers share them.
//
// Over a connection (see NewConnWriter) every write is bounded: by the
// flusher's ctx deadline, after which the flusher returns and the rest of
// the batch is written by a goroutine of the Writer so that the stream stays
// whole, and by the Writer's timeout, after which the connection is closed.
type Writer struct {
	w       io.Writer
	dl      deadliner // nil: writes are not bounded
	closer  io.Closer // closed when a write fails
	timeout time.Duration
	// armed is the write deadline set last (see write).
	armed time.Time
	bg    sync.WaitGroup // background flushes

	mu sync.Mutex // guards the fields below
	// buf collects frames appended while a flush is in progress.
	buf []byte
	// spare is the buffer the flusher last wrote, kept for reuse.
	spare []byte
	// flushing is set while a goroutine is writing.
	flushing bool
	// batchDone, when not nil, is closed once buf has been written (or the
	// writer failed); waiters create it on demand.
	batchDone chan struct{}
	// err is the first write error; every later write returns it.
	err error
	// queued counts the bytes that entered the stream, in order; written
	// those the underlying writer took. A frame whose stream end is past
	// written when the writer has failed never reached the peer whole.
	queued, written int64
	// quiet, when not nil, is closed when flushing is cleared; Settle
	// creates it on demand.
	quiet chan struct{}
	// others, when set, reports whether other goroutines may be about to
	// write (see YieldWhen); nil: they may.
	others func() bool
	// held is set between Hold and Release: flushing is set, but nobody
	// writes until Release or until a writer takes the hold over.
	held bool
}

// maxHeld is how many bytes a hold collects before the writer that would
// exceed it writes them itself.
const maxHeld = 64 << 10

// Hold makes the frames written from now on wait in the Writer, unwritten,
// until Release, so that the frames a goroutine produces in a row (the
// responses of several requests read in one buffer) leave in one write
// instead of one each. It reports false, holding nothing, if a write is in
// progress (frames then join it anyway) or the Writer failed.
//
// A hold never makes anyone wait for it: a writer that must wait for its
// frame to be written (wait set), or whose frame would take the held bytes
// past 64 KiB, takes the hold over and writes everything itself; Release
// is then a no-op. The holder must call Release before it blocks on
// anything else, or the held frames wait with it.
func (w *Writer) Hold() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.flushing || w.err != nil {
		return false
	}
	w.flushing, w.held = true, true
	return true
}

// Release writes, on the calling goroutine, the frames queued since Hold
// (unless a writer took the hold over meanwhile). It returns the write's
// error, which has also closed the connection.
func (w *Writer) Release() error {
	w.mu.Lock()
	if !w.held {
		w.mu.Unlock()
		return nil
	}
	w.held = false
	if len(w.buf) == 0 {
		w.setIdle()
		w.mu.Unlock()
		return nil
	}
	data := w.buf
	w.buf, w.spare = w.spare, nil
	done := w.batchDone
	w.batchDone = nil
	w.mu.Unlock()
	return w.flush(context.Background(), time.Time{}, data, true, done)
}

// YieldWhen makes a flusher yield before writing only while others reports
// that other goroutines may be about to write (for a connection: other
// calls are in flight on it), so that a lone writer writes at once. It
// must be called before the Writer is used.
func (w *Writer) YieldWhen(others func() bool) { w.others = others }

// yield is how a flusher lets ready goroutines run before its write;
// tests count it.
var yield = runtime.Gosched

// NewConnWriter returns a Writer over a connection. A write that cannot
// finish within timeout (at least 7/8 of it, the whole for a large one)
// closes nc, as does any failed write, so that its reader sees the end at
// once.
func NewConnWriter(nc interface {
	io.WriteCloser
	deadliner
}, timeout time.Duration) *Writer {
	return &Writer{w: nc, dl: nc, closer: nc, timeout: timeout}
}

// Write sends p, a whole number of frames. When wait is false, Write may
// return as soon as p is queued behind a write in progress (the flusher will
// write it); when wait is true it returns once p has been handed to the
// underlying writer. A queued p is copied, so the caller may reuse p when
// Write returns. ctx bounds the waiting, and the writing when this call
// flushes; either way a frame that has been queued is written in full.
func (w *Writer) Write(ctx context.Context, p []byte, wait bool) error {
	d, _ := ctx.Deadline()
	return w.WriteBy(ctx, d, p, wait)
}

// WriteBy is Write with a deadline of its own (zero: none) on top of ctx's,
// for callers that track a deadline without a ctx for it.
func (w *Writer) WriteBy(ctx context.Context, deadline time.Time, p []byte, wait bool) error {
	_, err := w.WriteFrame(ctx, deadline, p, wait)
	return err
}

// WriteFrame is WriteBy that also returns where p ends in the stream: the
// number of bytes queued before it plus its own, or 0 if p never entered
// the stream (the writer had failed, or ctx or the deadline ended while it
// waited for room). Compared with what Settle returns once the writer
// failed, it tells whether p reached the peer whole.
func (w *Writer) WriteFrame(ctx context.Context, deadline time.Time, p []byte, wait bool) (end int64, err error) {
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	return w.send(ctx, deadline, p, wait, false)
}

// Settle waits until no write is in progress and returns the number of
// bytes the underlying writer has taken. Once the writer has failed (or
// its connection was closed) the answer is final. It must not be called by
// a goroutine that is writing.
func (w *Writer) Settle() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.flushing {
		if w.quiet == nil {
			w.quiet = make(chan struct{})
		}
		q := w.quiet
		w.mu.Unlock()
		<-q
		w.mu.Lock()
	}
	return w.written
}

// setIdle clears flushing and wakes Settle; w.mu is held.
func (w *Writer) setIdle() {
	w.flushing = false
	if w.quiet != nil {
		close(w.quiet)
		w.quiet = nil
	}
}

// controlBound is the longest a control frame's writer spends writing; the
// rest of its batch continues in the background.
const controlBound = 20 * time.Millisecond

// WriteControl queues a control frame of type t for seq, with no payload
// (cancel, ping, pong, draining), without ever waiting for long: it skips
// the backpressure limit, and if it has to write, it writes for at most
// controlBound. A failed write is also seen by the connection's reader, so
// callers may ignore the error.
func (w *Writer) WriteControl(t Type, seq uint64) error {
	var b [HeaderSize]byte
	PutHeader(b[:], &Header{Type: t, Seq: seq})
	_, err := w.send(context.Background(), time.Now().Add(controlBound), b[:], false, true)
	return err
}

func (w *Writer) send(ctx context.Context, deadline time.Time, p []byte, wait, control bool) (int64, error) {
	w.mu.Lock()
	for {
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return 0, err
		}
		if !w.flushing {
			break
		}
		if w.held && (wait || len(w.buf)+len(p) > maxHeld) {
			// Take the hold over: write what it holds, then p.
			w.held = false
			w.buf = append(w.buf, p...)
			w.queued += int64(len(p))
			end := w.queued
			data := w.buf
			w.buf, w.spare = w.spare, nil
			done := w.batchDone
			w.batchDone = nil
			w.mu.Unlock()
			return end, w.flush(ctx, deadline, data, true, done)
		}
		if len(w.buf) < maxBuffered || control {
			w.buf = append(w.buf, p...)
			w.queued += int64(len(p))
			end := w.queued
			if !wait {
				w.mu.Unlock()
				return end, nil
			}
			done := w.batchChan()
			w.mu.Unlock()
			if err := waitFor(ctx, deadline, done); err != nil {
				return end, err
			}
			w.mu.Lock()
			err := w.err
			w.mu.Unlock()
			return end, err
		}
		// Too much is queued already: wait for the current batch to go.
		done := w.batchChan()
		w.mu.Unlock()
		if err := waitFor(ctx, deadline, done); err != nil {
			return 0, err
		}
		w.mu.Lock()
	}
	w.flushing = true
	w.queued += int64(len(p))
	end := w.queued
	data := p
	isBatch := false
	var done chan struct{}
	if len(p) < directWrite && (w.others == nil || w.others()) {
		// Before writing, let the goroutines that are ready to run go
		// first: under load they are handlers and callers about to write
		// frames of their own, which then join this write instead of each
		// paying for a syscall. With nothing else runnable this costs well
		// under a microsecond. A lone writer (see YieldWhen) skips it: its
		// yield would only let others, such as a reader about to find
		// nothing to read, run ahead of its frame.
		if w.buf == nil {
			w.buf, w.spare = w.spare, nil
		}
		w.buf = append(w.buf, p...)
		w.mu.Unlock()
		yield()
		w.mu.Lock()
		data = w.buf
		w.buf, w.spare = w.spare, nil
		isBatch = true
		done, w.batchDone = w.batchDone, nil
	}
	w.mu.Unlock()
	return end, w.flush(ctx, deadline, data, isBatch, done)
}

// flush writes data, then every batch queued meanwhile, and clears
// flushing. w.mu is not held. If the deadline passes mid-write, the rest
// is left to a background goroutine and flush returns the timeout.
func (w *Writer) flush(ctx context.Context, deadline time.Time, data []byte, isBatch bool, done chan struct{}) error {
	for {
		n, err := w.write(deadline, data)
		if err != nil && n < len(data) && w.stillOpen(err) && (ctx.Err() != nil || !deadline.IsZero() && !time.Now().Before(deadline)) {
			// The caller's time is up, the connection's is not: finish
			// this batch (and what follows) without the caller.
			w.mu.Lock()
			w.written += int64(n)
			w.mu.Unlock()
			rest := data[n:]
			if !isBatch {
				// data is the caller's own frame, which it may reuse
				// once we return.
				rest = bytes.Clone(rest)
			}
			w.bg.Add(1)
			go w.background(rest, done)
			cause := context.DeadlineExceeded
			if ctx.Err() != nil {
				cause = ctx.Err()
			}
			return fmt.Errorf("%w (%w)", ErrWriteContinues, cause)
		}
		w.mu.Lock()
		w.written += int64(max(n, 0))
		if done != nil {
			close(done)
			done = nil
		}
		if isBatch && cap(data) <= maxKept {
			w.spare = data[:0]
		}
		if err != nil {
			if w.err == nil {
				w.err = err
			}
			if w.batchDone != nil {
				close(w.batchDone)
				w.batchDone = nil
			}
			w.buf = nil
			w.setIdle()
			w.mu.Unlock()
			if w.closer != nil {
				w.closer.Close()
			}
			return err
		}
		if len(w.buf) == 0 {
			w.setIdle()
			w.mu.Unlock()
			return nil
		}
		data = w.buf
		w.buf, w.spare = w.spare, nil
		isBatch = true
		done, w.batchDone = w.batchDone, nil
		w.mu.Unlock()
	}
}

// background finishes a flush whose caller ran out of time.
func (w *Writer) background(rest []byte, done chan struct{}) {
	defer w.bg.Done()
	w.flush(context.Background(), time.Time{}, rest, false, done)
}

// write writes data within the earlier of deadline (zero: none) and the
// Writer's timeout.
//
// Moving a connection's write deadline takes a lock and moves a runtime
// timer, on every write. So when only the timeout bounds a small write,
// the deadline armed for an earlier write stands if it is still at least
// seven eighths of the timeout away: such a write gets between 7/8 of the
// timeout and the whole of it, and a busy connection moves its deadline
// once per eighth of the timeout instead of once per write. A large write
// (directWrite and up), which may well take long, always gets the whole
// timeout. Only the goroutine flushing writes (see flushing), so armed
// needs no lock.
func (w *Writer) write(deadline time.Time, data []byte) (int, error) {
	if w.dl == nil {
		return w.w.Write(data)
	}
	now := time.Now()
	limit := now.Add(w.timeout)
	if deadline.IsZero() || limit.Before(deadline) {
		if len(data) >= directWrite || w.armed.IsZero() || w.armed.Sub(now) < w.timeout-w.timeout/8 {
			if err := w.dl.SetWriteDeadline(limit); err != nil {
				return 0, err
			}
			w.armed = limit
		}
		return w.w.Write(data)
	}
	if err := w.dl.SetWriteDeadline(deadline); err != nil {
		return 0, err
	}
	w.armed = deadline
	return w.w.Write(data)
}

// stillOpen reports whether err is only a write deadline, so the
// connection may still take the rest.
func (w *Writer) stillOpen(err error) bool {
	return w.dl != nil && errors.Is(err, os.ErrDeadlineExceeded)
}

// Wait waits for background flushes; call it after closing the connection.
func (w *Writer) Wait() { w.bg.Wait() }

// waitFor waits until done is closed, ctx ends or deadline (zero: none)
// passes.
func waitFor(ctx context.Context, deadline time.Time, done <-chan struct{}) error {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timeout:
		return context.DeadlineExceeded
	}
}

// batchChan returns the channel closed when the pending batch is written.
// w.mu must be held.
func (w *Writer) batchChan() chan struct{} {
	if w.batchDone == nil {
		w.batchDone = make(chan struct{})
	}
	return w.batchDone
}

// Idle reports whether nothing is being written or waits to be.
func (w *Writer) Idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.flushing && len(w.buf) == 0
}
