package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/codec"
)

// Probe is a service whose handlers report what they saw, for tests that
// need to observe the server side of a call.
type Probe struct {
	// running and maxRunning track concurrent Hold handlers.
	running, maxRunning atomic.Int32
	// ctxErr receives the ctx error of Wait and OnewayWait handlers when their
	// ctx ends; cap 16 so handlers never block on it.
	ctxErr chan error
	// oneway receives the args of every Note call.
	oneway chan string
}

func newProbe() *Probe {
	return &Probe{ctxErr: make(chan error, 16), oneway: make(chan string, 16)}
}

// Hold sleeps d while counting concurrent Hold handlers.
func (p *Probe) Hold(d time.Duration, reply *int) error {
	n := p.running.Add(1)
	defer p.running.Add(-1)
	for {
		m := p.maxRunning.Load()
		if n <= m || p.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(d)
	*reply = int(n)
	return nil
}

// Wait blocks until its ctx ends (or d passes) and reports the ctx error.
func (p *Probe) Wait(ctx context.Context, d time.Duration, reply *int) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		p.ctxErr <- ctx.Err()
		return ctx.Err()
	case <-t.C:
		*reply = 1
		return nil
	}
}

// Note records s (used with Oneway).
func (p *Probe) Note(s string, reply *int) error {
	p.oneway <- s
	return nil
}

// Ints returns the number of elements it was sent.
func (p *Probe) Ints(v []int, reply *int) error { *reply = len(v); return nil }

// Deadline reports the remaining time of the handler's ctx deadline.
func (p *Probe) Deadline(ctx context.Context, _ int, reply *time.Duration) error {
	dl, ok := ctx.Deadline()
	if !ok {
		return errors.New("no deadline")
	}
	*reply = time.Until(dl)
	return nil
}

// newProbePair returns a client of a fresh server serving Calc and Probe.
func newProbePair(t testing.TB, sopts []ServerOption, copts ...ClientOption) (*Client, *Probe, *Server, string) {
	t.Helper()
	srv := NewServer(sopts...)
	p := newProbe()
	if err := srv.Register(p); err != nil {
		t.Fatal(err)
	}
	if err := srv.Register(&Calc{started: make(chan struct{}, 1)}); err != nil {
		t.Fatal(err)
	}
	cli, addr := serveAndDial(t, srv, copts...)
	return cli, p, srv, addr
}

// waitCall waits, bounded, for call to finish.
func waitCall(t testing.TB, call *Call, within time.Duration) {
	t.Helper()
	select {
	case <-call.Done:
	case <-time.After(within):
		t.Fatalf("%s: no completion within %v", call.ServiceMethod, within)
	}
}

// waitFor polls cond until it holds, failing the test after defaultTestTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recvErr receives from ch, bounded.
func recvErr(t testing.TB, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(defaultTestTimeout):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// syncBuffer is a goroutine-safe bytes.Buffer for slog handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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

func TestHandlerSeesDeadline(t *testing.T) {
	cli, _, _, _ := newProbePair(t, nil)
	var left time.Duration
	if err := cli.Call("Probe.Deadline", 0, &left, WithTimeout(time.Second)); err != nil {
		t.Fatalf("Call(Probe.Deadline) = %v", err)
	}
	if left <= 0 || left > time.Second {
		t.Errorf("handler deadline in %v, want within (0, 1s]", left)
	}
	err := cli.Call("Probe.Deadline", 0, &left)
	var se ServerError
	if !errors.As(err, &se) || string(se) != "no deadline" {
		t.Errorf("Call(Probe.Deadline) without timeout error = %v, want ServerError(no deadline)", err)
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
		{give: ".Add", wantErr: ErrNoMethod},
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

func TestHandlerPanic(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cli, _, _ := newCalcPair(t, []ServerOption{WithLogger(logger)})
	var r int
	err := cli.Call("Calc.Panic", 1, &r, WithTimeout(5*time.Second))
	if !errors.Is(err, ErrInternal) {
		t.Fatalf("Call(Calc.Panic) error = %v, want ErrInternal", err)
	}
	var se ServerError
	if errors.As(err, &se) {
		t.Errorf("Call(Calc.Panic) error = %v is a ServerError, want ErrInternal only", err)
	}
	for _, leak := range []string{"goroutine ", ".go:", "runtime/debug", "boom"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("Call(Calc.Panic) error %q contains %q (stack or panic value leaked)", err, leak)
		}
	}
	// The server keeps serving.
	if err := cli.Call("Calc.Add", Args{1, 2}, &r); err != nil || r != 3 {
		t.Fatalf("Call(Calc.Add) after panic = %d, %v; want 3, nil", r, err)
	}
	waitFor(t, "panic log", func() bool { return strings.Contains(logs.String(), "boom") })
	got := logs.String()
	for _, want := range []string{"Calc.Panic", "boom", "goroutine ", "core_test.go"} {
		if want == "core_test.go" {
			want = "helpers_test.go" // where Calc.Panic lives
		}
		if !strings.Contains(got, want) {
			t.Errorf("server log lacks %q; log:\n%s", want, got)
		}
	}
}

func TestLargePayload(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	for _, size := range []int{1 << 20, 4<<20 + 17} {
		in := make([]byte, size)
		rand.Read(in)
		var out []byte
		if err := cli.Call("Calc.Echo", in, &out, WithTimeout(defaultTestTimeout)); err != nil {
			t.Fatalf("Call(Calc.Echo, %d bytes) = %v", size, err)
		}
		if !bytes.Equal(in, out) {
			t.Fatalf("Call(Calc.Echo, %d bytes) returned %d bytes, not the same", size, len(out))
		}
	}
}

func TestFrameLimit(t *testing.T) {
	cli, _, _ := newCalcPair(t, []ServerOption{WithMaxFrameSize(64 << 10)}, WithPoolSize(1))
	var out []byte
	// Too large for the client's own limit? No: the client allows 16 MiB, so
	// the server closes the connection on the oversize header.
	err := cli.Call("Calc.Echo", make([]byte, 100<<10), &out, WithTimeout(5*time.Second))
	if !errors.Is(err, ErrShutdown) {
		t.Errorf("Call(100 KiB) to a server with a 64 KiB limit error = %v, want ErrShutdown", err)
	}
	// The client re-dials and small calls work.
	if err := cli.Call("Calc.Echo", []byte("hi"), &out, WithTimeout(5*time.Second)); err != nil || string(out) != "hi" {
		t.Fatalf("Call(Calc.Echo) after an oversize frame = %q, %v", out, err)
	}

	// A client limit is checked before sending.
	cli2, _, _ := newCalcPair(t, nil, WithMaxFrameSize(1<<10))
	err = cli2.Call("Calc.Echo", make([]byte, 2<<10), &out)
	if err == nil || errors.Is(err, ErrShutdown) {
		t.Errorf("Call(2 KiB) with a 1 KiB client limit error = %v, want a frame-limit error", err)
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
	for i := range n {
		cli.Go("Calc.Add", Args{i, 1}, &replies[i], done)
	}
	time.Sleep(100 * time.Millisecond) // let the replies arrive while done is full
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
	cli, _, _ := newCalcPair(t, nil, WithPoolSize(1))
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
	time.Sleep(50 * time.Millisecond)
	if n := runs.Load(); n != 2 {
		t.Fatalf("callbacks ran %d times, want 2", n)
	}

	// A callback of a call pending at Close runs once, with ErrShutdown.
	cli.Callback("Calc.Sleep", 5*time.Second, &sum, func(c *Call) { got <- c.Error })
	time.Sleep(50 * time.Millisecond)
	cli.Close()
	if err := recvErr(t, got, "callback"); !errors.Is(err, ErrShutdown) {
		t.Fatalf("callback error after Close = %v, want ErrShutdown", err)
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

// Types for the Register tests.

type calcLower struct{}

func (c *calcLower) Add(args Args, reply *int) error { return nil }

type BadMethods struct{}

func (BadMethods) NoReply(args Args) error                           { return nil }
func (BadMethods) ValueReply(args Args, reply int) error             { return nil }
func (BadMethods) NoError(args Args, reply *int)                     {}
func (BadMethods) WrongResult(args Args, reply *int) int             { return 0 }
func (BadMethods) NotCtx(s string, args Args, reply *int) error      { return nil }
func (BadMethods) PrivateArgs(args calcLower, reply *int) error      { return nil }
func (BadMethods) PrivateReply(args Args, reply *calcLower) error    { return nil }
func (BadMethods) TooMany(a, b Args, c *int, d *int) error           { return nil }
func (BadMethods) TwoResults(args Args, reply *int) (int, error)     { return 0, nil }
func (BadMethods) CtxTooFew(ctx context.Context, reply *int) error   { return nil }
func (BadMethods) ValueCtxReply(ctx context.Context, a, b int) error { return nil }

type PtrOnly struct{}

func (p *PtrOnly) Add(args Args, reply *int) error { return nil }

// Mixed has one good method and one bad one; calling the bad one says why.
type Mixed struct{}

func (Mixed) Good(args *Args, reply *int) error { *reply = args.A; return nil }
func (Mixed) Bad(args Args) error               { return nil }

func TestRegister(t *testing.T) {
	tests := []struct {
		name     string
		give     any
		giveName string // RegisterName when non-empty
		wantErr  []string
	}{
		{name: "nil", give: nil, wantErr: []string{"nil"}},
		{name: "unexported type", give: &calcLower{}, wantErr: []string{"calcLower", "not exported"}},
		{name: "no methods", give: &struct{}{}, wantErr: []string{"no service name"}},
		{name: "no suitable methods", give: BadMethods{}, wantErr: []string{
			"no exported methods of suitable form",
			"BadMethods.NoReply", "BadMethods.ValueReply", "BadMethods.NoError", "BadMethods.WrongResult",
			"BadMethods.NotCtx", "BadMethods.PrivateArgs", "BadMethods.PrivateReply", "BadMethods.TooMany",
			"BadMethods.TwoResults", "BadMethods.CtxTooFew", "BadMethods.ValueCtxReply",
			"not a pointer", "not exported", "context.Context", "parameters", "error",
		}},
		{name: "value receiver of pointer methods", give: PtrOnly{}, wantErr: []string{"pointer"}},
		{name: "name with dot", give: &Calc{}, giveName: "a.b", wantErr: []string{"dot"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := NewServer()
			var err error
			if tt.giveName != "" {
				err = srv.RegisterName(tt.giveName, tt.give)
			} else {
				err = srv.Register(tt.give)
			}
			if err == nil {
				t.Fatalf("Register(%T) error = nil, want an error", tt.give)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Register(%T) error = %q, want it to mention %q", tt.give, err, want)
				}
			}
		})
	}

	srv := NewServer()
	if err := srv.RegisterName("", &Calc{}); err == nil {
		t.Error(`RegisterName("") error = nil, want an error`)
	}
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatalf("Register(&Calc{}) = %v", err)
	}
	if err := srv.Register(&Calc{}); err == nil {
		t.Error("Register(&Calc{}) twice: error = nil, want duplicate error")
	}
	if err := srv.RegisterName("Calc", &Probe{}); err == nil {
		t.Error(`RegisterName("Calc") of another type: error = nil, want duplicate error`)
	}
	// An unexported type may be registered by name.
	if err := srv.RegisterName("Lower", &calcLower{}); err != nil {
		t.Errorf(`RegisterName("Lower", &calcLower{}) = %v`, err)
	}
	if err := srv.Register(Mixed{}); err != nil {
		t.Fatalf("Register(Mixed{}) = %v", err)
	}
	addr := startServer(t, srv)
	cli, err := Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var r int
	if err := cli.Call("Mixed.Good", Args{A: 7}, &r); err != nil || r != 7 {
		t.Errorf("Call(Mixed.Good) = %d, %v; want 7, nil", r, err)
	}
	err = cli.Call("Mixed.Bad", Args{}, &r)
	if !errors.Is(err, ErrNoMethod) || !strings.Contains(err.Error(), "parameters") {
		t.Errorf("Call(Mixed.Bad) error = %v, want ErrNoMethod saying why", err)
	}
	// Both method forms, args by value (Add) and by pointer (Div).
	if err := cli.Call("Calc.Add", &Args{1, 2}, &r); err != nil || r != 3 {
		t.Errorf("Call(Calc.Add, *Args) = %d, %v; want 3, nil", r, err)
	}
	var q float64
	if err := cli.Call("Calc.Div", Args{9, 3}, &q); err != nil || q != 3 {
		t.Errorf("Call(Calc.Div, Args) = %v, %v; want 3, nil", q, err)
	}
	if err := cli.Call("Lower.Add", Args{1, 2}, &r); err != nil {
		t.Errorf("Call(Lower.Add) = %v", err)
	}
}

func TestDefaultServer(t *testing.T) {
	// DefaultServer lives as long as the process: a unique name per run
	// keeps -count=N working.
	name := "DefaultCalc" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := RegisterName(name, &Calc{}); err != nil {
		t.Fatalf("RegisterName(%q) = %v", name, err)
	}
	if err := RegisterName(name, &Calc{}); err == nil {
		t.Fatalf("RegisterName(%q) twice: error = nil, want duplicate error", name)
	}
	if err := Register(BadMethods{}); err == nil {
		t.Fatal("Register(BadMethods{}) error = nil")
	}
	// Look the method up rather than serve DefaultServer: a served server
	// keeps idle handler workers until it is closed, and DefaultServer is
	// never closed.
	if _, err := DefaultServer.lookup([]byte(name + ".Add")); err != nil {
		t.Errorf("DefaultServer.lookup(%s.Add) = %v", name, err)
	}
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func newTextLogger(w *syncBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// TestCloseInCallback: closing the client from a callback (say, on an
// error) must not deadlock Close, which waits for running callbacks.
func TestCloseInCallback(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	done := make(chan struct{})
	cli.Callback("Calc.Add", Args{1, 2}, new(int), func(c *Call) {
		cli.Close()
		close(done)
	})
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close inside a callback deadlocked")
	}
}
