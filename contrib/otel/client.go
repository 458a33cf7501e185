package otel

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	rpc "github.com/seedrpc/rpc"
)

// ClientInterceptor returns a client interceptor that traces every call in
// a client span, a child of the span in the call's ctx, and sends the span's
// context to the server in the request headers ("traceparent",
// "tracestate", and "baggage" with a baggage propagator).
func ClientInterceptor(opts ...Option) rpc.ClientInterceptor {
	c := newConfig(opts)
	tracer := c.tracer()
	return func(ctx context.Context, call *rpc.Call, next rpc.Invoker) (err error) {
		name, attrs := spanName(call.ServiceMethod)
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
		panicked := true
		defer func() { end(span, err, panicked) }()
		if call.Header == nil {
			call.Header = make(map[string]string, 2)
		}
		c.prop.Inject(ctx, propagation.MapCarrier(call.Header))
		err = next(ctx, call)
		panicked = false
		return err
	}
}
