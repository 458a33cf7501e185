package lb

import "testing"

func TestRandomDistribution(t *testing.T) {
	const picks = 30000
	tests := []struct {
		name        string
		give        int // endpoints
		giveExclude []string
		want        int // addresses reached, each about picks/want times
	}{
		{name: "one", give: 1, want: 1},
		{name: "four", give: 4, want: 4},
		{name: "five minus two excluded", give: 5, giveExclude: []string{"10.0.0.1:9000", "10.0.0.4:9000"}, want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Random().Build(endpoints(tt.give))
			counts := map[string]int{}
			for range picks {
				counts[pickAddr(t, p, PickInfo{Exclude: tt.giveExclude})]++
			}
			if len(counts) != tt.want {
				t.Fatalf("Pick reached %d addresses %v, want %d", len(counts), counts, tt.want)
			}
			mean := float64(picks) / float64(tt.want)
			for addr, n := range counts {
				if d := float64(n) - mean; d > 0.1*mean || d < -0.1*mean {
					t.Errorf("Pick chose %s %d times of %d, want %.0f ± 10%%", addr, n, picks, mean)
				}
			}
		})
	}
}
