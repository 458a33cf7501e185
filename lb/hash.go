package lb

import (
	"cmp"
	"slices"
)

const (
	// ringReplicas is the number of points a weight-1 endpoint has on the
	// hash ring; more points spread the keys more evenly.
	ringReplicas = 160
	// maxRingUnits bounds the sum of normalized weights on a ring (beyond
	// one unit per endpoint), so that extreme weights cannot blow it up.
	maxRingUnits = 1024
)

// ConsistentHash returns a Balancer whose pickers place endpoints on a hash
// ring and send each call to the endpoint that owns PickInfo.Key, so all
// calls with one key go to one endpoint. Each endpoint has 160 virtual nodes
// per unit of weight (weights reduced by their gcd), so adding one endpoint
// to N moves about 1/(N+1) of the keys, all of them to the new endpoint, and
// removing one moves only the keys it owned.
//
// The ring depends only on the addresses and weights, never on the order of
// the endpoints or on the process, so every client agrees on where a key
// lives. A call with an empty Key goes to a random endpoint. An excluded
// owner is replaced by the next distinct endpoint clockwise on the ring:
// the one that would own the key if the excluded ones were gone.
func ConsistentHash() Balancer { return consistentHash{} }

// consistentHash is the Balancer returned by ConsistentHash.
type consistentHash struct{}

var (
	_ Balancer = consistentHash{}
	_ Picker   = (*hashPicker)(nil)
)

// Name returns "consistent_hash".
func (consistentHash) Name() string { return "consistent_hash" }

// Build returns a picker over eps.
func (consistentHash) Build(eps []Endpoint) Picker {
	eps = snapshot(eps)
	if len(eps) == 0 {
		return emptyPicker{}
	}
	u := units(eps, max(maxRingUnits, len(eps)))
	type point struct {
		hash  uint64
		owner int32
	}
	total := 0
	for _, w := range u {
		total += w * ringReplicas
	}
	points := make([]point, 0, total)
	for i, e := range eps {
		seed := hashString(e.Addr)
		for r := range u[i] * ringReplicas {
			points = append(points, point{hash: mix64(seed + uint64(r+1)*golden64), owner: int32(i)})
		}
	}
	// Order by hash, then by address, so that colliding points resolve the
	// same way whatever the order of eps.
	slices.SortFunc(points, func(a, b point) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return cmp.Compare(eps[a.owner].Addr, eps[b.owner].Addr)
	})
	p := &hashPicker{
		addrs:  addrsOf(eps),
		hashes: make([]uint64, len(points)),
		owners: make([]int32, len(points)),
	}
	for i, pt := range points {
		p.hashes[i], p.owners[i] = pt.hash, pt.owner
	}
	return p
}

// hashPicker is an immutable hash ring: hashes is sorted and owners[i] is the
// index into addrs of the endpoint owning point hashes[i].
type hashPicker struct {
	addrs  []string // not empty
	hashes []uint64
	owners []int32
}

// Pick returns the owner of info.Key on the ring, skipping excluded
// endpoints; with an empty key it returns a random endpoint.
func (p *hashPicker) Pick(info PickInfo) (PickResult, error) {
	if info.Key == "" {
		i := pickUniform(p.addrs, info.Exclude)
		if i < 0 {
			return PickResult{}, ErrNoEndpoints
		}
		return PickResult{Addr: p.addrs[i]}, nil
	}
	i, _ := slices.BinarySearch(p.hashes, hashString(info.Key))
	if i == len(p.hashes) {
		i = 0
	}
	a := p.addrs[p.owners[i]]
	if len(info.Exclude) == 0 || !excluded(a, info.Exclude) {
		return PickResult{Addr: a}, nil
	}
	if countAllowed(p.addrs, info.Exclude) == 0 {
		return PickResult{}, ErrNoEndpoints
	}
	// Walk clockwise to the first point of an allowed endpoint; one exists.
	last := p.owners[i] // known excluded
	for {
		if i++; i == len(p.hashes) {
			i = 0
		}
		o := p.owners[i]
		if o == last {
			continue
		}
		if a := p.addrs[o]; !excluded(a, info.Exclude) {
			return PickResult{Addr: a}, nil
		}
		last = o
	}
}

// FNV-1a 64 parameters and the golden-ratio increment of splitmix64.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
	golden64    = 0x9e3779b97f4a7c15
)

// hashString returns a 64-bit hash of s that is the same in every process
// (unlike hash/maphash): FNV-1a, then a finalizer so that every input bit
// reaches every output bit, which FNV alone does poorly for short keys.
func hashString(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return mix64(h)
}

// mix64 is the splitmix64 / murmur3 style 64-bit finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
