package rpc

import "time"

// ClientStats is a snapshot of a client's connections and service
// discovery, for metrics and debugging (the contrib/prometheus module
// exports it). Its maps are the caller's to keep.
type ClientStats struct {
	// Conns is the number of open connections per address the client has
	// dialled, those that carry large transfers included (see
	// docs/PROTOCOL.md section 21); 0 for an address whose connections
	// were all lost.
	Conns map[string]int
	// Instances is, per service the client has looked up in its registry,
	// the number of instances it routes to (the registry's latest list,
	// or the last known one while the registry briefly lists none).
	Instances map[string]int
	// Synced is, per service the client has looked up, when its view of
	// the service was last known current: the registry's last successful
	// sync of the service when the registry reports it (registry.Redis's
	// LastSync: a full read, or a change or expiry-check message applied),
	// else when the registry last gave the client the service's list. It
	// ages while the registry is unreachable. A service whose first lookup
	// failed has none.
	Synced map[string]time.Time
}

// lastSyncer is a registry that tells when it last synced a service with
// its store (registry.Redis).
type lastSyncer interface {
	LastSync(service string) time.Time
}

// Stats returns a snapshot of the client's pools and discovery. It takes
// each pool's and service's lock briefly and never waits on the network.
func (c *Client) Stats() ClientStats {
	s := ClientStats{Conns: make(map[string]int), Instances: make(map[string]int), Synced: make(map[string]time.Time)}
	c.pools.Range(func(k, v any) bool {
		p := v.(*connPool)
		p.mu.Lock()
		s.Conns[k.(string)] = len(p.conns)
		bulk := p.bulk
		p.mu.Unlock()
		if bulk != nil { // its bulk connection (client_bulk.go)
			bulk.mu.Lock()
			s.Conns[k.(string)] += len(bulk.conns)
			bulk.mu.Unlock()
		}
		return true
	})
	c.targets.Range(func(k, v any) bool {
		t := v.(*target)
		t.mu.Lock()
		if snap := t.snap.Load(); snap != nil {
			s.Instances[k.(string)] = snap.total
		}
		synced := t.synced
		t.mu.Unlock()
		if ls, ok := c.opts.registry.(lastSyncer); ok && !synced.IsZero() {
			if at := ls.LastSync(k.(string)); at.After(synced) {
				synced = at
			}
		}
		if !synced.IsZero() {
			s.Synced[k.(string)] = synced
		}
		return true
	})
	return s
}
