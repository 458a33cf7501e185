package rpc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/codec"
)

// countedDecodes counts the decodes of CountedArgs, in every test: the
// tests that read it do not run in parallel.
var countedDecodes atomic.Int32

// CountedArgs are args whose JSON decoder counts its runs.
type CountedArgs struct{ N int }

func (a *CountedArgs) UnmarshalJSON(b []byte) error {
	countedDecodes.Add(1)
	type plain CountedArgs
	return json.Unmarshal(b, (*plain)(a))
}

// Guarded is a service for interceptor tests; it counts the calls that
// reached it.
type Guarded struct {
	calls atomic.Int32
	// log, if set, records the handler's run.
	log func(string)
	// notes receives the args of Note (oneway) calls; cap 16.
	notes chan int
}

func newGuarded() *Guarded { return &Guarded{notes: make(chan int, 16)} }

// Take returns args.N.
func (g *Guarded) Take(args *CountedArgs, reply *int) error {
	g.calls.Add(1)
	if g.log != nil {
		g.log("handler")
	}
	*reply = args.N
	return nil
}

// Note records args.N.
func (g *Guarded) Note(args *CountedArgs, reply *int) error {
	g.calls.Add(1)
	g.notes <- args.N
	return nil
}

// Overloaded is a handler that says it is overloaded after it ran.
func (g *Guarded) Overloaded(args *CountedArgs, reply *int) error {
	g.calls.Add(1)
	return fmt.Errorf("downstream: %w", ErrOverloaded)
}

// recorder collects events from concurrent goroutines.
type recorder struct {
	mu     sync.Mutex // guards events
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// newGuardedPair serves a Guarded with sopts and dials it with copts; the
// client speaks JSON, whose decodes CountedArgs counts.
func newGuardedPair(t testing.TB, sopts []ServerOption, copts ...ClientOption) (*Client, *Guarded) {
	t.Helper()
	srv := NewServer(sopts...)
	g := newGuarded()
	if err := srv.Register(g); err != nil {
		t.Fatal(err)
	}
	if err := srv.Register(&HeaderEcho{}); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv, append([]ClientOption{WithCodec(codec.JSON{})}, copts...)...)
	return cli, g
}

func TestServerInterceptorChainOrder(t *testing.T) {
	var rec recorder
	wrap := func(name string) ServerInterceptor {
		return func(ctx context.Context, req *Request, next Handler) (any, error) {
			rec.add(name + ">")
			reply, err := next(ctx, req)
			rec.add("<" + name)
			return reply, err
		}
	}
	srv := NewServer(WithServerInterceptor(wrap("a"), nil, wrap("b")), WithServerInterceptor(wrap("c")))
	g := newGuarded()
	g.log = rec.add
	if err := srv.Register(g); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv)
	var n int
	if err := cli.Call("Guarded.Take", CountedArgs{N: 3}, &n); err != nil || n != 3 {
		t.Fatalf("Call(Guarded.Take) = %d, %v; want 3, nil", n, err)
	}
	want := []string{"a>", "b>", "c>", "handler", "<c", "<b", "<a"}
	if got := rec.get(); !slices.Equal(got, want) {
		t.Errorf("server chain ran %v, want %v", got, want)
	}
}

func TestServerInterceptorRejectsBeforeDecode(t *testing.T) {
	var peeked atomic.Int32
	auth := func(ctx context.Context, req *Request, next Handler) (any, error) {
		if req.Header["token"] != "ok" {
			return nil, ErrPermissionDenied
		}
		return next(ctx, req)
	}
	peek := func(ctx context.Context, req *Request, next Handler) (any, error) {
		for range 2 { // a second look decodes nothing more
			args, err := req.Args()
			if err != nil {
				return nil, err
			}
			if a, ok := args.(*CountedArgs); !ok || a.N != 7 {
				return nil, fmt.Errorf("Args() = %#v, want &CountedArgs{N: 7}", args)
			}
		}
		peeked.Add(1)
		return next(ctx, req)
	}
	cli, g := newGuardedPair(t, []ServerOption{WithServerInterceptor(auth, peek)})

	countedDecodes.Store(0)
	var n int
	err := cli.Call("Guarded.Take", CountedArgs{N: 7}, &n)
	if !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("Call without a token error = %v, want ErrPermissionDenied", err)
	}
	if got := countedDecodes.Load(); got != 0 {
		t.Errorf("a refused call decoded its args %d times, want 0", got)
	}
	if got := g.calls.Load(); got != 0 {
		t.Errorf("a refused call reached the handler %d times, want 0", got)
	}

	if err := cli.Call("Guarded.Take", CountedArgs{N: 7}, &n, WithHeader("token", "ok")); err != nil || n != 7 {
		t.Fatalf("Call with a token = %d, %v; want 7, nil", n, err)
	}
	if got := countedDecodes.Load(); got != 1 {
		t.Errorf("an admitted call decoded its args %d times (interceptor and handler), want 1", got)
	}
	if peeked.Load() != 1 || g.calls.Load() != 1 {
		t.Errorf("interceptor ran %d times, handler %d times; want 1, 1", peeked.Load(), g.calls.Load())
	}
}

func TestServerInterceptorBadArgs(t *testing.T) {
	var argsErr atomic.Value
	peek := func(ctx context.Context, req *Request, next Handler) (any, error) {
		_, err := req.Args()
		if err != nil {
			argsErr.Store(err)
		}
		return next(ctx, req) // the handler gets the same error
	}
	cli, g := newGuardedPair(t, []ServerOption{WithServerInterceptor(peek)})
	var n int
	err := cli.Call("Guarded.Take", "not an object", &n)
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Call with undecodable args error = %v, want ErrBadRequest", err)
	}
	if e, _ := argsErr.Load().(error); !errors.Is(e, ErrBadRequest) || !strings.Contains(e.Error(), "Guarded.Take") {
		t.Errorf("Request.Args() error = %v, want one matching ErrBadRequest naming Guarded.Take", e)
	}
	if g.calls.Load() != 0 {
		t.Errorf("handler ran %d times with undecodable args", g.calls.Load())
	}
	if _, err := new(Request).Args(); err == nil {
		t.Error("Args() of a Request the server did not make = nil error")
	}
}

func TestServerInterceptorRequest(t *testing.T) {
	reqs := make(chan Request, 4)
	see := func(ctx context.Context, req *Request, next Handler) (any, error) {
		reqs <- *req
		return next(ctx, req)
	}
	cli, g := newGuardedPair(t, []ServerOption{WithServerInterceptor(see)})
	var n int
	if err := cli.Call("Guarded.Take", CountedArgs{N: 1}, &n, WithHeader("tenant", "acme")); err != nil {
		t.Fatal(err)
	}
	req := <-reqs
	if req.ServiceMethod != "Guarded.Take" || req.Seq == 0 || req.Oneway || req.TLS != nil {
		t.Errorf("Request = %+v, want Guarded.Take, seq > 0, not oneway, no TLS", req)
	}
	if req.Header["tenant"] != "acme" {
		t.Errorf("Request.Header = %v, want tenant=acme", req.Header)
	}
	if tcp, ok := req.Peer.(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() || tcp.Port == 0 {
		t.Errorf("Request.Peer = %v, want the client's loopback address", req.Peer)
	}

	if err := cli.Oneway("Guarded.Note", CountedArgs{N: 2}); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-reqs:
		if !req.Oneway || req.ServiceMethod != "Guarded.Note" {
			t.Errorf("oneway Request = %+v, want Oneway for Guarded.Note", req)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("the interceptor did not see the oneway call")
	}
	if got := <-g.notes; got != 2 {
		t.Errorf("oneway handler got %d, want 2", got)
	}
}

func TestServerInterceptorTLS(t *testing.T) {
	pki := newTestPKI(t)
	srvCfg := &tls.Config{
		Certificates: []tls.Certificate{pki.Server},
		ClientCAs:    pki.Pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	names := make(chan string, 1)
	see := func(ctx context.Context, req *Request, next Handler) (any, error) {
		if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
			return nil, ErrUnauthenticated
		}
		names <- req.TLS.PeerCertificates[0].Subject.CommonName
		return next(ctx, req)
	}
	cli, _, _ := newCalcPair(t, []ServerOption{WithTLS(srvCfg), WithServerInterceptor(see)},
		WithTLS(&tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{pki.Clients["client"]}}))
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(defaultTestTimeout)); err != nil || sum != 3 {
		t.Fatalf("Call over mutual TLS = %d, %v; want 3, nil", sum, err)
	}
	if got := <-names; got != "client" {
		t.Errorf("Request.TLS peer certificate = %q, want %q", got, "client")
	}
}

func TestServerInterceptorReplacesReplyAndArgs(t *testing.T) {
	double := func(ctx context.Context, req *Request, next Handler) (any, error) {
		args, err := req.Args()
		if err != nil {
			return nil, err
		}
		args.(*Args).A = 10 // Calc.Add takes Args by value: it gets this
		reply, err := next(ctx, req)
		if err != nil {
			return nil, err
		}
		return *reply.(*int) * 2, nil
	}
	cli, _, _ := newCalcPair(t, []ServerOption{WithServerInterceptor(double)})
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil || sum != 24 {
		t.Errorf("Call(Calc.Add, {1, 2}) = %d, %v; want (10+2)*2 = 24, nil", sum, err)
	}
}

func TestServerInterceptorPanic(t *testing.T) {
	var logs syncBuffer
	boom := func(ctx context.Context, req *Request, next Handler) (any, error) {
		if req.ServiceMethod == "Calc.Div" {
			panic("interceptor boom")
		}
		return next(ctx, req)
	}
	cli, _, _ := newCalcPair(t, []ServerOption{WithServerInterceptor(boom), WithLogger(newTextLogger(&logs))})
	var q float64
	err := cli.Call("Calc.Div", Args{1, 2}, &q)
	if !errors.Is(err, ErrInternal) {
		t.Fatalf("Call through a panicking interceptor error = %v, want ErrInternal", err)
	}
	if strings.Contains(err.Error(), "goroutine") || strings.Contains(err.Error(), "boom") {
		t.Errorf("caller's error leaks the panic: %q", err)
	}
	if l := logs.String(); !strings.Contains(l, "interceptor boom") || !strings.Contains(l, "goroutine") {
		t.Errorf("server log lacks the panic and its stack: %q", l)
	}
	// A handler panic under interceptors is the same, and the server goes on.
	var n int
	if err := cli.Call("Calc.Panic", 1, &n); !errors.Is(err, ErrInternal) {
		t.Errorf("Call(Calc.Panic) under an interceptor error = %v, want ErrInternal", err)
	}
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil || sum != 3 {
		t.Errorf("Call after the panics = %d, %v; want 3, nil", sum, err)
	}
}

func TestServerInterceptorOnewayRefused(t *testing.T) {
	var seen atomic.Int32
	onlyEven := func(ctx context.Context, req *Request, next Handler) (any, error) {
		defer seen.Add(1)
		if req.Header["n"] == "odd" {
			return nil, ErrPermissionDenied
		}
		return next(ctx, req)
	}
	cli, g := newGuardedPair(t, []ServerOption{WithServerInterceptor(onlyEven)})
	if err := cli.Oneway("Guarded.Note", CountedArgs{N: 1}, WithHeader("n", "odd")); err != nil {
		t.Fatal(err)
	}
	if err := cli.Oneway("Guarded.Note", CountedArgs{N: 2}, WithHeader("n", "even")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both oneways through the interceptor", func() bool { return seen.Load() == 2 })
	if got := <-g.notes; got != 2 {
		t.Errorf("oneway handler ran with %d, want only 2", got)
	}
	if n := g.calls.Load(); n != 1 {
		t.Errorf("oneway handler ran %d times, want 1 (the refused one never)", n)
	}
}

func TestServerInterceptorErrors(t *testing.T) {
	tests := []struct {
		name     string
		give     error
		wantIs   error
		wantText string // the caller's text must not contain the detail
		tries    int32  // interceptor runs for one call
	}{
		{name: "unauthenticated", give: fmt.Errorf("%w: token expired at noon", ErrUnauthenticated), wantIs: ErrUnauthenticated, wantText: "rpc: unauthenticated", tries: 1},
		{name: "permission denied", give: fmt.Errorf("%w: alice may not", ErrPermissionDenied), wantIs: ErrPermissionDenied, wantText: "rpc: permission denied", tries: 1},
		{name: "bad request", give: fmt.Errorf("%w: field N too big", ErrBadRequest), wantIs: ErrBadRequest, tries: 1},
		// Overloaded before the method ran: the client retries (3 more tries).
		// A client of one server hears "overloaded" at once (no retry into the same server).
		{name: "overloaded", give: fmt.Errorf("%w: rate limit", ErrOverloaded), wantIs: ErrOverloaded, tries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tries atomic.Int32
			refuse := func(ctx context.Context, req *Request, next Handler) (any, error) {
				tries.Add(1)
				return nil, tt.give
			}
			cli, g := newGuardedPair(t, []ServerOption{WithServerInterceptor(refuse)})
			var n int
			err := cli.Call("Guarded.Take", CountedArgs{N: 1}, &n)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("Call error = %v, want %v", err, tt.wantIs)
			}
			if tt.wantText != "" && err.Error() != tt.wantText {
				t.Errorf("Call error text = %q, want %q (no detail)", err, tt.wantText)
			}
			if got := tries.Load(); got != tt.tries {
				t.Errorf("interceptor ran %d times for one call, want %d", got, tt.tries)
			}
			if g.calls.Load() != 0 {
				t.Errorf("handler ran %d times", g.calls.Load())
			}
		})
	}

	// A handler that returns ErrOverloaded after it ran is not retried: the
	// caller gets its text as a ServerError.
	cli, g := newGuardedPair(t, []ServerOption{WithServerInterceptor(func(ctx context.Context, req *Request, next Handler) (any, error) {
		return next(ctx, req)
	})})
	var n int
	err := cli.Call("Guarded.Overloaded", CountedArgs{N: 1}, &n)
	var se ServerError
	if !errors.As(err, &se) || errors.Is(err, ErrOverloaded) {
		t.Errorf("Call(Guarded.Overloaded) error = %#v, want a ServerError", err)
	}
	if got := g.calls.Load(); got != 1 {
		t.Errorf("handler that ran and failed with ErrOverloaded ran %d times, want 1 (no retry)", got)
	}
}

func TestClientInterceptorChainOrder(t *testing.T) {
	var rec recorder
	wrap := func(name string) ClientInterceptor {
		return func(ctx context.Context, call *Call, next Invoker) error {
			rec.add(name + ">")
			call.Header["trail"] += name
			err := next(ctx, call)
			rec.add("<" + name)
			return err
		}
	}
	cli, _ := newGuardedPair(t, nil, WithClientInterceptor(wrap("a"), wrap("b")), WithClientInterceptor(wrap("c")))
	var got string
	if err := cli.Call("HeaderEcho.Get", "trail", &got, WithHeader("trail", ">")); err != nil {
		t.Fatal(err)
	}
	if got != ">abc" {
		t.Errorf("header the server saw = %q, want %q (WithHeader first, then a, b, c)", got, ">abc")
	}
	want := []string{"a>", "b>", "c>", "<c", "<b", "<a"}
	if ev := rec.get(); !slices.Equal(ev, want) {
		t.Errorf("client chain ran %v, want %v", ev, want)
	}
}

func TestClientInterceptorAllModes(t *testing.T) {
	var runs atomic.Int32
	release := make(chan struct{})
	tag := func(ctx context.Context, call *Call, next Invoker) error {
		runs.Add(1)
		if call.Header["mode"] == "async" {
			<-release // blocks the client's goroutine, never the caller
		}
		call.Header["seen"] = "yes"
		return next(ctx, call)
	}
	cli, g := newGuardedPair(t, nil, WithClientInterceptor(tag))

	var got string
	if err := cli.Call("HeaderEcho.Get", "seen", &got); err != nil || got != "yes" {
		t.Errorf("Call: header = %q, %v; want yes, nil", got, err)
	}
	if err := cli.CallContext(context.Background(), "HeaderEcho.Get", "seen", &got); err != nil || got != "yes" {
		t.Errorf("CallContext: header = %q, %v; want yes, nil", got, err)
	}

	var goReply string
	call := cli.Go("HeaderEcho.Get", "seen", &goReply, nil, WithHeader("mode", "async"))
	cbDone := make(chan *Call, 1)
	var cbReply string
	cli.Callback("HeaderEcho.Get", "seen", &cbReply, func(c *Call) { cbDone <- c }, WithHeader("mode", "async"))
	// Go and Callback returned although their interceptor is blocked.
	select {
	case <-call.Done:
		t.Fatal("Go finished before its interceptor was released")
	default:
	}
	close(release)
	waitCall(t, call, defaultTestTimeout)
	if call.Error != nil || goReply != "yes" {
		t.Errorf("Go: header = %q, %v; want yes, nil", goReply, call.Error)
	}
	select {
	case c := <-cbDone:
		if c.Error != nil || cbReply != "yes" {
			t.Errorf("Callback: header = %q, %v; want yes, nil", cbReply, c.Error)
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("Callback never ran")
	}

	if err := cli.Oneway("Guarded.Note", CountedArgs{N: 5}); err != nil {
		t.Fatalf("Oneway = %v", err)
	}
	if n := <-g.notes; n != 5 {
		t.Errorf("Oneway delivered %d, want 5", n)
	}
	if got := runs.Load(); got != 5 {
		t.Errorf("interceptor ran %d times for 5 calls, want 5", got)
	}
}

func TestClientInterceptorShortCircuit(t *testing.T) {
	errMiss := errors.New("cache says no")
	cache := func(ctx context.Context, call *Call, next Invoker) error {
		switch call.Args.(CountedArgs).N {
		case 1:
			*call.Reply.(*int) = 100
			return nil
		case 2:
			return errMiss
		}
		return next(ctx, call)
	}
	cli, g := newGuardedPair(t, nil, WithClientInterceptor(cache))
	var n int
	if err := cli.Call("Guarded.Take", CountedArgs{N: 1}, &n); err != nil || n != 100 {
		t.Errorf("short-circuited Call = %d, %v; want 100, nil", n, err)
	}
	if err := cli.Call("Guarded.Take", CountedArgs{N: 2}, &n); !errors.Is(err, errMiss) {
		t.Errorf("short-circuited Call error = %v, want %v", err, errMiss)
	}
	call := cli.Go("Guarded.Take", CountedArgs{N: 2}, &n, make(chan *Call, 1))
	waitCall(t, call, defaultTestTimeout)
	if !errors.Is(call.Error, errMiss) {
		t.Errorf("short-circuited Go error = %v, want %v", call.Error, errMiss)
	}
	if err := cli.Oneway("Guarded.Note", CountedArgs{N: 2}); !errors.Is(err, errMiss) {
		t.Errorf("short-circuited Oneway error = %v, want %v", err, errMiss)
	}
	if err := cli.Call("Guarded.Take", CountedArgs{N: 3}, &n); err != nil || n != 3 {
		t.Errorf("Call through = %d, %v; want 3, nil", n, err)
	}
	if got := g.calls.Load(); got != 1 {
		t.Errorf("server handled %d calls, want 1 (the rest short-circuited)", got)
	}
}

func TestClientInterceptorSeesResult(t *testing.T) {
	type seen struct {
		err    error
		reply  int
		header string
	}
	results := make(chan seen, 2)
	wrapErr := errors.New("wrapped by the interceptor")
	observe := func(ctx context.Context, call *Call, next Invoker) error {
		err := next(ctx, call)
		reply := 0
		if r, ok := call.Reply.(*int); ok {
			reply = *r
		}
		results <- seen{err, reply, call.ResponseHeader["served-by"]}
		if err != nil {
			return fmt.Errorf("%w: %w", wrapErr, err)
		}
		return nil
	}
	setter := func(ctx context.Context, req *Request, next Handler) (any, error) {
		SetHeader(ctx, "served-by", "s1")
		return next(ctx, req)
	}
	cli, _, _ := newCalcPair(t, []ServerOption{WithServerInterceptor(setter)}, WithClientInterceptor(observe))
	var sum int
	if err := cli.Call("Calc.Add", Args{2, 3}, &sum); err != nil {
		t.Fatal(err)
	}
	if s := <-results; s.err != nil || s.reply != 5 || s.header != "s1" {
		t.Errorf("interceptor saw %+v, want no error, reply 5, header s1", s)
	}
	var q float64
	err := cli.Call("Calc.Div", Args{1, 0}, &q)
	var se ServerError
	if !errors.Is(err, wrapErr) || !errors.As(err, &se) {
		t.Errorf("Call error = %v, want the interceptor's wrap of a ServerError", err)
	}
	if s := <-results; s.err == nil {
		t.Errorf("interceptor saw no error for Calc.Div by zero")
	}
}

func TestClientInterceptorDeadline(t *testing.T) {
	deadlines := make(chan time.Duration, 1)
	see := func(ctx context.Context, call *Call, next Invoker) error {
		left := time.Duration(-1)
		if dl, ok := ctx.Deadline(); ok {
			left = time.Until(dl)
		}
		deadlines <- left
		return next(ctx, call)
	}
	cli, _, _ := newCalcPair(t, nil, WithClientInterceptor(see))
	var sum int
	tests := []struct {
		name     string
		ctx      time.Duration // 0: no ctx deadline
		opts     []CallOption
		min, max time.Duration // -1: no deadline
	}{
		{name: "none", min: -1, max: -1},
		{name: "WithTimeout", opts: []CallOption{WithTimeout(time.Hour)}, min: 59 * time.Minute, max: time.Hour},
		{name: "ctx earlier", ctx: time.Minute, opts: []CallOption{WithTimeout(time.Hour)}, min: 59 * time.Second, max: time.Minute},
		{name: "WithTimeout earlier", ctx: time.Hour, opts: []CallOption{WithTimeout(time.Minute)}, min: 59 * time.Second, max: time.Minute},
	}
	for _, tt := range tests {
		ctx := context.Background()
		if tt.ctx > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, tt.ctx)
			defer cancel()
		}
		if err := cli.CallContext(ctx, "Calc.Add", Args{1, 1}, &sum, tt.opts...); err != nil {
			t.Fatalf("%s: CallContext = %v", tt.name, err)
		}
		if got := <-deadlines; got < tt.min || got > tt.max {
			t.Errorf("%s: interceptor's ctx deadline in %v, want within [%v, %v]", tt.name, got, tt.min, tt.max)
		}
	}
}

func TestClientInterceptorOncePerCall(t *testing.T) {
	var serverTries, clientRuns atomic.Int32
	flaky := func(ctx context.Context, req *Request, next Handler) (any, error) {
		if serverTries.Add(1) <= 2 {
			return nil, ErrOverloaded // did not run: the client tries again
		}
		return next(ctx, req)
	}
	count := func(ctx context.Context, call *Call, next Invoker) error {
		clientRuns.Add(1)
		return next(ctx, call)
	}
	// Three instances: a call refused as overloaded goes to another one
	// (a client of one server would hear ErrOverloaded at once).
	reg := newMemoryRegistry(t)
	for range 3 {
		srv := NewServer(WithRegistry(reg), WithServerInterceptor(flaky))
		if err := srv.Register(&Calc{started: make(chan struct{}, 1)}); err != nil {
			t.Fatal(err)
		}
		startServer(t, srv)
	}
	poll(t, defaultTestTimeout, "3 instances of Calc in the registry", func() bool {
		insts, err := reg.Lookup(t.Context(), "Calc")
		return err == nil && len(insts) == 3
	})
	cli := newFleetClient(t, reg, WithClientInterceptor(count))
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil || sum != 3 {
		t.Fatalf("Call = %d, %v; want 3, nil after two refusals", sum, err)
	}
	if s, c := serverTries.Load(), clientRuns.Load(); s != 3 || c != 1 {
		t.Errorf("server saw %d attempts, client interceptor ran %d times; want 3, 1", s, c)
	}
}

func TestClientInterceptorNextTwice(t *testing.T) {
	twice := func(ctx context.Context, call *Call, next Invoker) error {
		if err := next(ctx, call); err != nil {
			return err
		}
		return next(ctx, call)
	}
	cli, _, _ := newCalcPair(t, nil, WithClientInterceptor(twice))
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); !errors.Is(err, ErrInternal) {
		t.Errorf("Call whose interceptor calls next twice error = %v, want ErrInternal", err)
	}
}

func TestClientInterceptorPanicAsync(t *testing.T) {
	var logs syncBuffer
	boom := func(ctx context.Context, call *Call, next Invoker) error { panic("client boom") }
	cli, _, _ := newCalcPair(t, nil, WithClientInterceptor(boom), WithLogger(newTextLogger(&logs)))
	var sum int
	call := cli.Go("Calc.Add", Args{1, 2}, &sum, nil)
	waitCall(t, call, defaultTestTimeout)
	if !errors.Is(call.Error, ErrInternal) {
		t.Errorf("Go through a panicking interceptor error = %v, want ErrInternal", call.Error)
	}
	done := make(chan error, 1)
	cli.Callback("Calc.Add", Args{1, 2}, &sum, func(c *Call) { done <- c.Error })
	if err := recvErr(t, done, "the callback"); !errors.Is(err, ErrInternal) {
		t.Errorf("Callback through a panicking interceptor error = %v, want ErrInternal", err)
	}
	if !strings.Contains(logs.String(), "client boom") {
		t.Errorf("client log lacks the panic: %q", logs.String())
	}
}

func TestClientInterceptorClosed(t *testing.T) {
	pass := func(ctx context.Context, call *Call, next Invoker) error { return next(ctx, call) }
	cli, _, _ := newCalcPair(t, nil, WithClientInterceptor(pass))
	cli.Close()
	var sum int
	call := cli.Go("Calc.Add", Args{1, 2}, &sum, nil)
	waitCall(t, call, defaultTestTimeout)
	if !errors.Is(call.Error, ErrShutdown) {
		t.Errorf("Go on a closed client error = %v, want ErrShutdown", call.Error)
	}
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); !errors.Is(err, ErrShutdown) {
		t.Errorf("Call on a closed client error = %v, want ErrShutdown", err)
	}
}

// TestClientInterceptorCancel: the caller's ctx ends the call inside the
// chain, and the interceptor sees ctx's error.
func TestClientInterceptorCancel(t *testing.T) {
	seen := make(chan error, 1)
	see := func(ctx context.Context, call *Call, next Invoker) error {
		err := next(ctx, call)
		seen <- err
		return err
	}
	cli, calc, _ := newCalcPair(t, nil, WithClientInterceptor(see))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		var n int
		errc <- cli.CallContext(ctx, "Calc.Sleep", time.Hour, &n)
	}()
	<-calc.started
	cancel()
	if err := recvErr(t, errc, "the cancelled call"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled CallContext error = %v, want context.Canceled", err)
	}
	if err := recvErr(t, seen, "the interceptor"); !errors.Is(err, context.Canceled) {
		t.Errorf("interceptor saw %v, want context.Canceled", err)
	}
	waitFor(t, "the handler to see its cancel", func() bool { return calc.cancelled.Load() == 1 })
}
