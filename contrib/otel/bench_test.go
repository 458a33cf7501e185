package otel_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	rpc "github.com/seedrpc/rpc"
	rpcotel "github.com/seedrpc/rpc/contrib/otel"
)

// BenchmarkClientServer measures a client and a server interceptor around
// a handler that does nothing, with the trace context passed in headers:
// with the no-op provider (tracing installed, off) and with the SDK
// sampling every span into a processor that drops them.
func BenchmarkClientServer(b *testing.B) {
	sdk := sdktrace.NewTracerProvider()
	b.Cleanup(func() { sdk.Shutdown(context.Background()) })
	for _, bc := range []struct {
		name string
		opts []rpcotel.Option
	}{
		{"noop", []rpcotel.Option{rpcotel.WithTracerProvider(noop.NewTracerProvider())}},
		{"sdk", []rpcotel.Option{rpcotel.WithTracerProvider(sdk)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := append(bc.opts, rpcotel.WithPropagators(propagation.TraceContext{}))
			cic, sic := rpcotel.ClientInterceptor(opts...), rpcotel.ServerInterceptor(opts...)
			handler := func(context.Context, *rpc.Request) (any, error) { return nil, nil }
			next := func(ctx context.Context, call *rpc.Call) error {
				_, err := sic(ctx, &rpc.Request{ServiceMethod: call.ServiceMethod, Header: call.Header}, handler)
				return err
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				cic(ctx, &rpc.Call{ServiceMethod: "Calc.Add"}, next)
			}
		})
	}
}
