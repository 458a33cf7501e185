package rpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedrpc/rpc/lb"
	"github.com/seedrpc/rpc/registry"
)

// lookupTimeout bounds a client's first registry lookup of a service.
const lookupTimeout = 5 * time.Second

// target is a discovering client's view of one service: the instances the
// registry lists (kept current by a watch), their health, and the picker
// built from the healthy ones. Calls read the picker snapshot without a lock.
type target struct {
	c       *Client
	service string
	cancel  context.CancelFunc // ends the watch
	ready   chan struct{}      // closed once the first lookup finished

	snap atomic.Pointer[targetSnap]

	mu sync.Mutex // guards the fields below and rebuilding snap
	// instances is the registry's latest list.
	instances []registry.Instance
	// health by address; entries outlive snapshots.
	health map[string]*addrHealth
	// err is the last lookup error, reported while no list is known.
	err error
	// emptySince is when the registry began to list no instance while we
	// knew some; zero otherwise.
	emptySince time.Time
	// synced is when the registry last gave us a list (ClientStats.Synced).
	synced time.Time
}

// addrHealth is the outlier-ejection state of one address.
type addrHealth struct {
	failures atomic.Int32 // consecutive failed calls
	// The fields below are guarded by target.mu.
	ejections     int       // consecutive ejections, for the growing period
	ejectedUntil  time.Time // zero when not ejected
	drainingUntil time.Time // the server announced it is shutting down
}

// targetSnap is an immutable routing snapshot.
type targetSnap struct {
	picker lb.Picker
	// total is the number of instances known (healthy or not).
	total int
	// all lists every known address, to exclude non-matching ones for
	// call filters.
	all []registry.Instance
	// health is target.health at build time (same pointers).
	health map[string]*addrHealth
	// expires is when an ejection or drain mark ends (unix ns, 0: never),
	// after which the snapshot must be rebuilt.
	expires int64
}

// target returns the discovery state of service, creating it and starting
// its watch on first use, without waiting for its first lookup. It returns
// nil once the client is closed.
func (c *Client) target(service string) *target {
	if v, ok := c.targets.Load(service); ok {
		return v.(*target)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	if v, ok := c.targets.Load(service); ok {
		return v.(*target)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	t := &target{c: c, service: service, cancel: cancel, ready: make(chan struct{}), health: make(map[string]*addrHealth)}
	c.targets.Store(service, t)
	if !c.goAsync(func() { t.run(ctx) }) {
		close(t.ready) // cannot happen: Close takes c.mu before refusing
	}
	return t
}

// waitTarget returns the discovery state of service once its first lookup
// has finished, or nil for a client of one server.
func (c *Client) waitTarget(ctx context.Context, service string) (*target, error) {
	if c.static != "" {
		return nil, nil
	}
	t := c.target(service)
	if t == nil {
		return nil, ErrShutdown
	}
	select {
	case <-t.ready:
		return t, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("lookup of service %s: %w", service, ctx.Err())
	}
}

// isReady reports whether the first lookup has finished, so that pick
// answers without waiting.
func (t *target) isReady() bool {
	select {
	case <-t.ready:
		return true
	default:
		return false
	}
}

// stale reports whether the target routes on a list the registry no
// longer confirms (see emptyGrace).
func (t *target) stale() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.emptySince.IsZero()
}

// run looks the service up once, then follows the registry's watch until
// the client closes. The registry's watch itself survives outages; if it
// ends early the target subscribes again after a pause.
func (t *target) run(ctx context.Context) {
	reg := t.c.opts.registry
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	insts, err := reg.Lookup(lctx, t.service)
	cancel()
	if err != nil {
		t.mu.Lock()
		t.err = fmt.Errorf("lookup of service %s: %w", t.service, err)
		t.mu.Unlock()
	} else {
		t.update(insts)
	}
	close(t.ready)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		ch, err := reg.Watch(ctx, t.service)
		if err == nil {
			backoff = 100 * time.Millisecond
			for insts := range ch {
				t.update(insts)
			}
		} else {
			t.c.opts.logger.Warn("rpc: watch failed; keeping the last known instances", "service", t.service, "err", err)
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// update installs a new instance list from the registry.
func (t *target) update(insts []registry.Instance) {
	filtered := insts // call filters are applied per pick, see pick
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.c.now()
	t.synced = now
	if len(filtered) == 0 && len(t.instances) > 0 && !t.allDraining(now) {
		// A registry that lost its data (Redis restarted empty) reports no
		// instances until the servers' next heartbeats. Keep routing to the
		// last known ones for a while rather than failing every call.
		if t.emptySince.IsZero() {
			t.emptySince = now
		}
		if now.Sub(t.emptySince) < emptyGrace {
			t.rebuild(now)
			return
		}
	}
	if t.emptySince.IsZero() && t.snap.Load() != nil && sameInstances(t.instances, filtered) {
		return // nothing changed: keep the picker (and its rotation)
	}
	t.emptySince = time.Time{}
	present := make(map[string]bool, len(filtered))
	for _, in := range filtered {
		present[in.Addr] = true
	}
	for addr := range t.health {
		if !present[addr] {
			delete(t.health, addr) // gone: a later instance there starts fresh
		}
	}
	t.instances = filtered
	t.err = nil
	t.rebuild(now)
}

// emptyGrace is how long a client keeps using the last known instances
// after the registry suddenly lists none of them (and none announced a
// shutdown).
const emptyGrace = 5 * time.Second

// allDraining reports whether every known instance announced its shutdown;
// t.mu is held.
func (t *target) allDraining(now time.Time) bool {
	for _, in := range t.instances {
		if h := t.health[in.Addr]; h == nil || !h.drainingUntil.After(now) {
			return false
		}
	}
	return true
}

// rebuild makes a new snapshot from instances and health; t.mu is held.
func (t *target) rebuild(now time.Time) {
	health := make(map[string]*addrHealth, len(t.instances))
	var healthy, all []lb.Endpoint
	var expires time.Time
	for _, in := range t.instances {
		h := t.health[in.Addr]
		if h == nil {
			h = &addrHealth{}
			t.health[in.Addr] = h
		}
		health[in.Addr] = h
		ep := lb.Endpoint{Addr: in.Addr, Weight: in.Weight, Meta: in.Meta}
		all = append(all, ep)
		until := h.ejectedUntil
		if h.drainingUntil.After(until) {
			until = h.drainingUntil
		}
		if until.After(now) {
			if expires.IsZero() || until.Before(expires) {
				expires = until
			}
			continue
		}
		healthy = append(healthy, ep)
	}
	if len(healthy) == 0 {
		healthy = all // never eject the last instances
	}
	if !t.emptySince.IsZero() {
		// Routing on a stale list: look again when the grace ends.
		if end := t.emptySince.Add(emptyGrace); expires.IsZero() || end.Before(expires) {
			expires = end
		}
	}
	s := &targetSnap{picker: t.c.opts.balancer.Build(healthy), total: len(all), all: t.instances, health: health}
	if !expires.IsZero() {
		s.expires = expires.UnixNano()
	}
	t.snap.Store(s)
}

// pick chooses the address of the next attempt, avoiding those tried; with
// again it falls back to one of them when no other is left.
func (t *target) pick(o *callOptions, tried []string, again bool) (string, func(lb.DoneInfo), error) {
	s := t.snap.Load()
	if s != nil && s.expires != 0 && t.c.now().UnixNano() >= s.expires {
		t.mu.Lock()
		if s == t.snap.Load() {
			now := t.c.now()
			if !t.emptySince.IsZero() && now.Sub(t.emptySince) >= emptyGrace {
				t.instances = nil // the registry has meant it
				t.emptySince = time.Time{}
			}
			t.rebuild(now)
		}
		t.mu.Unlock()
		s = t.snap.Load()
	}
	if s == nil {
		t.mu.Lock()
		err := t.err
		t.mu.Unlock()
		if err == nil {
			err = fmt.Errorf("%w %s", ErrNoInstances, t.service)
		}
		return "", nil, err
	}
	if s.total == 0 {
		return "", nil, fmt.Errorf("%w %s", ErrNoInstances, t.service)
	}
	exclude := tried
	var filtered []string
	if len(o.filter) > 0 {
		for _, in := range s.all {
			if !matches(in.Meta, o.filter) {
				filtered = append(filtered, in.Addr)
			}
		}
		if len(filtered) == len(s.all) {
			return "", nil, fmt.Errorf("%w %s matching %v", ErrNoInstances, t.service, o.filter)
		}
		exclude = append(filtered, tried...)
	}
	res, err := s.picker.Pick(lb.PickInfo{Key: o.hashKey, Exclude: exclude})
	if errors.Is(err, lb.ErrNoEndpoints) && again && len(exclude) > len(filtered) {
		// Everything was tried: allow a second go at one of them.
		res, err = s.picker.Pick(lb.PickInfo{Key: o.hashKey, Exclude: filtered})
	}
	if err != nil {
		if errors.Is(err, lb.ErrNoEndpoints) {
			return "", nil, fmt.Errorf("%w %s (%v)", ErrNoInstances, t.service, err)
		}
		return "", nil, err
	}
	return res.Addr, res.Done, nil
}

// outcome counts consecutive failed calls on addr and ejects it after
// opts.ejectAfter of them, for a period that grows with each ejection.
func (t *target) outcome(addr string, transportErr error) {
	s := t.snap.Load()
	if s == nil {
		return
	}
	h := s.health[addr]
	if h == nil {
		return
	}
	if transportErr == nil {
		if h.failures.Load() != 0 {
			h.failures.Store(0)
		}
		return
	}
	n := t.c.opts.ejectAfter
	if n <= 0 || h.failures.Add(1) < int32(n) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.c.now()
	if h.ejectedUntil.After(now) {
		return
	}
	h.failures.Store(0)
	if h.ejectedUntil.IsZero() || now.Sub(h.ejectedUntil) > 30*t.c.opts.ejectFor {
		h.ejections = 0
	}
	h.ejections++
	d := min(t.c.opts.ejectFor<<min(h.ejections-1, 5), 30*t.c.opts.ejectFor)
	h.ejectedUntil = now.Add(d)
	t.c.opts.logger.Warn("rpc: ejecting instance after consecutive failures", "service", t.service, "addr", addr, "for", d, "err", transportErr)
	t.rebuild(now)
}

// drainMark is how long a draining address is avoided unless the registry
// shows it gone and back first.
const drainMark = 10 * time.Second

// drain stops routing to addr, whose server is shutting down.
func (t *target) drain(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.health[addr]
	if h == nil {
		return
	}
	now := t.c.now()
	h.drainingUntil = now.Add(drainMark)
	if !t.emptySince.IsZero() && t.allDraining(now) {
		// The registry's empty list is explained: they all shut down.
		t.instances = nil
		t.emptySince = time.Time{}
	}
	t.rebuild(now)
}

// sameInstances reports whether a and b list the same instances in the
// same order.
func sameInstances(a, b []registry.Instance) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Addr != b[i].Addr || a[i].Weight != b[i].Weight || !maps.Equal(a[i].Meta, b[i].Meta) {
			return false
		}
	}
	return true
}

func (t *target) close() { t.cancel() }

// matches reports whether meta has every key=value of filter.
func matches(meta, filter map[string]string) bool {
	for k, v := range filter {
		if meta[k] != v {
			return false
		}
	}
	return true
}
