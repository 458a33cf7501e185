// Package lb holds seedrpc's client-side load balancers.
//
// A [Balancer] turns the current members of a service, a []Endpoint, into a
// [Picker]. The client calls Build on every membership change and swaps the
// new Picker in atomically. A Picker is an immutable snapshot: Pick never
// blocks, takes no lock and is safe for concurrent use, so every goroutine can
// pick without contention.
//
//	p := lb.RoundRobin().Build([]lb.Endpoint{{Addr: "10.0.0.1:9000"}, {Addr: "10.0.0.2:9000"}})
//	res, err := p.Pick(lb.PickInfo{})      // err is lb.ErrNoEndpoints when nothing is left
//	start := time.Now()
//	err = callOn(res.Addr)                 // the caller's work
//	if res.Done != nil {
//		res.Done(lb.DoneInfo{Err: err, Latency: time.Since(start)})
//	}
//
// Five strategies ship with the package:
//
//   - [Random]: a uniformly random endpoint.
//   - [RoundRobin]: the endpoints in turn, from a random start.
//   - [WeightedRoundRobin]: smooth weighted round robin, as in nginx.
//   - [ConsistentHash]: a hash ring keyed by [PickInfo.Key], so one key stays
//     on one endpoint and a membership change moves few keys.
//   - [LeastLoaded]: power of two choices over in-flight calls and an EWMA
//     of latency fed back through [PickResult.Done].
//
// Every picker avoids the addresses in [PickInfo.Exclude] (the instances a
// call has already tried) and returns [ErrNoEndpoints] when nothing else is
// left; the caller then decides whether to retry with Exclude unset.
//
// A custom strategy implements Balancer and Picker under the same rules; see
// the CustomBalancer example.
package lb

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// ErrNoEndpoints is returned by Pick when the picker holds no endpoints, or
// when every endpoint is listed in PickInfo.Exclude.
var ErrNoEndpoints = errors.New("lb: no endpoints")

// Endpoint is one instance of a service, as a balancer sees it.
type Endpoint struct {
	// Addr is the address the client dials; it identifies the endpoint.
	Addr string
	// Weight is the endpoint's relative capacity, used by WeightedRoundRobin
	// and ConsistentHash. Zero or negative counts as 1.
	Weight int
	// Meta is the instance's metadata (for example "version": "v2"), for
	// custom balancers. Balancers do not modify it.
	Meta map[string]string
}

// PickInfo describes the call a Picker is choosing an endpoint for.
type PickInfo struct {
	// Key is the call's hash key (rpc.WithHashKey); "" when it has none.
	// Only ConsistentHash looks at it.
	Key string
	// Exclude lists the addresses to avoid, typically those this call has
	// already tried. It may be nil. Pick never returns one of them.
	Exclude []string
}

// DoneInfo reports how a call on a picked endpoint ended.
type DoneInfo struct {
	// Err is the call's error, nil on success.
	Err error
	// Latency is how long the call took on that endpoint.
	Latency time.Duration
}

// PickResult is the endpoint chosen for one call.
type PickResult struct {
	// Addr is the address to send the call to.
	Addr string
	// Done, if not nil, must be called exactly once when the call ends, with
	// its outcome. Balancers that learn from outcomes (LeastLoaded) set it.
	Done func(DoneInfo)
}

// Picker chooses an endpoint for each call. A Picker is an immutable snapshot
// of one membership: Pick must not block, takes no lock and is safe for
// concurrent use.
type Picker interface {
	// Pick returns an endpoint not listed in info.Exclude, or ErrNoEndpoints
	// when there is none.
	Pick(info PickInfo) (PickResult, error)
}

// Balancer builds pickers. One Balancer may serve several services of a
// client, so Build may be called with different endpoint sets, concurrently.
type Balancer interface {
	// Build returns a new picker over eps. It is called on every membership
	// change; the picker keeps its own copy of eps. Endpoints with an empty
	// Addr are ignored and of several with the same Addr the first counts.
	// An empty eps gives a picker that returns ErrNoEndpoints.
	Build(eps []Endpoint) Picker
	// Name returns the strategy's name, for logs and metrics.
	Name() string
}

// emptyPicker is the picker of an empty membership.
type emptyPicker struct{}

var _ Picker = emptyPicker{}

// Pick returns ErrNoEndpoints.
func (emptyPicker) Pick(PickInfo) (PickResult, error) { return PickResult{}, ErrNoEndpoints }

// snapshot returns a private copy of eps without empty or duplicate
// addresses, so a picker never shares the caller's slice.
func snapshot(eps []Endpoint) []Endpoint {
	out := make([]Endpoint, 0, len(eps))
	seen := make(map[string]struct{}, len(eps))
	for _, e := range eps {
		if _, dup := seen[e.Addr]; dup || e.Addr == "" {
			continue
		}
		seen[e.Addr] = struct{}{}
		out = append(out, e)
	}
	return out
}

// addrsOf returns the addresses of eps, in order.
func addrsOf(eps []Endpoint) []string {
	addrs := make([]string, len(eps))
	for i, e := range eps {
		addrs[i] = e.Addr
	}
	return addrs
}

// weightOf returns e's weight, with zero or negative counting as 1.
func weightOf(e Endpoint) int { return max(e.Weight, 1) }

// excluded reports whether addr is in exclude.
func excluded(addr string, exclude []string) bool { return slices.Contains(exclude, addr) }

// countAllowed returns how many of addrs are not in exclude.
func countAllowed(addrs, exclude []string) int {
	n := 0
	for _, a := range addrs {
		if !excluded(a, exclude) {
			n++
		}
	}
	return n
}

// nthAllowed returns the index of the k-th (from 0) address of addrs that is
// not in exclude, or -1.
func nthAllowed(addrs, exclude []string, k int) int {
	for i, a := range addrs {
		if excluded(a, exclude) {
			continue
		}
		if k == 0 {
			return i
		}
		k--
	}
	return -1
}

// pickUniform returns the index of an address of addrs chosen uniformly among
// those not in exclude, or -1 when every one is excluded. addrs is not empty.
//
// It first tries one plain random index, which is all that is needed without
// exclusions. When that one is excluded it draws again among the allowed
// ones; the two steps together are still uniform over the allowed addresses.
func pickUniform(addrs, exclude []string) int {
	i := rand.IntN(len(addrs))
	if len(exclude) == 0 || !excluded(addrs[i], exclude) {
		return i
	}
	c := countAllowed(addrs, exclude)
	if c == 0 {
		return -1
	}
	return nthAllowed(addrs, exclude, rand.IntN(c))
}

// units returns the weights of eps reduced to small integers that keep their
// ratios: zero and negative weights count as 1, the weights are divided by
// their greatest common divisor, and if they still sum to more than maxSum
// they are scaled down (each staying at least 1). The result sums to at most
// about maxSum+len(eps).
func units(eps []Endpoint, maxSum int) []int {
	u := make([]int, len(eps))
	g := 0
	for i, e := range eps {
		u[i] = weightOf(e)
		g = gcd(g, u[i])
	}
	sum := 0.0 // float64: the sum of large weights may overflow an int
	for i := range u {
		u[i] /= g
		sum += float64(u[i])
	}
	if sum <= float64(maxSum) {
		return u
	}
	scale := float64(maxSum) / sum
	g = 0
	for i := range u {
		u[i] = max(1, int(math.Round(float64(u[i])*scale)))
		g = gcd(g, u[i])
	}
	for i := range u {
		u[i] /= g
	}
	return u
}

// gcd returns the greatest common divisor of a and b (gcd(0, b) == b).
func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
