package rpc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/codec"
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

func TestGoManyFutures(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	const n = 500
	calls := make([]*Call, n)
	replies := make([]int, n)
	for i := range calls {
		calls[i] = cli.Go("Calc.Add", Args{i, i}, &replies[i], nil)
	}
	for i, call := range calls {
		waitCall(t, call, defaultTestTimeout)
		if call.Error != nil || replies[i] != 2*i {
			t.Fatalf("Go(Calc.Add, %d) = %d, %v; want %d, nil", i, replies[i], call.Error, 2*i)
		}
	}
}

func TestTimeoutModes(t *testing.T) {
	cli, probe, _, _ := newProbePair(t, nil)
	const timeout = 50 * time.Millisecond
	check := func(mode string, err error, elapsed time.Duration) {
		t.Helper()
		if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s(Probe.Wait) error = %v, want ErrTimeout and context.DeadlineExceeded", mode, err)
		}
		if elapsed > time.Second {
			t.Errorf("%s(Probe.Wait) returned after %v, want about %v", mode, elapsed, timeout)
		}
		// The handler's ctx ends too: by the propagated deadline or the cancel frame.
		if err := recvErr(t, probe.ctxErr, mode+" handler ctx end"); err == nil {
			t.Errorf("%s: handler ctx error = nil, want non-nil", mode)
		}
	}

	start := time.Now()
	var r int
	call := cli.Go("Probe.Wait", 2*time.Second, &r, nil, WithTimeout(timeout))
	waitCall(t, call, defaultTestTimeout)
	check("Go", call.Error, time.Since(start))

	start = time.Now()
	got := make(chan error, 1)
	cli.Callback("Probe.Wait", 2*time.Second, &r, func(c *Call) { got <- c.Error }, WithTimeout(timeout))
	err := recvErr(t, got, "callback")
	check("Callback", err, time.Since(start))

	// Oneway returns once written; the handler sees the deadline and its
	// ctx ends with DeadlineExceeded.
	start = time.Now()
	if err := cli.Oneway("Probe.Wait", 2*time.Second, WithTimeout(timeout)); err != nil {
		t.Fatalf("Oneway(Probe.Wait) = %v, want nil", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Oneway returned after %v", el)
	}
	if err := recvErr(t, probe.ctxErr, "oneway handler ctx end"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("oneway handler ctx error = %v, want context.DeadlineExceeded", err)
	}
}

func TestClientDefaultTimeout(t *testing.T) {
	srv := NewServer()
	probe := newProbe()
	if err := srv.Register(probe); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv)
	cli, err := Dial("tcp", addr, WithTimeout(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	start := time.Now()
	var r int
	err = cli.Call("Probe.Wait", 2*time.Second, &r)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call with default timeout error = %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Call with default 50ms timeout took %v", el)
	}
	recvErr(t, probe.ctxErr, "handler ctx end")
	// A per-call option overrides the default.
	if err := cli.Call("Probe.Wait", 100*time.Millisecond, &r, WithTimeout(5*time.Second)); err != nil || r != 1 {
		t.Fatalf("Call with WithTimeout(5s) = %d, %v; want 1, nil", r, err)
	}
}

func TestCallContextCancel(t *testing.T) {
	cli, probe, _, _ := newProbePair(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	var r int
	err := cli.CallContext(ctx, "Probe.Wait", 5*time.Second, &r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CallContext(cancelled) error = %v, want context.Canceled", err)
	}
	if errors.Is(err, ErrTimeout) {
		t.Errorf("CallContext(cancelled) error = %v matches ErrTimeout", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("CallContext(cancelled) took %v", el)
	}
	if err := recvErr(t, probe.ctxErr, "handler ctx end"); !errors.Is(err, context.Canceled) {
		t.Errorf("handler ctx error = %v, want context.Canceled", err)
	}

	// An already cancelled ctx fails at once.
	if err := cli.CallContext(ctx, "Calc.Add", Args{1, 2}, &r); !errors.Is(err, context.Canceled) {
		t.Errorf("CallContext(done ctx) error = %v, want context.Canceled", err)
	}

	// A ctx deadline is a timeout.
	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	err = cli.CallContext(dctx, "Probe.Wait", 5*time.Second, &r)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CallContext(deadline) error = %v, want ErrTimeout and DeadlineExceeded", err)
	}
	recvErr(t, probe.ctxErr, "handler ctx end")
}

func TestErrors(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil, WithPoolSize(1), WithTimeout(5*time.Second))
	tests := []struct {
		give    string
		wantErr error
	}{
		{give: "Nope.Add", wantErr: ErrNoService},
		{give: "Calc.Nope", wantErr: ErrNoMethod},
		{give: "Calc.add", wantErr: ErrNoMethod},
		{give: "CalcAdd", wantErr: ErrNoMethod},
		{give: "Calc.", wantErr: ErrNoMethod},
		{give: ".Add", wantErr: ErrNoService}, // sent, as in net/rpc: service ""
	}
	for _, tt := range tests {
		for _, mode := range []string{"Call", "Go", "Callback"} {
			var r int
			var err error
			switch mode {
			case "Call":
				err = cli.Call(tt.give, Args{1, 2}, &r)
			case "Go":
				call := cli.Go(tt.give, Args{1, 2}, &r, nil)
				waitCall(t, call, defaultTestTimeout)
				err = call.Error
			case "Callback":
				ch := make(chan error, 1)
				cli.Callback(tt.give, Args{1, 2}, &r, func(c *Call) { ch <- c.Error })
				err = recvErr(t, ch, "callback")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s(%q) error = %v, want %v", mode, tt.give, err, tt.wantErr)
			}
			if errors.Is(err, ErrTimeout) {
				t.Errorf("%s(%q) hung until the timeout", mode, tt.give)
			}
		}
		// The connection stays usable.
		var sum int
		if err := cli.Call("Calc.Add", Args{2, 3}, &sum); err != nil || sum != 5 {
			t.Fatalf("Call(Calc.Add) after %q = %d, %v; want 5, nil", tt.give, sum, err)
		}
	}

	var q float64
	err := cli.Call("Calc.Div", Args{1, 0}, &q)
	var se ServerError
	if !errors.As(err, &se) || se.Error() != "divide by zero" {
		t.Errorf("Call(Calc.Div 1/0) error = %v, want ServerError(divide by zero)", err)
	}
}

func TestFrameLimit(t *testing.T) {
	cli, _, _ := newCalcPair(t, []ServerOption{WithMaxFrameSize(64 << 10)}, WithPoolSize(1))
	var out []byte
	// Too large for the server (the client allows 16 MiB): the server
	// answers ErrTooLarge without reading the payload into memory, and the
	// connection goes on (TestTooLargeKeepsConnection checks other calls).
	err := cli.Call("Calc.Echo", make([]byte, 100<<10), &out, WithTimeout(5*time.Second))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Call(100 KiB) to a server with a 64 KiB limit error = %v, want ErrTooLarge", err)
	}
	if err := cli.Call("Calc.Echo", []byte("hi"), &out, WithTimeout(5*time.Second)); err != nil || string(out) != "hi" {
		t.Fatalf("Call(Calc.Echo) after an oversize frame = %q, %v", out, err)
	}

	// A client limit is checked before sending.
	cli2, _, _ := newCalcPair(t, nil, WithMaxFrameSize(1<<10))
	err = cli2.Call("Calc.Echo", make([]byte, 2<<10), &out)
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrShutdown) {
		t.Errorf("Call(2 KiB) with a 1 KiB client limit error = %v, want ErrTooLarge", err)
	}
}

func TestGoDoneChannel(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	var r int
	call := cli.Go("Calc.Add", Args{1, 2}, &r, make(chan *Call))
	if call.Error == nil {
		t.Fatal("Go(unbuffered done) error = nil, want an error")
	}
	waitCall(t, call, time.Second)

	// A full Done channel delays delivery but never drops it.
	done := make(chan *Call, 1)
	placeholder := &Call{}
	done <- placeholder
	const n = 10
	replies := make([]int, n)
	calls := make([]*Call, n)
	for i := range n {
		calls[i] = cli.Go("Calc.Add", Args{i, 1}, &replies[i], done)
	}
	waitFor(t, "the replies to arrive while done is full", func() bool {
		for _, c := range calls {
			if !c.st.finished.Load() {
				return false
			}
		}
		return true
	})
	seen := map[*Call]bool{}
	for len(seen) < n+1 {
		select {
		case c := <-done:
			if seen[c] {
				t.Fatalf("call %p delivered twice", c)
			}
			seen[c] = true
			if c != placeholder && c.Error != nil {
				t.Fatalf("Go(Calc.Add) error = %v", c.Error)
			}
		case <-time.After(defaultTestTimeout):
			t.Fatalf("received %d of %d calls from a shared Done channel", len(seen), n+1)
		}
	}
	for i, r := range replies {
		if r != i+1 {
			t.Errorf("reply %d = %d, want %d", i, r, i+1)
		}
	}
}

func TestCallback(t *testing.T) {
	cli, calc, _ := newCalcPair(t, nil, WithPoolSize(1))
	var runs atomic.Int32
	got := make(chan error, 2)
	var sum, inner int
	cli.Callback("Calc.Add", Args{1, 2}, &sum, func(c *Call) {
		runs.Add(1)
		// A nested sync call on the same client and connection: it would
		// deadlock if callbacks ran on the connection's reader.
		err := c.Error
		if err == nil {
			err = cli.Call("Calc.Add", Args{sum, 10}, &inner, WithTimeout(5*time.Second))
		}
		got <- err
	})
	if err := recvErr(t, got, "callback"); err != nil {
		t.Fatalf("callback error = %v", err)
	}
	if sum != 3 || inner != 13 {
		t.Fatalf("callback results = %d, %d; want 3, 13", sum, inner)
	}

	// Errors run the callback exactly once too.
	cli.Callback("Calc.Nope", Args{}, &sum, func(c *Call) { runs.Add(1); got <- c.Error })
	if err := recvErr(t, got, "callback"); !errors.Is(err, ErrNoMethod) {
		t.Fatalf("callback error = %v, want ErrNoMethod", err)
	}

	// A callback of a call pending at Close runs once, with ErrShutdown.
	cli.Callback("Calc.Sleep", 5*time.Second, &sum, func(c *Call) { got <- c.Error })
	waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() == 1 })
	cli.Close()
	if err := recvErr(t, got, "callback"); !errors.Is(err, ErrShutdown) {
		t.Fatalf("callback error after Close = %v, want ErrShutdown", err)
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("the first two callbacks ran %d times, want 2", n)
	}
}

func TestJSONCodec(t *testing.T) {
	// One server, two codecs.
	srv2 := NewServer()
	if err := srv2.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv2)
	for _, cd := range []codec.Codec{codec.JSON{}, codec.Msgpack{}} {
		cli, err := Dial("tcp", addr, WithCodec(cd))
		if err != nil {
			t.Fatal(err)
		}
		var sum int
		if err := cli.Call("Calc.Add", Args{20, 22}, &sum); err != nil || sum != 42 {
			t.Errorf("%s: Call(Calc.Add) = %d, %v; want 42, nil", cd.Name(), sum, err)
		}
		var q float64
		if err := cli.Call("Calc.Div", &Args{7, 2}, &q); err != nil || q != 3.5 {
			t.Errorf("%s: Call(Calc.Div) = %v, %v; want 3.5, nil", cd.Name(), q, err)
		}
		var out []byte
		if err := cli.Call("Calc.Echo", []byte("héllo"), &out); err != nil || string(out) != "héllo" {
			t.Errorf("%s: Call(Calc.Echo) = %q, %v", cd.Name(), out, err)
		}
		cli.Close()
	}
}

// TestCloseInCallback: closing the client from a callback (say, on an
// error) returns, fails what is pending, and leaves no goroutine behind
// (goleak checks at the end of the run).
func TestCloseInCallback(t *testing.T) {
	cli, calc, _ := newCalcPair(t, nil)
	pending := make(chan error, 1)
	cli.Callback("Calc.Sleep", time.Minute, new(int), func(c *Call) { pending <- c.Error })
	waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() == 1 })

	closed := make(chan error, 1)
	cli.Callback("Calc.Add", Args{1, 2}, new(int), func(c *Call) {
		closed <- cli.Close()
		// The client is closed while this callback still runs.
		closed <- cli.Call("Calc.Add", Args{1, 2}, new(int))
	})
	if err := recvErr(t, closed, "Close inside a callback"); err != nil {
		t.Fatalf("Close() inside a callback = %v", err)
	}
	if err := recvErr(t, closed, "a call after Close"); !errors.Is(err, ErrShutdown) {
		t.Errorf("Call after Close (inside the callback) error = %v, want ErrShutdown", err)
	}
	if err := recvErr(t, pending, "the pending callback"); !errors.Is(err, ErrShutdown) {
		t.Errorf("callback of a call pending at Close: error = %v, want ErrShutdown", err)
	}
	cli.wg.mu.Lock()
	n := cli.wg.n
	cli.wg.mu.Unlock()
	if n != 0 {
		t.Errorf("%d client goroutines still running after Close returned", n)
	}
	if err := cli.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
}

func TestClientCloseShutdown(t *testing.T) {
	cli, calc, _ := newCalcPair(t, nil)
	var r int
	pending := cli.Go("Calc.Sleep", 30*time.Second, &r, nil)
	waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() == 1 })
	start := time.Now()
	if err := cli.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close() took %v", el)
	}
	waitCall(t, pending, time.Second)
	if !errors.Is(pending.Error, ErrShutdown) {
		t.Errorf("pending call after Close error = %v, want ErrShutdown", pending.Error)
	}
	if err := cli.Call("Calc.Add", Args{1, 2}, &r); !errors.Is(err, ErrShutdown) {
		t.Errorf("Call after Close error = %v, want ErrShutdown", err)
	}
	call := cli.Go("Calc.Add", Args{1, 2}, &r, nil)
	waitCall(t, call, time.Second)
	if !errors.Is(call.Error, ErrShutdown) {
		t.Errorf("Go after Close error = %v, want ErrShutdown", call.Error)
	}
	if err := cli.Oneway("Calc.Add", Args{1, 2}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Oneway after Close error = %v, want ErrShutdown", err)
	}
	if err := cli.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
}
