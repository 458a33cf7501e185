package wire

import (
	"context"
	"io"
	"runtime"
	"sync"
)

// directWrite is the frame size from which a lone writer writes its frame
// directly rather than copying it into a batch.
const directWrite = 64 << 10

// maxKept is the largest batch buffer kept for reuse.
const maxKept = 1 << 20

// maxBuffered is how many bytes may wait behind a write in progress before
// further writers block (backpressure toward a slow peer).
const maxBuffered = 4 << 20

// Writer coalesces frames written by many goroutines into few syscalls.
//
// The first goroutine to write while no write is in progress becomes the
// flusher: it writes its own frame directly, then keeps writing whatever
// other goroutines appended in the meantime, as one batch per syscall, until
// nothing is left. Nobody waits on a timer and no goroutine is dedicated to
// writing, so a lone caller pays one syscall and many callers share them.
type Writer struct {
	w io.Writer

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
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sends p, a whole number of frames. When wait is false, Write may
// return as soon as p is queued behind a write in progress (the flusher will
// write it); when wait is true it returns once p has been handed to the
// underlying writer. A queued p is copied, so the caller may reuse p when
// Write returns. ctx bounds only the waiting: a frame that has been queued is
// written regardless.
func (w *Writer) Write(ctx context.Context, p []byte, wait bool) error {
	w.mu.Lock()
	for {
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return err
		}
		if !w.flushing {
			break
		}
		if len(w.buf) < maxBuffered {
			w.buf = append(w.buf, p...)
			if !wait {
				w.mu.Unlock()
				return nil
			}
			done := w.batchChan()
			w.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
			w.mu.Lock()
			err := w.err
			w.mu.Unlock()
			return err
		}
		// Too much is queued already: wait for the current batch to go.
		done := w.batchChan()
		w.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	w.flushing = true
	data := p
	isBatch := false
	var done chan struct{}
	if len(p) < directWrite {
		// Before writing, let the goroutines that are ready to run go
		// first: under load they are handlers and callers about to write
		// frames of their own, which then join this write instead of each
		// paying for a syscall. With nothing else runnable this costs well
		// under a microsecond.
		w.buf = append(w.buf, p...)
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
		data = w.buf
		w.buf, w.spare = w.spare, nil
		isBatch = true
		done, w.batchDone = w.batchDone, nil
	}
	for {
		w.mu.Unlock()
		_, err := w.w.Write(data)
		w.mu.Lock()
		if done != nil {
			close(done)
			done = nil
		}
		if isBatch && cap(data) <= maxKept {
			w.spare = data[:0]
		}
		if err != nil {
			w.err = err
			if w.batchDone != nil {
				close(w.batchDone)
				w.batchDone = nil
			}
			w.buf = nil
			break
		}
		if len(w.buf) == 0 {
			break
		}
		data, w.buf, w.spare = w.buf, w.spare, nil
		isBatch = true
		done, w.batchDone = w.batchDone, nil
	}
	w.flushing = false
	err := w.err
	w.mu.Unlock()
	return err
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
