package lb

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// allBalancers returns a fresh instance of every built-in balancer.
func allBalancers() []Balancer {
	return []Balancer{Random(), RoundRobin(), WeightedRoundRobin(), ConsistentHash(), LeastLoaded()}
}

// endpoints returns n weight-0 endpoints 10.0.0.1:9000, 10.0.0.2:9000, ...
func endpoints(n int) []Endpoint {
	eps := make([]Endpoint, n)
	for i := range eps {
		eps[i] = Endpoint{Addr: fmt.Sprintf("10.0.0.%d:9000", i+1)}
	}
	return eps
}

// pickAddr picks once, reports Done at once, and returns the address.
func pickAddr(t testing.TB, p Picker, info PickInfo) string {
	t.Helper()
	res, err := p.Pick(info)
	if err != nil {
		t.Fatalf("Pick(%+v) error = %v, want nil", info, err)
	}
	if res.Done != nil {
		res.Done(DoneInfo{Latency: time.Millisecond})
	}
	return res.Addr
}

func TestBalancerName(t *testing.T) {
	tests := []struct {
		give Balancer
		want string
	}{
		{give: Random(), want: "random"},
		{give: RoundRobin(), want: "round_robin"},
		{give: WeightedRoundRobin(), want: "weighted_round_robin"},
		{give: ConsistentHash(), want: "consistent_hash"},
		{give: LeastLoaded(), want: "least_loaded"},
	}
	for _, tt := range tests {
		if got := tt.give.Name(); got != tt.want {
			t.Errorf("Name() = %q, want %q", got, tt.want)
		}
	}
}

func TestBuildEmpty(t *testing.T) {
	tests := []struct {
		name string
		give []Endpoint
	}{
		{name: "nil", give: nil},
		{name: "empty", give: []Endpoint{}},
		{name: "empty addresses", give: []Endpoint{{Addr: ""}, {Weight: 3}}},
	}
	for _, b := range allBalancers() {
		for _, tt := range tests {
			t.Run(b.Name()+"/"+tt.name, func(t *testing.T) {
				p := b.Build(tt.give)
				for _, info := range []PickInfo{{}, {Key: "k"}, {Exclude: []string{"x"}}} {
					res, err := p.Pick(info)
					if !errors.Is(err, ErrNoEndpoints) {
						t.Errorf("Pick(%+v) = %+v, %v, want ErrNoEndpoints", info, res, err)
					}
				}
			})
		}
	}
}

func TestPickExclude(t *testing.T) {
	eps := endpoints(4) // 10.0.0.1:9000 ... 10.0.0.4:9000
	tests := []struct {
		name    string
		give    []string
		wantErr error
	}{
		{name: "none", give: nil},
		{name: "unknown", give: []string{"10.9.9.9:9000"}},
		{name: "one", give: []string{"10.0.0.2:9000"}},
		{name: "all but one", give: []string{"10.0.0.1:9000", "10.0.0.2:9000", "10.0.0.4:9000"}},
		{name: "all", give: addrsOf(eps), wantErr: ErrNoEndpoints},
		{name: "all and more", give: append(addrsOf(eps), "10.9.9.9:9000"), wantErr: ErrNoEndpoints},
	}
	for _, b := range allBalancers() {
		for _, tt := range tests {
			t.Run(b.Name()+"/"+tt.name, func(t *testing.T) {
				p := b.Build(eps)
				wantSeen := countAllowed(addrsOf(eps), tt.give)
				if tt.wantErr != nil {
					wantSeen = 0
				}
				seen := map[string]bool{}
				for i := range 400 {
					info := PickInfo{Exclude: tt.give}
					if i%2 == 1 && b.Name() == "consistent_hash" {
						info.Key = fmt.Sprint("key-", i)
					}
					res, err := p.Pick(info)
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Pick(%+v) error = %v, want %v", info, err, tt.wantErr)
					}
					if err != nil {
						continue
					}
					if res.Done != nil {
						res.Done(DoneInfo{Latency: time.Millisecond})
					}
					if slices.Contains(tt.give, res.Addr) {
						t.Fatalf("Pick(%+v) = %q, an excluded address", info, res.Addr)
					}
					seen[res.Addr] = true
				}
				if len(seen) != wantSeen {
					t.Errorf("Pick reached %d addresses %v, want %d", len(seen), seen, wantSeen)
				}
			})
		}
	}
}

func TestBuildCopiesAndDedups(t *testing.T) {
	for _, b := range allBalancers() {
		t.Run(b.Name(), func(t *testing.T) {
			eps := []Endpoint{{Addr: "a:1"}, {Addr: "b:1"}, {Addr: "a:1", Weight: 100}, {Addr: ""}}
			p := b.Build(eps)
			eps[0].Addr, eps[1].Addr = "mutated:1", "mutated:2"
			seen := map[string]int{}
			for i := range 600 {
				seen[pickAddr(t, p, PickInfo{Key: fmt.Sprint(i)})]++
			}
			if len(seen) != 2 || seen["a:1"] == 0 || seen["b:1"] == 0 {
				t.Errorf("Pick addresses = %v, want a:1 and b:1 only", seen)
			}
		})
	}
}

func TestWeightsNeverPanic(t *testing.T) {
	tests := []struct {
		name string
		give []int
	}{
		{name: "zero", give: []int{0, 0, 0}},
		{name: "negative", give: []int{-1, -100, math.MinInt}},
		{name: "mixed", give: []int{0, -3, 1, 7}},
		{name: "huge", give: []int{math.MaxInt, math.MaxInt, 1}},
		{name: "many distinct", give: []int{1, 2, 3, 5, 7, 11, 13, 1 << 20}},
	}
	for _, b := range allBalancers() {
		for _, tt := range tests {
			t.Run(b.Name()+"/"+tt.name, func(t *testing.T) {
				eps := endpoints(len(tt.give))
				for i, w := range tt.give {
					eps[i].Weight = w
				}
				p := b.Build(eps)
				for i := range 100 {
					pickAddr(t, p, PickInfo{Key: fmt.Sprint(i)})
				}
			})
		}
	}
}

func TestUnits(t *testing.T) {
	tests := []struct {
		give   []int
		maxSum int
		want   []int
	}{
		{give: []int{5, 1, 1}, maxSum: 4096, want: []int{5, 1, 1}},
		{give: []int{10, 2, 2}, maxSum: 4096, want: []int{5, 1, 1}},
		{give: []int{0, -1, 1}, maxSum: 4096, want: []int{1, 1, 1}},
		{give: []int{100, 100}, maxSum: 4096, want: []int{1, 1}},
		{give: []int{300, 100}, maxSum: 2, want: []int{2, 1}},
		{give: []int{10000, 1}, maxSum: 4096, want: []int{4096, 1}},
		{give: []int{math.MaxInt, math.MaxInt - 1}, maxSum: 4096, want: []int{1, 1}},
	}
	for _, tt := range tests {
		eps := make([]Endpoint, len(tt.give))
		for i, w := range tt.give {
			eps[i].Weight = w
		}
		if got := units(eps, tt.maxSum); !slices.Equal(got, tt.want) {
			t.Errorf("units(%v, %d) = %v, want %v", tt.give, tt.maxSum, got, tt.want)
		}
	}
}

// TestPickConcurrent picks from many goroutines while another one keeps
// rebuilding the picker, as the client does; run it with -race.
func TestPickConcurrent(t *testing.T) {
	const (
		goroutines = 8
		picks      = 2000
	)
	for _, b := range allBalancers() {
		t.Run(b.Name(), func(t *testing.T) {
			var cur atomic.Pointer[Picker]
			p := b.Build(endpoints(5))
			cur.Store(&p)
			stop := make(chan struct{})
			var rebuilder sync.WaitGroup
			rebuilder.Add(1)
			go func() {
				defer rebuilder.Done()
				for n := 1; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					p := b.Build(endpoints(3 + n%4))
					cur.Store(&p)
				}
			}()
			var pickers sync.WaitGroup
			errs := make(chan error, goroutines)
			for g := range goroutines {
				pickers.Add(1)
				go func() {
					defer pickers.Done()
					for i := range picks {
						info := PickInfo{Key: fmt.Sprint(g, i)}
						if i%3 == 0 {
							info.Exclude = []string{"10.0.0.1:9000"}
						}
						res, err := (*cur.Load()).Pick(info)
						if err != nil {
							errs <- fmt.Errorf("Pick(%+v) error = %w", info, err)
							return
						}
						if res.Done != nil {
							res.Done(DoneInfo{Latency: time.Duration(i%7) * time.Millisecond})
						}
					}
				}()
			}
			pickers.Wait()
			close(stop)
			rebuilder.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestPickAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	tests := []struct {
		name string
		give PickInfo
	}{
		{name: "plain", give: PickInfo{}},
		{name: "key", give: PickInfo{Key: "user-42"}},
		{name: "exclude", give: PickInfo{Key: "user-42", Exclude: []string{"10.0.0.2:9000", "10.0.0.3:9000"}}},
	}
	for _, b := range allBalancers() {
		for _, tt := range tests {
			t.Run(b.Name()+"/"+tt.name, func(t *testing.T) {
				p := b.Build(endpoints(8))
				got := testing.AllocsPerRun(1000, func() {
					res, err := p.Pick(tt.give)
					if err != nil {
						t.Fatalf("Pick(%+v) error = %v, want nil", tt.give, err)
					}
					if res.Done != nil {
						res.Done(DoneInfo{Latency: time.Millisecond})
					}
				})
				if got != 0 {
					t.Errorf("Pick(%+v) allocs = %v, want 0", tt.give, got)
				}
			})
		}
	}
}
