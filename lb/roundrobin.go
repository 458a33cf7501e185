package lb

import (
	"math/rand/v2"
	"sync/atomic"
)

// RoundRobin returns a Balancer whose pickers hand out the endpoints in turn.
// Each picker starts at a random offset, so that many clients built at the
// same moment do not all send their first call to the same endpoint. Weights
// are ignored; see WeightedRoundRobin.
func RoundRobin() Balancer { return roundRobin{} }

// roundRobin is the Balancer returned by RoundRobin.
type roundRobin struct{}

var (
	_ Balancer = roundRobin{}
	_ Picker   = (*rrPicker)(nil)
)

// Name returns "round_robin".
func (roundRobin) Name() string { return "round_robin" }

// Build returns a picker over eps.
func (roundRobin) Build(eps []Endpoint) Picker {
	eps = snapshot(eps)
	if len(eps) == 0 {
		return emptyPicker{}
	}
	p := &rrPicker{addrs: addrsOf(eps)}
	p.next.Store(rand.Uint64())
	return p
}

// rrPicker cycles through addrs with an atomic counter; addrs is never
// modified after Build.
type rrPicker struct {
	addrs []string // not empty
	next  atomic.Uint64
}

// Pick returns the next endpoint in turn. An excluded endpoint is skipped in
// favour of the next one in the cycle.
func (p *rrPicker) Pick(info PickInfo) (PickResult, error) {
	n := uint64(len(p.addrs))
	i := (p.next.Add(1) - 1) % n
	if len(info.Exclude) == 0 {
		return PickResult{Addr: p.addrs[i]}, nil
	}
	for range n {
		if a := p.addrs[i]; !excluded(a, info.Exclude) {
			return PickResult{Addr: a}, nil
		}
		i = (i + 1) % n
	}
	return PickResult{}, ErrNoEndpoints
}
