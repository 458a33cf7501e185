package lb

import (
	"fmt"
	"slices"
	"testing"
)

// owners returns the address each of keys is picked for.
func owners(t *testing.T, p Picker, keys []string) []string {
	t.Helper()
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = pickAddr(t, p, PickInfo{Key: k})
	}
	return out
}

// hashKeys returns n distinct keys.
func hashKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}
	return keys
}

func TestConsistentHashStable(t *testing.T) {
	eps := endpoints(4)
	keys := hashKeys(1000)
	want := owners(t, ConsistentHash().Build(eps), keys)

	reversed := slices.Clone(eps)
	slices.Reverse(reversed)
	tests := []struct {
		name string
		give Picker
	}{
		{name: "same picker", give: ConsistentHash().Build(eps)},
		{name: "endpoints reversed", give: ConsistentHash().Build(reversed)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 {
				got := owners(t, tt.give, keys)
				for i, k := range keys {
					if got[i] != want[i] {
						t.Fatalf("Pick(Key %q) = %s, want %s", k, got[i], want[i])
					}
				}
			}
		})
	}
}

// TestConsistentHashFixedPlacement pins the hash and a few placements: the
// ring must be the same in every process and every release, or clients would
// disagree on where a key lives.
func TestConsistentHashFixedPlacement(t *testing.T) {
	if got, want := hashString("a"), mix64(0xaf63dc4c8601ec8c); got != want { // FNV-1a 64 of "a"
		t.Errorf("hashString(%q) = %#x, want %#x", "a", got, want)
	}
	p := ConsistentHash().Build(endpoints(4))
	tests := []struct {
		give string
		want string
	}{
		{give: "user-1", want: "10.0.0.2:9000"},
		{give: "user-2", want: "10.0.0.4:9000"},
		{give: "order-7", want: "10.0.0.3:9000"},
		{give: "alpha", want: "10.0.0.4:9000"},
		{give: "zeta", want: "10.0.0.3:9000"},
	}
	for _, tt := range tests {
		if got := pickAddr(t, p, PickInfo{Key: tt.give}); got != tt.want {
			t.Errorf("Pick(Key %q) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

func TestConsistentHashSpread(t *testing.T) {
	tests := []struct {
		give     int // endpoints
		keys     int
		wantMinN int // at least this many endpoints get keys
	}{
		{give: 4, keys: 40, wantMinN: 3},
		{give: 3, keys: 30, wantMinN: 3},
		{give: 8, keys: 10000, wantMinN: 8},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("endpoints=%d/keys=%d", tt.give, tt.keys), func(t *testing.T) {
			counts := map[string]int{}
			for _, a := range owners(t, ConsistentHash().Build(endpoints(tt.give)), hashKeys(tt.keys)) {
				counts[a]++
			}
			if len(counts) < tt.wantMinN {
				t.Errorf("%d keys went to %d endpoints %v, want >= %d", tt.keys, len(counts), counts, tt.wantMinN)
			}
			if tt.keys >= 1000 {
				mean := float64(tt.keys) / float64(tt.give)
				for a, n := range counts {
					if float64(n) < 0.5*mean || float64(n) > 1.5*mean {
						t.Errorf("endpoint %s owns %d keys, want %.0f ± 50%%", a, n, mean)
					}
				}
			}
		})
	}
}

func TestConsistentHashAddMovesFew(t *testing.T) {
	keys := hashKeys(10000)
	for _, n := range []int{2, 3, 4, 5, 8, 10} {
		t.Run(fmt.Sprintf("endpoints=%d", n), func(t *testing.T) {
			eps := endpoints(n + 1)
			added := eps[n].Addr
			before := owners(t, ConsistentHash().Build(eps[:n]), keys)
			after := owners(t, ConsistentHash().Build(eps), keys)
			moved := 0
			for i, k := range keys {
				if before[i] == after[i] {
					continue
				}
				moved++
				if after[i] != added {
					t.Fatalf("key %q moved %s -> %s, want it to stay or move to the new %s", k, before[i], after[i], added)
				}
			}
			frac, want := float64(moved)/float64(len(keys)), 1/float64(n+1)
			if frac < 0.5*want || frac > 1.5*want {
				t.Errorf("adding 1 endpoint to %d moved %.3f of the keys, want %.3f ± 50%%", n, frac, want)
			}
		})
	}
}

func TestConsistentHashRemoveMovesOnlyItsKeys(t *testing.T) {
	keys := hashKeys(10000)
	eps := endpoints(5)
	before := owners(t, ConsistentHash().Build(eps), keys)
	for r := range eps {
		t.Run(eps[r].Addr, func(t *testing.T) {
			rest := slices.Delete(slices.Clone(eps), r, r+1)
			after := owners(t, ConsistentHash().Build(rest), keys)
			for i, k := range keys {
				switch {
				case before[i] == eps[r].Addr && after[i] == eps[r].Addr:
					t.Fatalf("key %q still on removed %s", k, eps[r].Addr)
				case before[i] != eps[r].Addr && after[i] != before[i]:
					t.Fatalf("key %q moved %s -> %s, want it to stay", k, before[i], after[i])
				}
			}
		})
	}
}

// TestConsistentHashExclude checks that an excluded owner hands the key to
// the endpoint that would own it without the excluded one.
func TestConsistentHashExclude(t *testing.T) {
	keys := hashKeys(2000)
	eps := endpoints(5)
	p := ConsistentHash().Build(eps)
	tests := []struct {
		name string
		give []int // indexes of eps to exclude
	}{
		{name: "one", give: []int{0}},
		{name: "two", give: []int{1, 3}},
		{name: "all but one", give: []int{0, 1, 2, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ex []string
			var rest []Endpoint
			for i, e := range eps {
				if slices.Contains(tt.give, i) {
					ex = append(ex, e.Addr)
				} else {
					rest = append(rest, e)
				}
			}
			want := owners(t, ConsistentHash().Build(rest), keys)
			for i, k := range keys {
				for range 2 {
					if got := pickAddr(t, p, PickInfo{Key: k, Exclude: ex}); got != want[i] {
						t.Fatalf("Pick(Key %q, Exclude %v) = %s, want %s", k, ex, got, want[i])
					}
				}
			}
		})
	}
}

func TestConsistentHashEmptyKeyIsRandom(t *testing.T) {
	p := ConsistentHash().Build(endpoints(3))
	counts := map[string]int{}
	const picks = 3000
	for range picks {
		counts[pickAddr(t, p, PickInfo{})]++
	}
	for a, n := range counts {
		if n < picks/5 {
			t.Errorf("Pick(Key \"\") chose %s %d times of %d, want about %d", a, n, picks, picks/3)
		}
	}
	if len(counts) != 3 {
		t.Errorf("Pick(Key \"\") reached %d endpoints, want 3", len(counts))
	}
}

func TestConsistentHashWeights(t *testing.T) {
	eps := []Endpoint{{Addr: "a", Weight: 3}, {Addr: "b", Weight: 1}}
	counts := map[string]int{}
	keys := hashKeys(20000)
	for _, a := range owners(t, ConsistentHash().Build(eps), keys) {
		counts[a]++
	}
	if got := float64(counts["a"]) / float64(len(keys)); got < 0.65 || got > 0.85 {
		t.Errorf("share of keys on a (weight 3 of 4) = %.3f, want 0.75 ± 0.10", got)
	}
}
