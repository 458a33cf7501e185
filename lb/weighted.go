package lb

import (
	"math/rand/v2"
	"sync/atomic"
)

// maxCycle bounds the length of a smooth weighted round robin cycle: weights
// whose sum exceeds it are scaled down, keeping their ratios to within about
// 1/maxCycle.
const maxCycle = 4096

// WeightedRoundRobin returns a Balancer whose pickers use smooth weighted
// round robin, as nginx does: over every cycle each endpoint gets a share of
// the calls proportional to its Weight, and the picks of a heavy endpoint are
// spread through the cycle rather than sent in a burst. With weights 5, 1, 1
// for a, b, c the cycle is a a b a c a a. Zero, negative or missing weights
// count as 1.
//
// The pickers are lock-free: Build computes one full cycle up front and Pick
// indexes it with an atomic counter, from a random start.
func WeightedRoundRobin() Balancer { return weightedRoundRobin{} }

// weightedRoundRobin is the Balancer returned by WeightedRoundRobin.
type weightedRoundRobin struct{}

var (
	_ Balancer = weightedRoundRobin{}
	_ Picker   = (*wrrPicker)(nil)
)

// Name returns "weighted_round_robin".
func (weightedRoundRobin) Name() string { return "weighted_round_robin" }

// Build returns a picker over eps.
func (weightedRoundRobin) Build(eps []Endpoint) Picker {
	eps = snapshot(eps)
	if len(eps) == 0 {
		return emptyPicker{}
	}
	u := units(eps, maxCycle)
	p := &wrrPicker{addrs: addrsOf(eps), units: u, seq: smoothCycle(u)}
	p.next.Store(rand.Uint64())
	return p
}

// smoothCycle returns one full cycle of nginx's smooth weighted round robin
// over weights u (all >= 1, reduced by their gcd), as endpoint indexes. Each
// step adds every weight to its endpoint's current value, picks the largest
// current value (the lowest index on ties) and takes the total off it. After
// sum(u) steps every current value is back to zero, so the cycle repeats.
func smoothCycle(u []int) []int32 {
	total := 0
	for _, w := range u {
		total += w
	}
	seq := make([]int32, 0, total)
	if total == len(u) { // all weights equal: plain round robin, no O(n²) build
		for i := range u {
			seq = append(seq, int32(i))
		}
		return seq
	}
	cur := make([]int, len(u))
	for range total {
		best := 0
		for i, w := range u {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, int32(best))
	}
	return seq
}

// wrrPicker walks a precomputed smooth cycle with an atomic counter. Nothing
// but next changes after Build.
type wrrPicker struct {
	addrs []string // not empty
	units []int    // normalized weight of each addr, for the Exclude fallback
	seq   []int32  // one smooth cycle of indexes into addrs
	next  atomic.Uint64
}

// Pick returns the next endpoint of the smooth cycle. If that one is
// excluded it picks among the others at random, in proportion to their
// weights.
func (p *wrrPicker) Pick(info PickInfo) (PickResult, error) {
	i := (p.next.Add(1) - 1) % uint64(len(p.seq))
	a := p.addrs[p.seq[i]]
	if len(info.Exclude) == 0 || !excluded(a, info.Exclude) {
		return PickResult{Addr: a}, nil
	}
	total := 0
	for j, a := range p.addrs {
		if !excluded(a, info.Exclude) {
			total += p.units[j]
		}
	}
	if total == 0 {
		return PickResult{}, ErrNoEndpoints
	}
	r := rand.IntN(total)
	for j, a := range p.addrs {
		if excluded(a, info.Exclude) {
			continue
		}
		if r < p.units[j] {
			return PickResult{Addr: a}, nil
		}
		r -= p.units[j]
	}
	return PickResult{}, ErrNoEndpoints // unreachable: r < total
}
