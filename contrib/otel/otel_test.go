package otel_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/servetest"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	rpc "github.com/seedrpc/rpc"
	rpcotel "github.com/seedrpc/rpc/contrib/otel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait of these tests.
const testTimeout = 10 * time.Second

type Args struct{ A, B int }

// Calc is the service the tests call. Nested calls Calc.Add through
// client, with the handler's ctx.
type Calc struct {
	client *rpc.Client
}

func (c *Calc) Add(args Args, reply *int) error { *reply = args.A + args.B; return nil }

func (c *Calc) Coded(args Args, reply *int) error { return rpc.Errorf(7, "coded %d", args.A) }

func (c *Calc) Plain(args Args, reply *int) error { return errors.New("plain failure") }

func (c *Calc) Panic(args Args, reply *int) error { panic("boom") }

func (c *Calc) Nested(ctx context.Context, args Args, reply *int) error {
	return c.client.CallContext(ctx, "Calc.Add", args, reply)
}

// env is a server and a client that both trace into one recorder.
type env struct {
	rec  *tracetest.SpanRecorder
	cli  *rpc.Client
	addr string
}

// newEnv serves a Calc with the server interceptor and dials it with the
// client interceptor, both built with opts (or, when opts is nil, with
// the given tracer provider and the W3C propagator).
func newEnv(t *testing.T, opts ...rpcotel.Option) *env {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	if opts == nil {
		opts = []rpcotel.Option{rpcotel.WithTracerProvider(tp), rpcotel.WithPropagators(propagation.TraceContext{})}
	}
	calc := &Calc{}
	addr := startServer(t, calc, rpc.WithServerInterceptor(rpcotel.ServerInterceptor(opts...)))
	cli, err := rpc.Dial("tcp", addr, rpc.WithClientInterceptor(rpcotel.ClientInterceptor(opts...)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	calc.client = cli
	return &env{rec: rec, cli: cli, addr: addr}
}

func startServer(t *testing.T, calc *Calc, opts ...rpc.ServerOption) string {
	t.Helper()
	srv := rpc.NewServer(opts...)
	if err := srv.Register(calc); err != nil {
		t.Fatal(err)
	}
	return servetest.Serve(t, srv)
}

// spans waits until the recorder holds n ended spans and returns them.
func (e *env) spans(t *testing.T, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		got := e.rec.Ended()
		if len(got) >= n {
			if len(got) > n {
				t.Fatalf("%d spans ended, want %d: %v", len(got), n, names(got))
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spans ended after %v, want %d: %v", len(got), testTimeout, n, names(got))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.SpanKind().String()+" "+s.Name())
	}
	return out
}

// byKind returns the one span of kind among spans.
func byKind(t *testing.T, spans []sdktrace.ReadOnlySpan, kind trace.SpanKind) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanKind() == kind {
			if found != nil {
				t.Fatalf("two %s spans among %v", kind, names(spans))
			}
			found = s
		}
	}
	if found == nil {
		t.Fatalf("no %s span among %v", kind, names(spans))
	}
	return found
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// checkPair checks a client span and its server child for method.
func checkPair(t *testing.T, spans []sdktrace.ReadOnlySpan, service, method string) (client, server sdktrace.ReadOnlySpan) {
	t.Helper()
	client = byKind(t, spans, trace.SpanKindClient)
	server = byKind(t, spans, trace.SpanKindServer)
	for _, s := range []sdktrace.ReadOnlySpan{client, server} {
		if want := service + "/" + method; s.Name() != want {
			t.Errorf("%s span name = %q, want %q", s.SpanKind(), s.Name(), want)
		}
		for key, want := range map[attribute.Key]string{"rpc.system": "seedrpc", "rpc.service": service, "rpc.method": method} {
			if v, ok := attr(s, key); !ok || v.AsString() != want {
				t.Errorf("%s span %s = %q, want %q", s.SpanKind(), key, v.Emit(), want)
			}
		}
	}
	if server.Parent().SpanID() != client.SpanContext().SpanID() || server.SpanContext().TraceID() != client.SpanContext().TraceID() {
		t.Errorf("server span parent = %v in trace %v, want the client span %v in trace %v",
			server.Parent().SpanID(), server.SpanContext().TraceID(), client.SpanContext().SpanID(), client.SpanContext().TraceID())
	}
	if !server.Parent().IsRemote() {
		t.Errorf("server span parent is not remote")
	}
	return client, server
}

func TestParentChild(t *testing.T) {
	e := newEnv(t)
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.rec)).Tracer("test")
	ctx, root := tracer.Start(context.Background(), "root")
	var sum int
	if err := e.cli.CallContext(ctx, "Calc.Add", Args{1, 2}, &sum); err != nil {
		t.Fatalf("CallContext(Calc.Add) error = %v", err)
	}
	root.End()
	spans := e.spans(t, 3)
	client, server := checkPair(t, withoutName(spans, "root"), "Calc", "Add")
	if client.Parent().SpanID() != root.SpanContext().SpanID() {
		t.Errorf("client span parent = %v, want the caller's span %v", client.Parent().SpanID(), root.SpanContext().SpanID())
	}
	if client.Status().Code != codes.Unset || server.Status().Code != codes.Unset {
		t.Errorf("status of a successful call: client %v, server %v, want Unset", client.Status(), server.Status())
	}
	if v, ok := attr(server, "network.peer.address"); !ok || v.AsString() != "127.0.0.1" {
		t.Errorf("server span network.peer.address = %q, want 127.0.0.1", v.Emit())
	}
	if v, ok := attr(server, "network.peer.port"); !ok || v.AsInt64() <= 0 {
		t.Errorf("server span network.peer.port = %v, want the client's port", v.Emit())
	}
	if _, ok := attr(server, "rpc.seedrpc.oneway"); ok {
		t.Errorf("a sync call's server span has rpc.seedrpc.oneway")
	}
}

func withoutName(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() != name {
			out = append(out, s)
		}
	}
	return out
}

// TestNested checks that a call made by a handler with its ctx is a child
// of the server span: one trace across two hops.
func TestNested(t *testing.T) {
	e := newEnv(t)
	var sum int
	if err := e.cli.Call("Calc.Nested", Args{1, 2}, &sum); err != nil || sum != 3 {
		t.Fatalf("Call(Calc.Nested) = %d, %v, want 3, nil", sum, err)
	}
	spans := e.spans(t, 4)
	var outer, inner []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == "Calc/Nested" {
			outer = append(outer, s)
		} else {
			inner = append(inner, s)
		}
	}
	_, outerServer := checkPair(t, outer, "Calc", "Nested")
	innerClient, _ := checkPair(t, inner, "Calc", "Add")
	if innerClient.Parent().SpanID() != outerServer.SpanContext().SpanID() {
		t.Errorf("the handler's call has parent %v, want the server span %v", innerClient.Parent().SpanID(), outerServer.SpanContext().SpanID())
	}
}

func TestErrorStatus(t *testing.T) {
	tests := []struct {
		give     string
		wantDesc string
		wantCode int64 // -1: no rpc.seedrpc.error_code
	}{
		{"Calc.Coded", "coded 1", 7},
		{"Calc.Plain", "plain failure", -1},
		{"Calc.Panic", "panic", -1},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			e := newEnv(t)
			var sum int
			if err := e.cli.Call(tt.give, Args{1, 2}, &sum); err == nil {
				t.Fatalf("Call(%q) error = nil, want an error", tt.give)
			}
			client, server := checkPair(t, e.spans(t, 2), "Calc", tt.give[len("Calc."):])
			for _, s := range []sdktrace.ReadOnlySpan{client, server} {
				if s.Status().Code != codes.Error {
					t.Errorf("%s span status = %v, want Error", s.SpanKind(), s.Status())
				}
				v, ok := attr(s, "rpc.seedrpc.error_code")
				if tt.wantCode < 0 && ok {
					t.Errorf("%s span rpc.seedrpc.error_code = %v, want none", s.SpanKind(), v.Emit())
				}
				if tt.wantCode >= 0 && (!ok || v.AsInt64() != tt.wantCode) {
					t.Errorf("%s span rpc.seedrpc.error_code = %v, want %d", s.SpanKind(), v.Emit(), tt.wantCode)
				}
			}
			if !strings.Contains(server.Status().Description, tt.wantDesc) {
				t.Errorf("server span status description = %q, want %q in it", server.Status().Description, tt.wantDesc)
			}
		})
	}
}

func TestOneway(t *testing.T) {
	e := newEnv(t)
	if err := e.cli.Oneway("Calc.Add", Args{1, 2}); err != nil {
		t.Fatalf("Oneway(Calc.Add) error = %v", err)
	}
	_, server := checkPair(t, e.spans(t, 2), "Calc", "Add")
	if v, ok := attr(server, "rpc.seedrpc.oneway"); !ok || !v.AsBool() {
		t.Errorf("oneway server span rpc.seedrpc.oneway = %v, want true", v.Emit())
	}
}

func TestAsyncModes(t *testing.T) {
	t.Run("Go", func(t *testing.T) {
		e := newEnv(t)
		var sum int
		call := e.cli.Go("Calc.Add", Args{1, 2}, &sum, nil)
		select {
		case <-call.Done:
		case <-time.After(testTimeout):
			t.Fatal("Go(Calc.Add) did not finish")
		}
		if call.Error != nil {
			t.Fatalf("Go(Calc.Add) error = %v", call.Error)
		}
		checkPair(t, e.spans(t, 2), "Calc", "Add")
	})
	t.Run("Callback", func(t *testing.T) {
		e := newEnv(t)
		var sum int
		done := make(chan error, 1)
		e.cli.Callback("Calc.Coded", Args{1, 2}, &sum, func(c *rpc.Call) { done <- c.Error })
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("Callback(Calc.Coded) error = nil, want a coded error")
			}
		case <-time.After(testTimeout):
			t.Fatal("Callback(Calc.Coded) did not run")
		}
		client, _ := checkPair(t, e.spans(t, 2), "Calc", "Coded")
		if client.Status().Code != codes.Error {
			t.Errorf("client span status = %v, want Error", client.Status())
		}
	})
}

// TestGlobalDefaults builds the interceptors without options after
// installing a global TracerProvider and propagator.
func TestGlobalDefaults(t *testing.T) {
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))

	e := newEnv(t, []rpcotel.Option{}...)
	e.rec = rec
	var sum int
	if err := e.cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil {
		t.Fatalf("Call(Calc.Add) error = %v", err)
	}
	checkPair(t, e.spans(t, 2), "Calc", "Add")
}

// TestNoPropagator: without a propagator that carries the trace context
// the server span starts its own trace; the call still works.
func TestNoPropagator(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	e := newEnv(t, rpcotel.WithTracerProvider(tp), rpcotel.WithPropagators(propagation.NewCompositeTextMapPropagator()))
	e.rec = rec
	var sum int
	if err := e.cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil {
		t.Fatalf("Call(Calc.Add) error = %v", err)
	}
	server := byKind(t, e.spans(t, 2), trace.SpanKindServer)
	if server.Parent().IsValid() {
		t.Errorf("server span has parent %v without propagation, want none", server.Parent())
	}
}
