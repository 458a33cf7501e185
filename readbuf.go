package rpc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// Reading frames without trusting their headers: a payload is read in
// chunks into a buffer that grows (by doubling, or to what has already
// arrived) only as its bytes arrive, so a header claiming 16 MiB costs
// nothing until the bytes are there, and the bytes held are charged to a
// memBudget.

const (
	// freePayload is what a connection reads free of charge: a frame of up
	// to this many bytes, or the first chunk of a larger one.
	freePayload = 4 << 10
	// smallPayload is the largest frame that may use the budget's reserve.
	smallPayload = 64 << 10
	// numClasses is the number of buffer sizes pooled here: freePayload,
	// twice that, ... up to 1 MiB. Larger buffers come from bigPool.
	numClasses = 9
	// budgetPoll is how often a reader waiting for budget checks whether
	// its connection was closed meanwhile.
	budgetPoll = 50 * time.Millisecond
)

// framePools[i] holds *frameBuf of capacity freePayload<<i.
var framePools [numClasses]sync.Pool

// sizeClass returns the pool index and capacity of a buffer for size
// bytes; the index is -1 for a size above the largest class, whose buffer
// has the capacity of its class in bigPool (bufpool.go), or exactly size
// above those.
func sizeClass(size int) (int, int) {
	c := freePayload
	for i := range numClasses {
		if size <= c {
			return i, c
		}
		c <<= 1
	}
	_, c = bigClassFor(size)
	return -1, c
}

// charge is what a buffer of capacity c costs the budget: the part beyond
// what every connection may read free of charge.
func charge(c int) int64 { return int64(max(0, c-freePayload)) }

// frameBuf holds a frame's payload, charged to a budget until released.
type frameBuf struct {
	b       []byte // the payload once read
	charged int64
	budget  *memBudget
	over    bool // charged to the budget's overdraft
	od      bool // it holds the budget's overdraft
}

// newFrameBuf returns a buffer with len(b) == its size class of size.
func newFrameBuf(size int) *frameBuf {
	i, c := sizeClass(size)
	if i >= 0 {
		if fb, ok := framePools[i].Get().(*frameBuf); ok {
			fb.b = fb.b[:c]
			return fb
		}
	}
	if i < 0 {
		return &frameBuf{b: getBig(c)}
	}
	return &frameBuf{b: make([]byte, c)}
}

// release returns the buffer's charge to its budget and the buffer to its
// pool; fb must not be used afterwards.
func (fb *frameBuf) release() {
	if fb.budget != nil {
		fb.budget.release(fb.charged, fb.over, &fb.od)
	}
	fb.budget, fb.charged, fb.over = nil, 0, false
	if i, c := sizeClass(cap(fb.b)); i >= 0 && c == cap(fb.b) {
		fb.b = fb.b[:0]
		framePools[i].Put(fb)
	} else if i < 0 {
		putBig(fb.b)
		fb.b = nil
	}
}

// hardLimit is the largest payload a header may announce before its
// connection is closed: twice the frame limit. Between the two the
// receiver answers the frame and skips its payload without buffering it.
func hardLimit(maxFrame int) int {
	if maxFrame > math.MaxInt/2 {
		return math.MaxInt
	}
	return 2 * maxFrame
}

// errBudgetTimeout is returned when a frame's read timeout passes while
// its reader waits for budget.
var errBudgetTimeout = fmt.Errorf("waiting for buffer budget: %w", os.ErrDeadlineExceeded)

// frameReader reads the frames of one connection. Its owner (the
// connection's reader goroutine) is its only user; the buffers it returns
// may be released from any goroutine.
type frameReader struct {
	br       *bufio.Reader
	nc       net.Conn // read deadlines are set on it; nil: none
	maxFrame int
	// timeout is the read timeout: once a frame's first byte has arrived,
	// the frame must be complete within it (0: no limit).
	timeout time.Duration
	budget  *memBudget
	// done is closed when the server or client stops; closed reports that
	// the connection was closed. Both end a wait for budget.
	done   <-chan struct{}
	closed func() bool
	// waiting, when set, is called before the reader waits for budget
	// (the server lets its held responses go, server_inline.go).
	waiting func()

	// deadline is the current frame's, zero when none is armed.
	deadline time.Time
	// od is set while this reader holds the budget's overdraft.
	od bool
	// lastChunked is the payload size of the last chunked message read
	// whole, a hint for sizing the next one's buffer (chunks.go).
	lastChunked int
	// hb holds the header being read (a field: a local would escape).
	hb [wire.HeaderSize]byte
}

// next waits for a frame and returns its header. It rejects garbage as
// soon as its first bytes arrive, even when they are fewer than a header.
// A request, oneway or response may announce up to hardLimit bytes (the
// caller answers one over maxFrame without reading it); other frames must
// stay within maxFrame.
func (fr *frameReader) next() (wire.Header, error) {
	fr.endFrame()
	if _, err := fr.br.Peek(1); err != nil {
		return wire.Header{}, err
	}
	p, _ := fr.br.Peek(min(fr.br.Buffered(), 3))
	if err := wire.CheckPrefix(p); err != nil {
		return wire.Header{}, err
	}
	if err := fr.readFull(fr.hb[:]); err != nil {
		return wire.Header{}, err
	}
	h, err := wire.ParseHeader(fr.hb[:], hardLimit(fr.maxFrame))
	if err != nil {
		return h, err
	}
	if n := h.PayloadLen(); n > fr.maxFrame && h.Type != wire.TypeRequest && h.Type != wire.TypeOneway && h.Type != wire.TypeResponse {
		return h, fmt.Errorf("%w: %s frame of %d bytes (max %d)", wire.ErrTooLarge, h.Type, n, fr.maxFrame)
	}
	return h, nil
}

// payload reads the n-byte payload of the current frame (n <= maxFrame).
func (fr *frameReader) payload(n int) (*frameBuf, error) {
	if n <= freePayload {
		fb := newFrameBuf(n)
		fb.b = fb.b[:n]
		if err := fr.readFull(fb.b); err != nil {
			fb.release()
			return nil, err
		}
		return fb, nil
	}
	fb, err := fr.grow(n)
	if err != nil {
		fr.budget.release(0, false, &fr.od)
		return nil, err
	}
	// The overdraft, if this frame took it, stays taken until the buffer
	// is released: one overdrawn buffer at a time.
	fb.od, fr.od = fr.od, false
	fb.b = fb.b[:n]
	return fb, nil
}

// grow reads an n-byte payload into a buffer that grows as bytes arrive.
func (fr *frameReader) grow(n int) (*frameBuf, error) {
	small := n <= smallPayload
	var fb *frameBuf
	for filled := 0; filled < n; {
		// Grow to twice what arrived, or to all that has arrived already.
		next, err := fr.alloc(min(n, max(2*filled, freePayload, filled+fr.br.Buffered())), small)
		if err != nil {
			if fb != nil {
				fb.release()
			}
			return nil, err
		}
		if fb != nil {
			copy(next.b, fb.b[:filled])
			fb.release()
		}
		fb = next
		end := min(len(fb.b), n)
		if err := fr.readFull(fb.b[filled:end]); err != nil {
			fb.release()
			return nil, err
		}
		filled = end
	}
	return fb, nil
}

// alloc returns a buffer for size bytes once the budget has room for it.
func (fr *frameReader) alloc(size int, small bool) (*frameBuf, error) {
	_, c := sizeClass(size)
	ch := charge(c)
	if ch > 0 {
		if err := fr.acquire(ch, small); err != nil {
			return nil, err
		}
	}
	fb := newFrameBuf(size)
	fb.budget, fb.charged, fb.over = fr.budget, ch, fr.od
	return fb, nil
}

// acquire charges n bytes to the budget, waiting while it is spent. The
// connection is not read meanwhile: its peer feels backpressure.
func (fr *frameReader) acquire(n int64, small bool) error {
	for {
		wake, ok := fr.budget.tryAcquire(n, small, &fr.od)
		if ok {
			return nil
		}
		if fr.waiting != nil {
			fr.waiting()
		}
		fr.arm() // the wait counts against the frame's read timeout
		wait := budgetPoll
		if !fr.deadline.IsZero() {
			left := time.Until(fr.deadline)
			if left <= 0 {
				return errBudgetTimeout
			}
			wait = min(wait, left)
		}
		t := time.NewTimer(wait)
		select {
		case <-wake:
		case <-fr.done:
			t.Stop()
			return net.ErrClosed
		case <-t.C:
		}
		t.Stop()
		if fr.closed != nil && fr.closed() {
			return net.ErrClosed
		}
	}
}

// skip discards n bytes of the current frame without buffering them.
func (fr *frameReader) skip(n int) error {
	fr.need(n)
	_, err := fr.br.Discard(n)
	return truncated(err)
}

// readFull reads len(p) bytes of the current frame.
func (fr *frameReader) readFull(p []byte) error {
	fr.need(len(p))
	_, err := io.ReadFull(fr.br, p)
	return truncated(err)
}

// need arms the frame's deadline unless n bytes are buffered already (the
// common case of a small frame that arrived whole costs no deadline).
func (fr *frameReader) need(n int) {
	if fr.br.Buffered() < n {
		fr.arm()
	}
}

// arm starts the current frame's read timeout, once per frame.
func (fr *frameReader) arm() {
	if fr.nc == nil || fr.timeout <= 0 || !fr.deadline.IsZero() {
		return
	}
	fr.deadline = time.Now().Add(fr.timeout)
	_ = fr.nc.SetReadDeadline(fr.deadline)
}

// endFrame clears the read deadline between frames: the gap between frames
// is the idle timeout's business.
func (fr *frameReader) endFrame() {
	if fr.deadline.IsZero() {
		return
	}
	fr.deadline = time.Time{}
	_ = fr.nc.SetReadDeadline(time.Time{})
}

// truncated turns an EOF inside a frame into io.ErrUnexpectedEOF.
func truncated(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
