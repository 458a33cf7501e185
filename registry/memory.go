package registry

import (
	"context"
	"sync"
	"time"
)

// Memory is an in-process Registry with the same semantics as Redis: every
// instance has a TTL refreshed by a heartbeat the Memory owns, expired
// instances are pruned on read, and watchers see every change, expiries
// included. It is meant for tests and single-process use.
type Memory struct {
	opts    options
	beats   heartbeats
	watches watchers

	mu       sync.Mutex                            // guards services, notify, closed
	services map[string]map[string]memEntry        // service -> addr -> entry
	notify   map[string]map[chan struct{}]struct{} // service -> watcher wake-ups
	closed   bool
}

type memEntry struct {
	inst    Instance
	expires time.Time
}

// NewMemory returns an empty in-process registry. Close it when done.
func NewMemory(opts ...Option) *Memory {
	return &Memory{
		opts:     newOptions(opts),
		services: make(map[string]map[string]memEntry),
		notify:   make(map[string]map[chan struct{}]struct{}),
	}
}

// Register adds inst and keeps it alive until Deregister or Close.
func (m *Memory) Register(ctx context.Context, inst Instance) error {
	if err := validate(inst); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	inst = inst.clone()
	if err := m.put(inst); err != nil {
		return err
	}
	k := instanceKey{inst.Service, inst.Addr}
	return m.beats.start(k, m.opts.heartbeat, func(context.Context) {
		if err := m.put(inst); err != nil {
			return // closed; the loop is being stopped
		}
	})
}

// put adds or refreshes inst and wakes watchers when membership changed.
func (m *Memory) put(inst Instance) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	changed := m.pruneLocked(inst.Service, now)
	insts := m.services[inst.Service]
	if insts == nil {
		insts = make(map[string]memEntry)
		m.services[inst.Service] = insts
	}
	old, ok := insts[inst.Addr]
	if !ok || !equalInstances([]Instance{old.inst}, []Instance{inst}) {
		changed = true
	}
	insts[inst.Addr] = memEntry{inst: inst, expires: now.Add(m.opts.ttl)}
	if changed {
		m.wakeLocked(inst.Service)
	}
	return nil
}

// Deregister stops inst's heartbeat and removes it at once.
func (m *Memory) Deregister(ctx context.Context, inst Instance) error {
	if err := validate(inst); err != nil {
		return err
	}
	m.beats.stop(instanceKey{inst.Service, inst.Addr})
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	insts := m.services[inst.Service]
	if _, ok := insts[inst.Addr]; ok {
		delete(insts, inst.Addr)
		if len(insts) == 0 {
			delete(m.services, inst.Service)
		}
		m.wakeLocked(inst.Service)
	}
	return nil
}

// Lookup returns the live instances of service, sorted by Addr.
func (m *Memory) Lookup(ctx context.Context, service string) ([]Instance, error) {
	if err := validateService(service); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	insts, _, err := m.lookup(service)
	return insts, err
}

// lookup prunes and lists service; untilExpiry is the time until the earliest
// live instance expires, or -1 when there is none.
func (m *Memory) lookup(service string) (insts []Instance, untilExpiry time.Duration, err error) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, 0, ErrClosed
	}
	if m.pruneLocked(service, now) {
		m.wakeLocked(service)
	}
	untilExpiry = -1
	insts = make([]Instance, 0, len(m.services[service]))
	for _, e := range m.services[service] {
		insts = append(insts, e.inst.clone())
		if d := e.expires.Sub(now); untilExpiry < 0 || d < untilExpiry {
			untilExpiry = d
		}
	}
	sortInstances(insts)
	return insts, untilExpiry, nil
}

// pruneLocked drops service's expired instances and reports whether any were.
func (m *Memory) pruneLocked(service string, now time.Time) bool {
	insts := m.services[service]
	pruned := false
	for addr, e := range insts {
		if !e.expires.After(now) {
			delete(insts, addr)
			pruned = true
		}
	}
	if insts != nil && len(insts) == 0 {
		delete(m.services, service)
	}
	return pruned
}

// wakeLocked tells service's watchers to re-read it.
func (m *Memory) wakeLocked(service string) {
	for ch := range m.notify[service] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// Watch sends the current instances of service at once and after every change.
func (m *Memory) Watch(ctx context.Context, service string) (<-chan []Instance, error) {
	if err := validateService(service); err != nil {
		return nil, err
	}
	wctx, release, err := m.watches.add(ctx)
	if err != nil {
		return nil, err
	}
	wake := make(chan struct{}, 1)
	m.mu.Lock()
	if m.notify[service] == nil {
		m.notify[service] = make(map[chan struct{}]struct{})
	}
	m.notify[service][wake] = struct{}{}
	m.mu.Unlock()
	unsubscribe := func() {
		m.mu.Lock()
		delete(m.notify[service], wake)
		if len(m.notify[service]) == 0 {
			delete(m.notify, service)
		}
		m.mu.Unlock()
	}

	last, untilExpiry, err := m.lookup(service)
	if err != nil {
		unsubscribe()
		release()
		return nil, err
	}
	out := make(chan []Instance, 1)
	out <- last
	go func() {
		defer release()
		defer close(out)
		defer unsubscribe()
		for {
			t := time.NewTimer(nextWake(m.opts.resync, untilExpiry))
			select {
			case <-wctx.Done():
				t.Stop()
				return
			case <-wake:
			case <-t.C:
			}
			t.Stop()
			var insts []Instance
			insts, untilExpiry, err = m.lookup(service)
			if err != nil {
				return // closed
			}
			if !equalInstances(insts, last) {
				last = insts
				offer(out, cloneInstances(insts))
			}
		}
	}()
	return out, nil
}

// Close stops every heartbeat and watcher and waits for them. It does not
// deregister anything; it is idempotent and always returns nil.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.beats.close()
	m.watches.close()
	return nil
}

// stopHeartbeat stops k's heartbeat without removing it, as a crash would.
func (m *Memory) stopHeartbeat(service, addr string) bool {
	return m.beats.stop(instanceKey{service, addr})
}

func cloneInstances(insts []Instance) []Instance {
	out := make([]Instance, len(insts))
	for i, inst := range insts {
		out[i] = inst.clone()
	}
	return out
}
