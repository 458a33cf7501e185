package registry

import (
	"sync"
	"sync/atomic"
	"time"
)

// syncTimes records, per watched service, when a watch of it last knew its
// list to be current: a full read, or a message on its channel that it
// could apply (a change, or the tick of an expiry check).
type syncTimes struct {
	m sync.Map // service → *atomic.Int64 (unix nanoseconds)
}

// mark records a sync of service at t, keeping the latest.
func (s *syncTimes) mark(service string, t time.Time) {
	v, ok := s.m.Load(service)
	if !ok {
		v, _ = s.m.LoadOrStore(service, new(atomic.Int64))
	}
	p, n := v.(*atomic.Int64), t.UnixNano()
	for {
		old := p.Load()
		if old >= n || p.CompareAndSwap(old, n) {
			return
		}
	}
}

// LastSync returns when a watch of service last knew its list to be
// current: its last full read from Redis or the last message on the
// service's channel it applied (changes, and the ticks of the expiry checks
// that run while the service has instances). Zero when no watch of service
// has synced yet. Its age tells how stale a watcher's view may be; it grows
// while Redis is unreachable.
func (r *Redis) LastSync(service string) time.Time {
	v, ok := r.syncs.m.Load(service)
	if !ok {
		return time.Time{}
	}
	if n := v.(*atomic.Int64).Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}
