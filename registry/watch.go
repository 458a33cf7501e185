package registry

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// watchers owns the goroutines behind Watch: each runs under a context that
// is cancelled by its caller's ctx or by close, and close waits for all.
type watchers struct {
	mu      sync.Mutex // guards cancels, next, closed; wg.Add happens under it
	cancels map[uint64]context.CancelFunc
	next    uint64
	closed  bool

	wg sync.WaitGroup
}

// add reserves a watcher slot. The returned release must be called exactly
// once, when the watcher goroutine (or a failed Watch) is done.
func (w *watchers) add(ctx context.Context) (context.Context, func(), error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, nil, ErrClosed
	}
	if w.cancels == nil {
		w.cancels = make(map[uint64]context.CancelFunc)
	}
	wctx, cancel := context.WithCancel(ctx)
	id := w.next
	w.next++
	w.cancels[id] = cancel
	w.wg.Add(1)
	release := func() {
		w.mu.Lock()
		delete(w.cancels, id)
		w.mu.Unlock()
		cancel()
		w.wg.Done()
	}
	return wctx, release, nil
}

// close cancels every watcher and waits for them to return.
func (w *watchers) close() {
	w.mu.Lock()
	w.closed = true
	for _, cancel := range w.cancels {
		cancel()
	}
	w.mu.Unlock()
	w.wg.Wait()
}

// offer puts v into out (capacity 1), replacing an unread older value, so a
// slow reader always finds the newest list. There must be one sender only.
func offer(out chan []Instance, v []Instance) {
	for {
		select {
		case out <- v:
			return
		default:
		}
		select {
		case <-out: // drop the stale value nobody has read yet
		default:
		}
	}
}

// sleepCtx waits for d or until ctx is done; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff yields exponentially growing, jittered delays between min and max.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	// Full jitter over the upper half keeps watchers of a restarted Redis from
	// reconnecting in lockstep.
	half := b.cur / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.cur = 0 }

// expiryWake is how long after an instance's expiry time a watcher re-reads
// the list, so the member is certainly past its score on Redis's clock.
const expiryWake = 5 * time.Millisecond

// nextWake returns how long a watcher sleeps before an unprompted resync: the
// periodic resync interval, or sooner when a known instance is due to expire
// (untilExpiry < 0 means none is).
func nextWake(resync, untilExpiry time.Duration) time.Duration {
	d := resync
	if untilExpiry >= 0 {
		d = min(d, untilExpiry+expiryWake)
	}
	return max(d, time.Millisecond)
}
