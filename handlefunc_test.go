package rpc

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/schema"
	"github.com/seedrpc/rpc/registry"
)

type Product struct {
	Name  string
	Price float64
}

func mul(_ context.Context, a Args) (int, error) { return a.A * a.B, nil }

func TestHandleFunc(t *testing.T) {
	srv := NewServer()
	if err := HandleFunc(srv, "Math.Mul", mul); err != nil {
		t.Fatalf("HandleFunc(Math.Mul) = %v", err)
	}
	// A pointer Req and a struct Resp, a second method on the service.
	if err := HandleFunc(srv, "Math.Product", func(_ context.Context, a *Args) (Product, error) {
		if a == nil {
			return Product{}, errors.New("nil args")
		}
		return Product{Name: "p", Price: float64(a.A) * float64(a.B)}, nil
	}); err != nil {
		t.Fatalf("HandleFunc(Math.Product) = %v", err)
	}
	if err := HandleFunc(srv, "Math.Fail", func(_ context.Context, code int) (int, error) {
		if code != 0 {
			return 0, Errorf(code, "failed with %d", code)
		}
		return 0, errors.New("plain failure")
	}); err != nil {
		t.Fatal(err)
	}
	if err := HandleFunc(srv, "Math.Panic", func(context.Context, int) (int, error) { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	if err := HandleFunc(srv, "Math.Deadline", func(ctx context.Context, _ struct{}) (bool, error) {
		_, ok := ctx.Deadline()
		return ok, nil
	}); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv)
	ctx := t.Context()

	// Untyped and typed callers alike.
	var got int
	if err := cli.Call("Math.Mul", Args{3, 4}, &got); err != nil || got != 12 {
		t.Errorf("Call(Math.Mul, 3, 4) = %d, %v; want 12, nil", got, err)
	}
	if v, err := NewMethod[Args, int](cli, "Math.Mul").Call(ctx, Args{5, 6}); err != nil || v != 30 {
		t.Errorf("typed Math.Mul(5, 6) = %d, %v; want 30, nil", v, err)
	}
	if p, err := NewMethod[Args, Product](cli, "Math.Product").Call(ctx, Args{2, 3}); err != nil || p != (Product{"p", 6}) {
		t.Errorf("Math.Product(2, 3) = %+v, %v; want {p 6}, nil", p, err)
	}

	var ce *Error
	if _, err := NewMethod[int, int](cli, "Math.Fail").Call(ctx, 7); !errors.As(err, &ce) || ce.Code != 7 {
		t.Errorf("Math.Fail(7) error = %v, want *Error with code 7", err)
	}
	var se ServerError
	if _, err := NewMethod[int, int](cli, "Math.Fail").Call(ctx, 0); !errors.As(err, &se) || string(se) != "plain failure" {
		t.Errorf("Math.Fail(0) error = %v, want ServerError(plain failure)", err)
	}
	if _, err := NewMethod[int, int](cli, "Math.Panic").Call(ctx, 0); !errors.Is(err, ErrInternal) {
		t.Errorf("Math.Panic error = %v, want ErrInternal", err)
	}
	if ok, err := NewMethod[struct{}, bool](cli, "Math.Deadline").Call(ctx, struct{}{}, WithTimeout(time.Second)); err != nil || !ok {
		t.Errorf("Math.Deadline with WithTimeout = %v, %v; want a deadline in the handler's ctx", ok, err)
	}
	if _, err := NewMethod[int, int](cli, "Math.Nope").Call(ctx, 0); !errors.Is(err, ErrNoMethod) {
		t.Errorf("Math.Nope error = %v, want ErrNoMethod", err)
	}
	// A bad request: args that do not decode into Req.
	if err := cli.Call("Math.Mul", "not args", &got); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Math.Mul with a string: error = %v, want ErrBadRequest", err)
	}

	// Per-method statistics count the calls.
	stats := map[string]debugMethod{}
	for _, s := range srv.debugInfo(ctx).Services {
		for _, m := range s.Methods {
			stats[s.Name+"."+m.Name] = m
		}
	}
	if m := stats["Math.Mul"]; m.Calls != 3 || m.Errors != 1 {
		t.Errorf("Math.Mul stats: calls %d, errors %d; want 3, 1", m.Calls, m.Errors)
	}
	if m := stats["Math.Panic"]; m.Calls != 1 || m.Errors != 1 {
		t.Errorf("Math.Panic stats: calls %d, errors %d; want 1, 1", m.Calls, m.Errors)
	}
}

func TestHandleFuncErrors(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	if err := HandleFunc(srv, "Math.Mul", mul); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give    string
		wantErr string // "" for success
	}{
		{"NoDot", "malformed"},
		{".Mul", "malformed"},
		{"Math.", "malformed"},
		{"", "malformed"},
		{"A.B.C", "malformed"},
		{schema.ServiceName + ".Mul", "reserved"},
		{schema.DescribeMethod, "reserved"},
		{"Math.Mul", "already has a method"}, // a func service's
		{"Calc.Add", "already has a method"}, // a registered service's
		{"Math.Mul2", ""},                    // another method of a func service
		{"Calc.Mul", ""},                     // a new method of a registered service
		{"Math.Mul2", "already has a method"},
		{"Long." + strings.Repeat("x", 70000), "exceeds"},
	}
	for _, tt := range tests {
		err := HandleFunc(srv, tt.give, mul)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("HandleFunc(%q) = %v, want nil", tt.give, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("HandleFunc(%.20q) = %v, want an error with %q", tt.give, err, tt.wantErr)
		}
	}
	if err := HandleFunc[Args, int](srv, "Math.Nil", nil); err == nil {
		t.Error("HandleFunc with a nil function = nil, want an error")
	}
	if err := HandleFunc(nil, "Math.X", mul); err == nil {
		t.Error("HandleFunc on a nil server = nil, want an error")
	}
	// A service made by HandleFunc cannot be registered again.
	if err := srv.RegisterName("Math", &Calc{}); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("RegisterName(Math) after HandleFunc(Math.Mul) = %v, want already registered", err)
	}

	cli, _ := serveAndDial(t, srv)
	for _, m := range []string{"Math.Mul", "Math.Mul2", "Calc.Mul"} {
		if v, err := NewMethod[Args, int](cli, m).Call(t.Context(), Args{2, 5}); err != nil || v != 10 {
			t.Errorf("%s(2, 5) = %d, %v; want 10, nil", m, v, err)
		}
	}
	var sum int
	if err := cli.Call("Calc.Add", Args{2, 5}, &sum); err != nil || sum != 7 {
		t.Errorf("Calc.Add after Calc.Mul was added = %d, %v", sum, err)
	}
	// Adding methods while serving: callable once HandleFunc returns.
	if err := HandleFunc(srv, "Late.Mul", mul); err != nil {
		t.Fatalf("HandleFunc while serving (no registry) = %v", err)
	}
	if v, err := NewMethod[Args, int](cli, "Late.Mul").Call(t.Context(), Args{3, 3}); err != nil || v != 9 {
		t.Errorf("Late.Mul(3, 3) = %d, %v; want 9, nil", v, err)
	}
}

// TestHandleFuncInterceptors checks that func handlers run inside the
// server's interceptors, which can read their args and refuse them.
func TestHandleFuncInterceptors(t *testing.T) {
	var calls atomic.Int32
	srv := NewServer(WithServerInterceptor(func(ctx context.Context, req *Request, next Handler) (any, error) {
		if req.ServiceMethod != "Math.Mul" {
			return next(ctx, req)
		}
		calls.Add(1)
		a, err := req.Args()
		if err != nil {
			return nil, err
		}
		if args := a.(*Args); args.A < 0 {
			return nil, ErrPermissionDenied
		}
		reply, err := next(ctx, req)
		if err == nil {
			*reply.(*int) += 1000 // the interceptor sees, and may change, the reply
		}
		return reply, err
	}))
	if err := HandleFunc(srv, "Math.Mul", mul); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv)
	m := NewMethod[Args, int](cli, "Math.Mul")
	if v, err := m.Call(t.Context(), Args{2, 3}); err != nil || v != 1006 {
		t.Errorf("Math.Mul(2, 3) through the interceptor = %d, %v; want 1006, nil", v, err)
	}
	if _, err := m.Call(t.Context(), Args{-1, 3}); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("Math.Mul(-1, 3) error = %v, want ErrPermissionDenied", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("interceptor ran %d times, want 2", n)
	}
}

// TestHandleFuncLimits checks that func handlers count against the
// server's call limit like registered methods.
func TestHandleFuncLimits(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	srv := NewServer(WithMaxCalls(1, 0))
	if err := HandleFunc(srv, "Slow.Wait", func(ctx context.Context, _ int) (int, error) {
		started <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return 1, nil
	}); err != nil {
		t.Fatal(err)
	}
	cli, addr := serveAndDial(t, srv)
	wait := NewMethod[int, int](cli, "Slow.Wait")
	f := wait.Go(t.Context(), 0)
	select {
	case <-started:
	case <-time.After(defaultTestTimeout):
		t.Fatal("the handler did not start")
	}
	cli2, err := Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	if _, err := NewMethod[int, int](cli2, "Slow.Wait").Call(t.Context(), 0); !errors.Is(err, ErrOverloaded) {
		t.Errorf("a second call over WithMaxCalls(1): error = %v, want ErrOverloaded", err)
	}
	close(release)
	if v, err := f.Await(t.Context()); err != nil || v != 1 {
		t.Errorf("the first call = %d, %v; want 1, nil", v, err)
	}
}

func TestHandleFuncIntrospection(t *testing.T) {
	srv := NewServer()
	if err := HandleFunc(srv, "Shop.Order", func(_ context.Context, o *Order) (OrderReply, error) {
		return OrderReply{ID: o.ID}, nil
	}); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv)
	var d schema.Description
	if err := cli.Call(schema.DescribeMethod, schema.DescribeArgs{Service: "Shop"}, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Services) != 1 || len(d.Services[0].Methods) != 1 {
		t.Fatalf("Describe(Shop) = %+v, want one service with one method", d)
	}
	m := d.Services[0].Methods[0]
	if want := "{ID string, Items []{Name string, Qty int}}"; m.Name != "Order" || m.Args.String() != want {
		t.Errorf("Shop.Order args = %s %s, want Order %s (a pointer Req described as its value)", m.Name, m.Args, want)
	}
	if want := "{ID string, Total float}"; m.Reply.String() != want {
		t.Errorf("Shop.Order reply = %s, want %s", m.Reply, want)
	}
}

// TestHandleFuncRegistry checks that services made by HandleFunc are
// announced, and that one made after Serve announced is refused.
func TestHandleFuncRegistry(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	srv := NewServer(WithRegistry(reg))
	if err := HandleFunc(srv, "Math.Mul", mul); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv)
	ctx := t.Context()
	waitFor(t, "Math announced", func() bool {
		insts, err := reg.Lookup(ctx, "Math")
		return err == nil && len(insts) == 1 && insts[0].Addr == addr
	})
	if err := HandleFunc(srv, "Math.Mul3", mul); err != nil {
		t.Errorf("HandleFunc(Math.Mul3) on an announced service = %v, want nil", err)
	}
	if err := HandleFunc(srv, "Late.Mul", mul); err == nil || !strings.Contains(err.Error(), "before Serve") {
		t.Errorf("HandleFunc(Late.Mul) after Serve with a registry = %v, want an error", err)
	}

	cli, err := NewClient(WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if v, err := NewMethod[Args, int](cli, "Math.Mul3").Call(ctx, Args{4, 4}); err != nil || v != 16 {
		t.Errorf("Math.Mul3(4, 4) by discovery = %d, %v; want 16, nil", v, err)
	}
}
