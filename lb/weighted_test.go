package lb

import (
	"fmt"
	"strings"
	"testing"
)

// letters returns endpoints named "a", "b", ... with the given weights.
func letters(weights ...int) []Endpoint {
	eps := make([]Endpoint, len(weights))
	for i, w := range weights {
		eps[i] = Endpoint{Addr: string(rune('a' + i)), Weight: w}
	}
	return eps
}

func TestWeightedSmoothSequence(t *testing.T) {
	tests := []struct {
		give []int
		want string // one cycle, up to rotation (the picker starts at random)
	}{
		{give: []int{5, 1, 1}, want: "aabacaa"},
		{give: []int{10, 2, 2}, want: "aabacaa"},
		{give: []int{1, 1, 1}, want: "abc"},
		{give: []int{0, -4, 1}, want: "abc"},
		{give: []int{2, 1}, want: "aba"},
		{give: []int{1, 2}, want: "bab"},
		{give: []int{4, 2, 1}, want: "abacaba"},
		{give: []int{7}, want: "a"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.give), func(t *testing.T) {
			p := WeightedRoundRobin().Build(letters(tt.give...))
			var b strings.Builder
			for range 3 * len(tt.want) {
				b.WriteString(pickAddr(t, p, PickInfo{}))
			}
			got := b.String()
			if !strings.Contains(tt.want+tt.want, got[:len(tt.want)]) {
				t.Errorf("Pick cycle = %q, want a rotation of %q", got[:len(tt.want)], tt.want)
			}
			if got != strings.Repeat(got[:len(tt.want)], 3) {
				t.Errorf("Pick sequence = %q, want the cycle %q repeated", got, got[:len(tt.want)])
			}
		})
	}
}

func TestWeightedSmoothNoBurst(t *testing.T) {
	p := WeightedRoundRobin().Build(letters(5, 1, 1))
	run, longest := 0, 0
	for range 700 {
		if pickAddr(t, p, PickInfo{}) == "a" {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if longest > 4 {
		t.Errorf("longest run of a = %d, want <= 4 (weights 5,1,1 must be smooth)", longest)
	}
}

func TestWeightedProportional(t *testing.T) {
	tests := []struct {
		give  []int
		picks int
		tol   float64 // allowed deviation, as a fraction of the expected count
	}{
		{give: []int{5, 3, 2}, picks: 10000},
		{give: []int{5, 3, 2}, picks: 10003, tol: 0.001},
		{give: []int{0, 0, 3}, picks: 5000},
		{give: []int{100, 1}, picks: 101 * 50},
		{give: []int{9973, 7919}, picks: 100000, tol: 0.01}, // sum > maxCycle: scaled down
		{give: []int{1 << 40, 1 << 39, 1 << 39}, picks: 4000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.give), func(t *testing.T) {
			eps := letters(tt.give...)
			p := WeightedRoundRobin().Build(eps)
			counts := map[string]int{}
			for range tt.picks {
				counts[pickAddr(t, p, PickInfo{})]++
			}
			sum := 0.0
			for _, e := range eps {
				sum += float64(weightOf(e))
			}
			for _, e := range eps {
				want := float64(tt.picks) * float64(weightOf(e)) / sum
				got := float64(counts[e.Addr])
				if d := got - want; d > tt.tol*want+1 || d < -tt.tol*want-1 {
					t.Errorf("Pick chose %s %v times of %d, want %.1f", e.Addr, got, tt.picks, want)
				}
			}
		})
	}
}

func TestWeightedExclude(t *testing.T) {
	p := WeightedRoundRobin().Build(letters(5, 3, 1))
	counts := map[string]int{}
	const picks = 20000
	for range picks {
		counts[pickAddr(t, p, PickInfo{Exclude: []string{"a"}})]++
	}
	// Without a, b and c share the calls 3:1.
	if got := float64(counts["b"]) / picks; got < 0.70 || got > 0.80 {
		t.Errorf("share of b with a excluded = %.3f (counts %v), want 0.75 ± 0.05", got, counts)
	}
}

func TestSmoothCycleLength(t *testing.T) {
	tests := []struct {
		give []int
		want int
	}{
		{give: []int{5, 1, 1}, want: 7},
		{give: []int{3, 3, 3}, want: 3},
		{give: []int{1 << 30, 1}, want: maxCycle + 1},
	}
	for _, tt := range tests {
		p := WeightedRoundRobin().Build(letters(tt.give...)).(*wrrPicker)
		if got := len(p.seq); got != tt.want {
			t.Errorf("Build(weights %v) cycle length = %d, want %d", tt.give, got, tt.want)
		}
	}
}
