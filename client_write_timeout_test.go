package rpc

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/seedrpc/rpc/lb"
	"github.com/seedrpc/rpc/registry"
)

// outcomeBalancer picks its one endpoint and records the outcome of every
// call it was picked for.
type outcomeBalancer struct {
	mu   sync.Mutex
	errs []error
}

func (b *outcomeBalancer) Name() string { return "outcomes" }

func (b *outcomeBalancer) Build(eps []lb.Endpoint) lb.Picker { return outcomePicker{b, eps} }

type outcomePicker struct {
	b   *outcomeBalancer
	eps []lb.Endpoint
}

func (p outcomePicker) Pick(info lb.PickInfo) (lb.PickResult, error) {
	if len(p.eps) == 0 {
		return lb.PickResult{}, lb.ErrNoEndpoints
	}
	return lb.PickResult{Addr: p.eps[0].Addr, Done: func(d lb.DoneInfo) {
		p.b.mu.Lock()
		p.b.errs = append(p.b.errs, d.Err)
		p.b.mu.Unlock()
	}}, nil
}

// TestWriteStallTimeoutCountsAgainstInstance: calls that run out of time
// on an instance whose connection stalled, whether their frames were
// queued or held back behind a full queue, all count as failures there
// (for the balancer, and toward ejection), as timeouts, never as
// successes that would reset its failure count.
func TestWriteStallTimeoutCountsAgainstInstance(t *testing.T) {
	srv := NewServer()
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	proxy := newFreezeProxy(t, startServer(t, srv))
	mem := registry.NewMemory()
	t.Cleanup(func() { mem.Close() })
	if err := mem.Register(context.Background(), registry.Instance{Service: "Calc", Addr: proxy.addr()}); err != nil {
		t.Fatal(err)
	}
	bal := &outcomeBalancer{}
	cli := newFleetClient(t, mem, WithBalancer(bal), WithPoolSize(1), WithKeepalive(3*time.Second))
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second)); err != nil {
		t.Fatalf("Call before the stall = %v", err)
	}
	proxy.frozen.Store(true)
	payload := make([]byte, 4<<20)
	const timeout = 200 * time.Millisecond
	for i := range 8 { // 32 MiB: far more than the loopback socket buffers hold
		var out []byte
		err := cli.Call("Calc.Echo", payload, &out, WithTimeout(timeout))
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("Call #%d into a stalled connection error = %v, want ErrTimeout", i, err)
		}
	}
	bal.mu.Lock()
	defer bal.mu.Unlock()
	if len(bal.errs) != 9 {
		t.Fatalf("balancer saw %d outcomes, want 9 (one per call)", len(bal.errs))
	}
	if bal.errs[0] != nil {
		t.Errorf("the call before the stall reported %v, want success", bal.errs[0])
	}
	for i, err := range bal.errs[1:] {
		if !errors.Is(err, ErrTimeout) {
			t.Errorf("stalled call #%d reported %v to the balancer, want ErrTimeout", i, err)
		}
	}
}
