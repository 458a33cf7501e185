package lb_test

import (
	"fmt"
	"time"

	"github.com/seedrpc/rpc/lb"
)

// first is a custom strategy: always the first endpoint that is not excluded,
// for an active/standby pair.
type first struct{}

func (first) Name() string { return "first" }

func (first) Build(eps []lb.Endpoint) lb.Picker {
	addrs := make([]string, 0, len(eps))
	for _, e := range eps {
		addrs = append(addrs, e.Addr)
	}
	return firstPicker(addrs)
}

type firstPicker []string

func (p firstPicker) Pick(info lb.PickInfo) (lb.PickResult, error) {
next:
	for _, a := range p {
		for _, x := range info.Exclude {
			if a == x {
				continue next
			}
		}
		return lb.PickResult{Addr: a}, nil
	}
	return lb.PickResult{}, lb.ErrNoEndpoints
}

// A custom Balancer: the client calls Build on every membership change and
// Pick for every call, passing the instances already tried in Exclude.
func Example_customBalancer() {
	var b lb.Balancer = first{}
	p := b.Build([]lb.Endpoint{{Addr: "10.0.0.1:9000"}, {Addr: "10.0.0.2:9000"}})

	res, _ := p.Pick(lb.PickInfo{})
	fmt.Println(res.Addr)
	res, _ = p.Pick(lb.PickInfo{Exclude: []string{"10.0.0.1:9000"}})
	fmt.Println(res.Addr)
	_, err := p.Pick(lb.PickInfo{Exclude: []string{"10.0.0.1:9000", "10.0.0.2:9000"}})
	fmt.Println(err)
	// Output:
	// 10.0.0.1:9000
	// 10.0.0.2:9000
	// lb: no endpoints
}

func ExampleConsistentHash() {
	p := lb.ConsistentHash().Build([]lb.Endpoint{
		{Addr: "10.0.0.1:9000"}, {Addr: "10.0.0.2:9000"}, {Addr: "10.0.0.3:9000"}, {Addr: "10.0.0.4:9000"},
	})
	for range 3 { // one key, one endpoint, in every process
		res, _ := p.Pick(lb.PickInfo{Key: "user-1"})
		fmt.Println(res.Addr)
	}
	// Output:
	// 10.0.0.2:9000
	// 10.0.0.2:9000
	// 10.0.0.2:9000
}

func ExampleLeastLoaded() {
	p := lb.LeastLoaded().Build([]lb.Endpoint{{Addr: "10.0.0.1:9000"}, {Addr: "10.0.0.2:9000"}})
	res, err := p.Pick(lb.PickInfo{})
	if err != nil {
		fmt.Println(err)
		return
	}
	start := time.Now()
	// ... send the call to res.Addr ...
	res.Done(lb.DoneInfo{Err: nil, Latency: time.Since(start)}) // exactly once
	fmt.Println(res.Addr != "")
	// Output: true
}

func ExampleWeightedRoundRobin() {
	p := lb.WeightedRoundRobin().Build([]lb.Endpoint{
		{Addr: "a", Weight: 5}, {Addr: "b", Weight: 1}, {Addr: "c", Weight: 0}, // 0 counts as 1
	})
	counts := map[string]int{}
	for range 700 {
		res, _ := p.Pick(lb.PickInfo{})
		counts[res.Addr]++
	}
	fmt.Println(counts["a"], counts["b"], counts["c"])
	// Output: 500 100 100
}
