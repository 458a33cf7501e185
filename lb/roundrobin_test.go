package lb

import (
	"fmt"
	"testing"
)

func TestRoundRobinEven(t *testing.T) {
	tests := []struct {
		give  int // endpoints
		picks int
	}{
		{give: 1, picks: 10},
		{give: 2, picks: 1001},
		{give: 3, picks: 3000},
		{give: 3, picks: 3001},
		{give: 7, picks: 10000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("endpoints=%d/picks=%d", tt.give, tt.picks), func(t *testing.T) {
			p := RoundRobin().Build(endpoints(tt.give))
			counts := map[string]int{}
			var order []string
			for range tt.picks {
				a := pickAddr(t, p, PickInfo{})
				counts[a]++
				order = append(order, a)
			}
			if len(counts) != tt.give {
				t.Fatalf("Pick reached %d addresses, want %d", len(counts), tt.give)
			}
			lo, hi := tt.picks, 0
			for _, n := range counts {
				lo, hi = min(lo, n), max(hi, n)
			}
			if hi-lo > 1 {
				t.Errorf("Pick counts = %v, want all within ±1", counts)
			}
			for i := tt.give; i < len(order); i++ {
				if order[i] != order[i-tt.give] {
					t.Fatalf("pick %d = %s, want %s (the order must repeat every %d picks)", i, order[i], order[i-tt.give], tt.give)
				}
			}
		})
	}
}

func TestRoundRobinRandomStart(t *testing.T) {
	eps := endpoints(8)
	first := map[string]bool{}
	for range 200 {
		first[pickAddr(t, RoundRobin().Build(eps), PickInfo{})] = true
	}
	if len(first) < 4 {
		t.Errorf("first Pick of 200 pickers reached %d addresses, want >= 4 (random start)", len(first))
	}
}

func TestRoundRobinExcludeSkipsToNext(t *testing.T) {
	p := RoundRobin().Build(endpoints(3))
	ex := []string{"10.0.0.2:9000"}
	counts := map[string]int{}
	for range 3000 {
		counts[pickAddr(t, p, PickInfo{Exclude: ex})]++
	}
	// The slot of the excluded endpoint goes to the next one in the cycle.
	want := map[string]int{"10.0.0.1:9000": 1000, "10.0.0.3:9000": 2000}
	for addr, w := range want {
		if got := counts[addr]; got != w {
			t.Errorf("Pick chose %s %d times, want %d (counts %v)", addr, got, w, counts)
		}
	}
}
