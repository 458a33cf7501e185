package rpc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/lb"
)

func TestCallModes(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil || sum != 3 {
		t.Fatalf("Call(Calc.Add) = %d, %v; want 3, nil", sum, err)
	}
	var q float64
	call := cli.Go("Calc.Div", &Args{7, 2}, &q, nil)
	select {
	case <-call.Done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Go: no reply")
	}
	if call.Error != nil || q != 3.5 {
		t.Fatalf("Go(Calc.Div) = %v, %v; want 3.5, nil", q, call.Error)
	}
	got := make(chan *Call, 1)
	var s2 int
	cli.Callback("Calc.Add", Args{2, 2}, &s2, func(c *Call) { got <- c })
	select {
	case c := <-got:
		if c.Error != nil || s2 != 4 {
			t.Fatalf("Callback(Calc.Add) = %d, %v", s2, c.Error)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("Callback never ran")
	}
	if err := cli.Oneway("Calc.Add", Args{1, 1}); err != nil {
		t.Fatalf("Oneway() = %v", err)
	}
	err := cli.Call("Calc.Div", Args{1, 0}, &q)
	var se ServerError
	if !errors.As(err, &se) || string(se) != "divide by zero" {
		t.Fatalf("Call(Div by 0) error = %v, want ServerError(divide by zero)", err)
	}
}

func TestTimeoutCancelsHandler(t *testing.T) {
	cli, calc, _ := newCalcPair(t, nil)
	start := time.Now()
	var r int
	err := cli.Call("Calc.Sleep", 2*time.Second, &r, WithTimeout(50*time.Millisecond))
	if el := time.Since(start); el > time.Second {
		t.Fatalf("timed-out call took %v", el)
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call error = %v, want ErrTimeout and DeadlineExceeded", err)
	}
	deadline := time.Now().Add(defaultTestTimeout)
	for calc.cancelled.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if calc.cancelled.Load() == 0 {
		t.Fatal("handler ctx never cancelled")
	}
}

func TestConcurrentCalls(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	var wg sync.WaitGroup
	start := time.Now()
	errs := make(chan error, 1000)
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r int
			errs <- cli.Call("Calc.Sleep", 50*time.Millisecond, &r, WithTimeout(defaultTestTimeout))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	el := time.Since(start)
	t.Logf("1000 concurrent 50ms calls took %v", el)
	if serial := 1000 * 50 * time.Millisecond; el > serial/10 {
		t.Errorf("1000 concurrent 50ms calls took %v, want well under the serial %v", el, serial)
	}
}

type HeaderEcho struct{}

func (HeaderEcho) Get(ctx context.Context, key string, reply *string) error {
	*reply = HeaderFromContext(ctx)[key]
	return nil
}

func TestHeaders(t *testing.T) {
	srv := NewServer()
	if err := srv.Register(&HeaderEcho{}); err != nil {
		t.Fatal(err)
	}
	cli, err := Dial("tcp", startServer(t, srv), WithHeader("tenant", "acme"))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	tests := []struct {
		give string
		opts []CallOption
		want string
	}{
		{give: "tenant", want: "acme"},
		{give: "trace", opts: []CallOption{WithHeader("trace", "t-1")}, want: "t-1"},
		{give: "missing", want: ""},
	}
	for _, tt := range tests {
		var got string
		if err := cli.Call("HeaderEcho.Get", tt.give, &got, tt.opts...); err != nil || got != tt.want {
			t.Errorf("Call(HeaderEcho.Get, %q) = %q, %v; want %q, nil", tt.give, got, err, tt.want)
		}
	}
	var got string
	if err := cli.Call("HeaderEcho.Get", "x", &got, WithHeader(":timeout", "1")); err == nil {
		t.Errorf("Call with reserved header key = nil error, want an error")
	}
	// The connection survived the refused call.
	if err := cli.Call("HeaderEcho.Get", "tenant", &got); err != nil || got != "acme" {
		t.Errorf("Call after refused header = %q, %v", got, err)
	}
}

// TestAttemptReportOnce: the balancer hears of an attempt exactly once,
// however many paths (reader, timer, hedge winner) report it.
func TestAttemptReportOnce(t *testing.T) {
	var n atomic.Int32
	a := &attempt{lbDone: func(lb.DoneInfo) { n.Add(1) }}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.report(nil, nil)
		}()
	}
	wg.Wait()
	if got := n.Load(); got != 1 {
		t.Fatalf("lbDone called %d times, want 1", got)
	}
}
