// Package otel traces seedrpc calls with OpenTelemetry. It is a module of
// its own, so that the library never depends on OpenTelemetry.
//
// ClientInterceptor starts a client span per call and sends its W3C trace
// context in the request headers; ServerInterceptor continues that trace in
// a server span, the client span's child, and hands the handler a ctx that
// carries it, so the calls a handler makes join the same trace:
//
//	srv := rpc.NewServer(rpc.WithServerInterceptor(rpcotel.ServerInterceptor()))
//	cli, err := rpc.Dial("tcp", addr, rpc.WithClientInterceptor(rpcotel.ClientInterceptor()))
//
// (imported as rpcotel "github.com/seedrpc/rpc/contrib/otel"). Without
// options both use the global TracerProvider and propagator
// (otel.SetTracerProvider, otel.SetTextMapPropagator), as otelgrpc does;
// the propagator must include propagation.TraceContext for the server span
// to join the client's trace.
//
// A span is named "Service/Method" ("Calc/Add") and carries the OTel RPC
// attributes rpc.system ("seedrpc"), rpc.service and rpc.method; a server
// span also network.peer.address and network.peer.port, and
// rpc.seedrpc.oneway for a oneway call. A call that fails sets the span's
// status to Error with the error's text, plus rpc.seedrpc.error_code for an
// *rpc.Error. The client span covers the whole call, retries and hedges
// included; which instance answered is below the interceptors and is not
// recorded. Go and Callback calls take no ctx, so their client spans start
// new traces.
package otel

import (
	"errors"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	rpc "github.com/seedrpc/rpc"
)

// ScopeName is the instrumentation scope of the tracers this package
// creates.
const ScopeName = "github.com/seedrpc/rpc/contrib/otel"

// Attributes this package adds beyond the OTel semantic conventions.
var (
	errorCodeKey = attribute.Key("rpc.seedrpc.error_code")
	onewayKey    = attribute.Key("rpc.seedrpc.oneway")
	systemAttr   = semconv.RPCSystemKey.String("seedrpc")
)

// Option configures ServerInterceptor and ClientInterceptor.
type Option func(*config)

type config struct {
	tp   trace.TracerProvider
	prop propagation.TextMapPropagator
}

// WithTracerProvider sets the TracerProvider that creates the spans
// (default: the global one, otel.GetTracerProvider()). nil keeps the
// default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithPropagators sets the propagator that writes and reads the trace
// context in request headers (default: the global one,
// otel.GetTextMapPropagator()). nil keeps the default.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return func(c *config) {
		if p != nil {
			c.prop = p
		}
	}
}

func newConfig(opts []Option) config {
	c := config{tp: otel.GetTracerProvider(), prop: otel.GetTextMapPropagator()}
	for _, opt := range opts {
		if opt != nil {
			opt(&c)
		}
	}
	return c
}

func (c config) tracer() trace.Tracer {
	return c.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
}

// spanName returns the span name of serviceMethod, "Service/Method", and
// the span's RPC attributes.
func spanName(serviceMethod string) (string, []attribute.KeyValue) {
	service, method := serviceMethod, ""
	if i := strings.LastIndexByte(serviceMethod, '.'); i >= 0 {
		service, method = serviceMethod[:i], serviceMethod[i+1:]
	}
	attrs := []attribute.KeyValue{systemAttr, semconv.RPCService(service), semconv.RPCMethod(method)}
	return service + "/" + method, attrs
}

// end records err (or a panic on its way up) on span and ends it.
func end(span trace.Span, err error, panicked bool) {
	switch {
	case panicked:
		span.SetStatus(codes.Error, "panic")
	case err != nil:
		span.SetStatus(codes.Error, err.Error())
		var e *rpc.Error
		if errors.As(err, &e) {
			span.SetAttributes(errorCodeKey.Int(e.Code))
		}
	}
	span.End()
}
