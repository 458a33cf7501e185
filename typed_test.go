package rpc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMethodCall(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	ctx := t.Context()

	add := NewMethod[Args, int](cli, "Calc.Add")
	sum, err := add.Call(ctx, Args{1, 2})
	if err != nil || sum != 3 {
		t.Fatalf("Calc.Add Call(1, 2) = %d, %v; want 3, nil", sum, err)
	}

	// A pointer Req, a float reply.
	div := NewMethod[*Args, float64](cli, "Calc.Div")
	q, err := div.Call(ctx, &Args{7, 2})
	if err != nil || q != 3.5 {
		t.Fatalf("Calc.Div Call(7, 2) = %v, %v; want 3.5, nil", q, err)
	}

	// A handler error: the zero Resp and the ServerError.
	q, err = div.Call(ctx, &Args{1, 0})
	var se ServerError
	if !errors.As(err, &se) || q != 0 {
		t.Fatalf("Calc.Div Call(1, 0) = %v, %v; want 0, a ServerError", q, err)
	}

	// Failures of the framework are the usual sentinels.
	if _, err := NewMethod[Args, int](cli, "NoDot").Call(ctx, Args{}); !errors.Is(err, ErrNoMethod) {
		t.Errorf("Call of a malformed name: error = %v, want ErrNoMethod", err)
	}
	if _, err := NewMethod[Args, int](cli, "Calc.Nope").Call(ctx, Args{}); !errors.Is(err, ErrNoMethod) {
		t.Errorf("Call of Calc.Nope: error = %v, want ErrNoMethod", err)
	}
	if _, err := NewMethod[Args, int](cli, "Nope.Add").Call(ctx, Args{}); !errors.Is(err, ErrNoService) {
		t.Errorf("Call of Nope.Add: error = %v, want ErrNoService", err)
	}
}

func TestMethodCallOptions(t *testing.T) {
	srv := NewServer()
	calc := &Calc{}
	if err := srv.Register(calc); err != nil {
		t.Fatal(err)
	}
	if err := HandleFunc(srv, "Hdr.Get", func(ctx context.Context, key string) (string, error) {
		SetHeader(ctx, "seen", "yes")
		return HeaderFromContext(ctx)[key], nil
	}); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv)
	ctx := t.Context()

	// WithTimeout: the call times out, the handler's ctx ends.
	sleep := NewMethod[time.Duration, int](cli, "Calc.Sleep")
	start := time.Now()
	_, err := sleep.Call(ctx, 5*time.Second, WithTimeout(50*time.Millisecond))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Calc.Sleep Call with WithTimeout(50ms): error = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Calc.Sleep Call with WithTimeout(50ms) returned after %v", d)
	}
	waitFor(t, "the handler's ctx to end", func() bool { return calc.cancelled.Load() == 1 })

	// A ctx deadline does the same.
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := sleep.Call(dctx, 5*time.Second); !errors.Is(err, ErrTimeout) {
		t.Errorf("Calc.Sleep Call with a ctx deadline: error = %v, want ErrTimeout", err)
	}

	// WithHeader and WithResponseHeader.
	get := NewMethod[string, string](cli, "Hdr.Get")
	var resp map[string]string
	v, err := get.Call(ctx, "k", WithHeader("k", "v"), WithResponseHeader(&resp))
	if err != nil || v != "v" {
		t.Fatalf("Hdr.Get Call with WithHeader(k, v) = %q, %v; want \"v\", nil", v, err)
	}
	if resp["seen"] != "yes" {
		t.Errorf("response header = %v, want seen=yes", resp)
	}

	// Every mode takes the options: Go and Callback with headers.
	if v, err := get.Go(ctx, "k", WithHeader("k", "go")).Await(ctx); err != nil || v != "go" {
		t.Errorf("Hdr.Get Go with WithHeader(k, go) = %q, %v", v, err)
	}
	got := make(chan string, 1)
	get.Callback(ctx, "k", func(v string, err error) { got <- v }, WithHeader("k", "cb"))
	select {
	case v := <-got:
		if v != "cb" {
			t.Errorf("Hdr.Get Callback with WithHeader(k, cb) = %q", v)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("Callback did not run")
	}
	// A Go that times out.
	if _, err := sleep.Go(ctx, 5*time.Second, WithTimeout(20*time.Millisecond)).Await(ctx); !errors.Is(err, ErrTimeout) {
		t.Errorf("Calc.Sleep Go with WithTimeout(20ms): error = %v, want ErrTimeout", err)
	}
}

func TestMethodGo(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	ctx := t.Context()
	add := NewMethod[Args, int](cli, "Calc.Add")

	futures := make([]*Future[int], 20)
	for i := range futures {
		futures[i] = add.Go(ctx, Args{i, 1})
	}
	for i, f := range futures {
		select {
		case <-f.Done():
		case <-time.After(defaultTestTimeout):
			t.Fatalf("future %d not done", i)
		}
		if v, err := f.Result(); err != nil || v != i+1 {
			t.Errorf("future %d: Result() = %d, %v; want %d, nil", i, v, err, i+1)
		}
		// Await after Done returns the same at once, even with an ended ctx.
		ended, cancel := context.WithCancel(ctx)
		cancel()
		if v, err := f.Await(ended); err != nil || v != i+1 {
			t.Errorf("future %d: Await(ended ctx) after Done = %d, %v; want %d, nil", i, v, err, i+1)
		}
	}

	// Result waits for the call.
	sleep := NewMethod[time.Duration, int](cli, "Calc.Sleep")
	if v, err := sleep.Go(ctx, 20*time.Millisecond).Result(); err != nil || v != 1 {
		t.Errorf("Calc.Sleep Go.Result() = %d, %v; want 1, nil", v, err)
	}
	// An error arrives as the zero reply and the error.
	div := NewMethod[Args, float64](cli, "Calc.Div")
	if v, err := div.Go(ctx, Args{1, 0}).Await(ctx); err == nil || v != 0 {
		t.Errorf("Calc.Div Go(1, 0).Await = %v, %v; want 0 and an error", v, err)
	}
}

// TestFutureAwaitCancel checks that Await returns at once when its ctx
// ends, while the call goes on and completes on its own terms.
func TestFutureAwaitCancel(t *testing.T) {
	cli, calc, _ := newCalcPair(t, nil)
	sleep := NewMethod[time.Duration, int](cli, "Calc.Sleep")
	f := sleep.Go(t.Context(), 300*time.Millisecond)

	actx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	v, err := f.Await(actx)
	if !errors.Is(err, context.DeadlineExceeded) || v != 0 {
		t.Fatalf("Await(20ms ctx) = %d, %v; want 0, context.DeadlineExceeded", v, err)
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("Await(20ms ctx) returned after %v, want at once when ctx ends", d)
	}
	select {
	case <-f.Done():
		t.Fatal("the call ended when Await's ctx did")
	default:
	}
	cctx, cancel2 := context.WithCancel(t.Context())
	cancel2()
	if _, err := f.Await(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Await(cancelled ctx) error = %v, want context.Canceled", err)
	}
	// The call itself completes.
	v, err = f.Await(t.Context())
	if err != nil || v != 1 {
		t.Errorf("Await after the handler finished = %d, %v; want 1, nil", v, err)
	}
	if n := calc.cancelled.Load(); n != 0 {
		t.Errorf("%d handlers were cancelled, want 0: Await's ctx must not end the call", n)
	}

	// The call still times out on its own terms while nobody awaits.
	f = sleep.Go(t.Context(), 5*time.Second, WithTimeout(30*time.Millisecond))
	select {
	case <-f.Done():
	case <-time.After(defaultTestTimeout):
		t.Fatal("the call did not time out")
	}
	if _, err := f.Result(); !errors.Is(err, ErrTimeout) {
		t.Errorf("Result() of a timed-out call: error = %v, want ErrTimeout", err)
	}
}

// TestMethodGoCtx checks that Go's ctx bounds the call: its end ends the
// call and cancels the handler.
func TestMethodGoCtx(t *testing.T) {
	for _, name := range []string{"direct", "intercepted"} {
		t.Run(name, func(t *testing.T) {
			var copts []ClientOption
			if name == "intercepted" {
				copts = append(copts, WithClientInterceptor(func(ctx context.Context, call *Call, next Invoker) error {
					return next(ctx, call)
				}))
			}
			cli, calc, _ := newCalcPair(t, nil, copts...)
			sleep := NewMethod[time.Duration, int](cli, "Calc.Sleep")

			ctx, cancel := context.WithCancel(t.Context())
			f := sleep.Go(ctx, 5*time.Second)
			select {
			case <-calc.started:
			case <-time.After(defaultTestTimeout):
				t.Fatal("the handler did not start")
			}
			cancel()
			select {
			case <-f.Done():
			case <-time.After(defaultTestTimeout):
				t.Fatal("the call did not end with its ctx")
			}
			if _, err := f.Result(); !errors.Is(err, context.Canceled) {
				t.Errorf("Result() after Go's ctx was cancelled: error = %v, want context.Canceled", err)
			}
			waitFor(t, "the handler's ctx to end", func() bool { return calc.cancelled.Load() == 1 })

			// A ctx ended already: the call ends at once, nothing is sent.
			f = sleep.Go(ctx, time.Second)
			select {
			case <-f.Done():
			case <-time.After(defaultTestTimeout):
				t.Fatal("a call with an ended ctx did not end")
			}
			if _, err := f.Result(); !errors.Is(err, context.Canceled) {
				t.Errorf("Go with an ended ctx: error = %v, want context.Canceled", err)
			}
			done := make(chan error, 1)
			sleep.Callback(ctx, time.Second, func(_ int, err error) { done <- err })
			if err := recvErr(t, done, "the callback"); !errors.Is(err, context.Canceled) {
				t.Errorf("Callback with an ended ctx: error = %v, want context.Canceled", err)
			}
			// A Go whose ctx lives on after the call: the registration on
			// ctx is dropped when the call completes (goleak and the race
			// detector watch this).
			add := NewMethod[Args, int](cli, "Calc.Add")
			long, cancelLong := context.WithCancel(t.Context())
			defer cancelLong()
			for i := range 10 {
				if v, err := add.Go(long, Args{i, i}).Await(t.Context()); err != nil || v != 2*i {
					t.Fatalf("Go(long ctx) = %d, %v", v, err)
				}
			}
		})
	}
}

func TestMethodCallback(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	ctx := t.Context()
	add := NewMethod[Args, int](cli, "Calc.Add")
	div := NewMethod[Args, float64](cli, "Calc.Div")

	const n = 20
	var runs [n]atomic.Int32
	var wg sync.WaitGroup
	results := make(chan [2]int, n)
	wg.Add(n)
	for i := range n {
		add.Callback(ctx, Args{i, 2}, func(v int, err error) {
			defer wg.Done()
			runs[i].Add(1)
			if err != nil {
				t.Errorf("callback %d: error %v", i, err)
			}
			// fn may make calls (it does not run on the reader).
			w, err := add.Call(ctx, Args{v, 0})
			if err != nil {
				t.Errorf("call from callback %d: %v", i, err)
			}
			results <- [2]int{i, w}
		})
	}
	waitGroup(t, &wg)
	close(results)
	for r := range results {
		if r[1] != r[0]+2 {
			t.Errorf("callback %d got %d, want %d", r[0], r[1], r[0]+2)
		}
	}
	for i := range runs {
		if got := runs[i].Load(); got != 1 {
			t.Errorf("callback %d ran %d times, want 1", i, got)
		}
	}

	// A nil fn: the call runs, nobody is told (and nothing panics).
	add.Callback(ctx, Args{1, 1}, nil)
	for range 10 {
		if _, err := add.Call(ctx, Args{1, 1}); err != nil {
			t.Fatal(err)
		}
	}

	errc := make(chan error, 1)
	div.Callback(ctx, Args{1, 0}, func(v float64, err error) {
		if v != 0 {
			t.Errorf("callback after an error got %v, want 0", v)
		}
		errc <- err
	})
	var se ServerError
	if err := recvErr(t, errc, "the Div callback"); !errors.As(err, &se) {
		t.Errorf("Calc.Div Callback(1, 0): error = %v, want a ServerError", err)
	}
}

func TestMethodOneway(t *testing.T) {
	cli, probe, _, _ := newProbePair(t, nil)
	note := NewMethod[string, int](cli, "Probe.Note")
	if err := note.Oneway(t.Context(), "hello"); err != nil {
		t.Fatalf("Probe.Note Oneway: %v", err)
	}
	select {
	case s := <-probe.oneway:
		if s != "hello" {
			t.Errorf("the handler got %q, want hello", s)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("the oneway call did not arrive")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := note.Oneway(ctx, "never"); !errors.Is(err, context.Canceled) {
		t.Errorf("Oneway with an ended ctx: error = %v, want context.Canceled", err)
	}
}

// TestMethodInterceptors checks that client interceptors see every typed
// call mode, with the args as *Req and the reply as *Resp.
func TestMethodInterceptors(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	ic := func(ctx context.Context, call *Call, next Invoker) error {
		call.Header["via"] = "ic"
		err := next(ctx, call)
		mu.Lock()
		seen[call.ServiceMethod]++
		mu.Unlock()
		return err
	}
	var sawArgs atomic.Value
	srv := NewServer(WithServerInterceptor(func(ctx context.Context, req *Request, next Handler) (any, error) {
		if req.ServiceMethod == "Calc.Add" {
			a, err := req.Args()
			if err != nil {
				return nil, err
			}
			sawArgs.Store(a)
			if req.Header["via"] != "ic" {
				return nil, errors.New("no header from the client interceptor")
			}
		}
		return next(ctx, req)
	}))
	calc := &Calc{}
	if err := srv.Register(calc); err != nil {
		t.Fatal(err)
	}
	probe := newProbe()
	if err := srv.Register(probe); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv, WithClientInterceptor(ic))
	ctx := t.Context()
	add := NewMethod[Args, int](cli, "Calc.Add")
	argsSeen := make(chan any, 1)
	cli2, _ := serveAndDial(t, srv, WithClientInterceptor(func(ctx context.Context, call *Call, next Invoker) error {
		select {
		case argsSeen <- call.Args:
		default:
		}
		return next(ctx, call)
	}))
	if _, err := NewMethod[Args, int](cli2, "Calc.Add").Call(ctx, Args{1, 1}, WithHeader("via", "ic")); err != nil {
		t.Fatal(err)
	}
	if a, ok := (<-argsSeen).(*Args); !ok || *a != (Args{1, 1}) {
		t.Errorf("client interceptor saw call.Args = %v, want *Args{1, 1}", a)
	}

	if v, err := add.Call(ctx, Args{1, 2}); err != nil || v != 3 {
		t.Fatalf("Call through interceptors = %d, %v", v, err)
	}
	if a, _ := sawArgs.Load().(*Args); a == nil || *a != (Args{1, 2}) {
		t.Errorf("server interceptor saw args %v, want &{1 2}", sawArgs.Load())
	}
	if v, err := add.Go(ctx, Args{2, 2}).Await(ctx); err != nil || v != 4 {
		t.Errorf("Go through interceptors = %d, %v", v, err)
	}
	errc := make(chan error, 1)
	add.Callback(ctx, Args{3, 3}, func(v int, err error) {
		if v != 6 {
			t.Errorf("Callback through interceptors got %d", v)
		}
		errc <- err
	})
	if err := recvErr(t, errc, "the callback"); err != nil {
		t.Errorf("Callback through interceptors: %v", err)
	}
	if err := NewMethod[string, int](cli, "Probe.Note").Oneway(ctx, "x"); err != nil {
		t.Errorf("Oneway through interceptors: %v", err)
	}
	<-probe.oneway
	mu.Lock()
	defer mu.Unlock()
	if seen["Calc.Add"] != 3 || seen["Probe.Note"] != 1 {
		t.Errorf("interceptor saw %v, want Calc.Add 3 times and Probe.Note once", seen)
	}
}

func TestMethodClosedClient(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	add := NewMethod[Args, int](cli, "Calc.Add")
	cli.Close()
	ctx := t.Context()
	if _, err := add.Call(ctx, Args{}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Call on a closed client: error = %v, want ErrShutdown", err)
	}
	if _, err := add.Go(ctx, Args{}).Await(ctx); !errors.Is(err, ErrShutdown) {
		t.Errorf("Go on a closed client: error = %v, want ErrShutdown", err)
	}
	if err := add.Oneway(ctx, Args{}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Oneway on a closed client: error = %v, want ErrShutdown", err)
	}
}

// waitGroup waits for wg, bounded.
func waitGroup(t testing.TB, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("wait group not done in time")
	}
}
