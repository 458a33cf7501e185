package rpc

import "time"

// ClientStats is a snapshot of a client's connections and service
// discovery, for metrics and debugging (the contrib/prometheus module
// exports it). Its maps are the caller's to keep.
type ClientStats struct {
	// Conns is the number of open connections per address the client has
	// dialled; 0 for an address whose connections were all lost.
	Conns map[string]int
	// Instances is, per service the client has looked up in its registry,
	// the number of instances it routes to (the registry's latest list,
	// or the last known one while the registry briefly lists none).
	Instances map[string]int
	// Synced is, per service the client has looked up, when the registry
	// last gave it the service's instance list: the first lookup, then
	// every list its watch delivered. A watch delivers a list when the
	// membership changes (and in full when the client starts watching
	// again), so in a quiet fleet this ages: it tells how old the client's
	// view is, not whether the registry is reachable. A service whose
	// first lookup failed has none.
	Synced map[string]time.Time
}

// Stats returns a snapshot of the client's pools and discovery. It takes
// each pool's and service's lock briefly and never waits on the network.
func (c *Client) Stats() ClientStats {
	s := ClientStats{Conns: make(map[string]int), Instances: make(map[string]int), Synced: make(map[string]time.Time)}
	c.pools.Range(func(k, v any) bool {
		p := v.(*connPool)
		p.mu.Lock()
		s.Conns[k.(string)] = len(p.conns)
		p.mu.Unlock()
		return true
	})
	c.targets.Range(func(k, v any) bool {
		t := v.(*target)
		t.mu.Lock()
		if snap := t.snap.Load(); snap != nil {
			s.Instances[k.(string)] = snap.total
		}
		if !t.synced.IsZero() {
			s.Synced[k.(string)] = t.synced
		}
		t.mu.Unlock()
		return true
	})
	return s
}
