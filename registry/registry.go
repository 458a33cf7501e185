// Package registry lets servers announce themselves and clients find them.
//
// A server registers one Instance per service it serves; the registry keeps it
// alive with a heartbeat until Deregister (graceful stop) or until the process
// dies, after which it disappears within one TTL. A client looks instances up,
// or watches a service and receives the full list again after every change:
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 []string{"127.0.0.1:6379"},
//		ContextTimeoutEnabled: true, // let ctx deadlines bound every call
//	})
//	reg := registry.NewRedis(rdb, registry.WithTTL(10*time.Second))
//	defer reg.Close()
//	err := reg.Register(ctx, registry.Instance{Service: "Calc", Addr: "10.0.0.5:9000"})
//	insts, err := reg.Lookup(ctx, "Calc")
//	ch, err := reg.Watch(ctx, "Calc") // full list now, and after every change
//
// Two implementations share the Registry semantics (one conformance suite
// tests both):
//
//   - Redis stores each service in one sorted set scored by expiry time on
//     Redis's own clock, so the servers' clocks never matter. It works with any
//     redis.UniversalClient: single node, Sentinel or Cluster.
//   - Memory keeps everything in process, for tests and single-process use.
//
// Close stops every heartbeat and watcher the registry owns and waits for them.
// It does not deregister: to other processes a closed registry looks like a
// crashed one, and its instances expire after one TTL. Call Deregister first
// for a graceful stop.
package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Instance is one server's announcement of one service.
type Instance struct {
	Service string            // exact service name, e.g. "Calc"
	Addr    string            // what clients dial, e.g. "10.0.0.5:9000"
	Weight  int               // for weighted balancers; 0 means 1
	Meta    map[string]string // labels: version, zone, ...; empty is returned as nil
}

// Registry is implemented by Redis and Memory.
type Registry interface {
	// Register adds inst and keeps it alive (heartbeat owned by the registry)
	// until Deregister or the registry's Close. Re-adds it by itself if the
	// backing store lost it (Redis restarted empty). Registering the same
	// (Service, Addr) twice updates it. When the first write fails, Register
	// returns the error and keeps nothing alive.
	Register(ctx context.Context, inst Instance) error
	// Deregister stops the heartbeat and removes inst at once (watchers
	// notified). Only Service and Addr of inst are used. Removing an instance
	// that is not registered is not an error.
	Deregister(ctx context.Context, inst Instance) error
	// Lookup returns the live instances of service (exact name), sorted by Addr.
	// No instances: an empty slice and nil error.
	Lookup(ctx context.Context, service string) ([]Instance, error)
	// Watch sends the full current instance list at once and again after every
	// change (latest-value semantics: a slow reader gets the newest list, never
	// a stale one). The channel is closed when ctx is done or the registry closes.
	Watch(ctx context.Context, service string) (<-chan []Instance, error)
}

var (
	// ErrClosed is returned by Register, Deregister, Lookup and Watch after Close.
	ErrClosed = errors.New("registry: closed")
	// ErrInvalidInstance is returned by Register and Deregister for an Instance
	// without Service or Addr, and by Lookup and Watch for an empty service.
	ErrInvalidInstance = errors.New("registry: invalid instance")
)

// Compile-time checks.
var (
	_ Registry = (*Redis)(nil)
	_ Registry = (*Memory)(nil)
)

func validate(inst Instance) error {
	switch {
	case inst.Service == "":
		return fmt.Errorf("%w: empty Service", ErrInvalidInstance)
	case inst.Addr == "":
		return fmt.Errorf("%w: empty Addr", ErrInvalidInstance)
	}
	return nil
}

func validateService(service string) error {
	if service == "" {
		return fmt.Errorf("%w: empty service name", ErrInvalidInstance)
	}
	return nil
}

// clone returns a deep copy of inst with an empty Meta normalised to nil.
func (inst Instance) clone() Instance {
	if len(inst.Meta) == 0 {
		inst.Meta = nil
	} else {
		inst.Meta = maps.Clone(inst.Meta)
	}
	return inst
}

// sortInstances sorts by Addr, the order Lookup promises.
func sortInstances(insts []Instance) {
	slices.SortFunc(insts, func(a, b Instance) int {
		switch {
		case a.Addr < b.Addr:
			return -1
		case a.Addr > b.Addr:
			return 1
		}
		return 0
	})
}

// equalInstances reports whether two sorted lists are the same membership.
func equalInstances(a, b []Instance) bool {
	return slices.EqualFunc(a, b, func(x, y Instance) bool {
		return x.Service == y.Service && x.Addr == y.Addr && x.Weight == y.Weight && maps.Equal(x.Meta, y.Meta)
	})
}
