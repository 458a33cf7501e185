package rpc

import "sync"

// defaultMaxBuffered is the default budget of buffered payload bytes, per
// server (requests) and per client (replies).
const defaultMaxBuffered = 256 << 20

// memBudget bounds the payload bytes a server (or a client) holds in
// buffers: the frames being read and those read but not yet decoded. A
// reader that would go over it stops reading its connection until bytes
// are released (backpressure on that peer) instead of allocating.
//
// Fairness:
//   - only bytes that arrived are charged (buffers grow as they arrive), and
//     each connection reads frames of up to freePayload bytes free of
//     charge, so a connection that trickles costs next to nothing;
//   - the last eighth of the budget is kept for frames of at most
//     smallPayload bytes, so ordinary calls go on while large frames have
//     spent the rest;
//   - one frame at a time may overdraw the budget, by at most about one
//     max frame size, until its buffer is released, so that readers that
//     each hold part of the budget and wait for more cannot deadlock: one
//     of them can always complete;
//   - a server bounds each frame, waiting included, by its read timeout,
//     after which the connection is closed and its bytes released.
type memBudget struct {
	limit   int64
	reserve int64 // for small frames only

	mu sync.Mutex // guards the fields below
	// used is the bytes charged, at most limit; over is the bytes charged
	// to the overdraft, apart so that it delays nobody else.
	used, over int64
	// overdrawn is set while a frame holds the overdraft.
	overdrawn bool
	// wake, if not nil, is closed on the next release.
	wake chan struct{}
}

func newMemBudget(limit int64) *memBudget {
	return &memBudget{limit: limit, reserve: limit / 8}
}

// tryAcquire charges n bytes for a frame; small says whether the frame may
// use the reserve, od whether the caller holds the overdraft (it is set if
// the caller takes it now; the bytes are then charged to the overdraft).
// When the bytes are not available it returns a channel closed on the next
// release.
func (b *memBudget) tryAcquire(n int64, small bool, od *bool) (<-chan struct{}, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if *od {
		b.over += n
		return nil, true
	}
	lim := b.limit
	if !small {
		lim -= b.reserve
	}
	if b.used+n <= lim {
		b.used += n
		return nil, true
	}
	if !b.overdrawn {
		b.overdrawn, *od = true, true
		b.over += n
		return nil, true
	}
	if b.wake == nil {
		b.wake = make(chan struct{})
	}
	return b.wake, false
}

// release returns n bytes charged (to the overdraft if over), and the
// overdraft if od says the caller holds it (od is cleared).
func (b *memBudget) release(n int64, over bool, od *bool) {
	if n <= 0 && !*od {
		return
	}
	b.mu.Lock()
	if over {
		b.over -= n
	} else {
		b.used -= n
	}
	if *od {
		b.overdrawn, *od = false, false
	}
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	b.mu.Unlock()
}

// inUse returns the bytes charged.
func (b *memBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used + b.over
}
