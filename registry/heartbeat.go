package registry

import (
	"context"
	"sync"
	"time"
)

// instanceKey identifies one registration.
type instanceKey struct {
	service, addr string
}

// heartbeats owns one goroutine per registered instance. Each goroutine calls
// beat every interval until it is stopped.
type heartbeats struct {
	mu     sync.Mutex // guards beats, closed
	beats  map[instanceKey]*heartbeat
	closed bool
}

// heartbeat is one running loop: cancel stops it, done is closed when it has
// returned.
type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// start begins heartbeating k, replacing (and waiting for) any earlier loop
// for the same key. It returns ErrClosed after close.
func (h *heartbeats) start(k instanceKey, every time.Duration, beat func(ctx context.Context)) error {
	ctx, cancel := context.WithCancel(context.Background())
	hb := &heartbeat{cancel: cancel, done: make(chan struct{})}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		cancel()
		return ErrClosed
	}
	if h.beats == nil {
		h.beats = make(map[instanceKey]*heartbeat)
	}
	old := h.beats[k]
	h.beats[k] = hb
	h.mu.Unlock()

	if old != nil {
		old.cancel()
		<-old.done
	}
	go func() {
		defer close(hb.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				beat(ctx)
			}
		}
	}()
	return nil
}

// stop ends k's heartbeat and waits for it. It reports whether one ran.
func (h *heartbeats) stop(k instanceKey) bool {
	h.mu.Lock()
	hb := h.beats[k]
	delete(h.beats, k)
	h.mu.Unlock()
	if hb == nil {
		return false
	}
	hb.cancel()
	<-hb.done
	return true
}

// close stops every heartbeat, waits for them, and makes start fail.
func (h *heartbeats) close() {
	h.mu.Lock()
	h.closed = true
	beats := h.beats
	h.beats = nil
	h.mu.Unlock()
	for _, hb := range beats {
		hb.cancel()
	}
	for _, hb := range beats {
		<-hb.done
	}
}
