package otel

import (
	"context"
	"net"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	rpc "github.com/seedrpc/rpc"
)

// ServerInterceptor returns a server interceptor that traces every call
// (oneways too) in a server span, continuing the trace whose context the
// request headers carry, and runs the rest of the chain with a ctx that
// holds the span. A call that panics ends its span with status Error and
// the panic goes on to the server, which answers it as usual.
func ServerInterceptor(opts ...Option) rpc.ServerInterceptor {
	c := newConfig(opts)
	tracer := c.tracer()
	return func(ctx context.Context, req *rpc.Request, next rpc.Handler) (reply any, err error) {
		ctx = c.prop.Extract(ctx, propagation.MapCarrier(req.Header))
		name, attrs := spanName(req.ServiceMethod)
		attrs = append(attrs, peerAttrs(req.Peer)...)
		if req.Oneway {
			attrs = append(attrs, onewayKey.Bool(true))
		}
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		panicked := true
		defer func() { end(span, err, panicked) }()
		reply, err = next(ctx, req)
		panicked = false
		return reply, err
	}
}

// peerAttrs describes the client's address.
func peerAttrs(addr net.Addr) []attribute.KeyValue {
	if addr == nil {
		return nil
	}
	if a, ok := addr.(*net.TCPAddr); ok {
		return []attribute.KeyValue{semconv.NetworkPeerAddress(a.IP.String()), semconv.NetworkPeerPort(a.Port)}
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return []attribute.KeyValue{semconv.NetworkPeerAddress(addr.String())}
	}
	attrs := []attribute.KeyValue{semconv.NetworkPeerAddress(host)}
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, semconv.NetworkPeerPort(p))
	}
	return attrs
}
