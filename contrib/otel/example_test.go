package otel_test

import (
	"context"
	"fmt"
	"net"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	rpc "github.com/seedrpc/rpc"
	rpcotel "github.com/seedrpc/rpc/contrib/otel"
)

// A call traced on both sides: the server span is the client span's child.
func Example() {
	rec := tracetest.NewSpanRecorder() // in production: an exporter, sdktrace.WithBatcher(exp)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	// Without these options: the global provider and propagator.
	opts := []rpcotel.Option{rpcotel.WithTracerProvider(tp), rpcotel.WithPropagators(propagation.TraceContext{})}

	srv := rpc.NewServer(rpc.WithServerInterceptor(rpcotel.ServerInterceptor(opts...)))
	if err := srv.Register(&Calc{}); err != nil {
		panic(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(lis)
	defer srv.Close()
	cli, err := rpc.Dial("tcp", lis.Addr().String(), rpc.WithClientInterceptor(rpcotel.ClientInterceptor(opts...)))
	if err != nil {
		panic(err)
	}
	defer cli.Close()

	var sum int
	if err := cli.CallContext(context.Background(), "Calc.Add", Args{1, 2}, &sum); err != nil {
		panic(err)
	}
	spans := rec.Ended() // the server span ends before its reply is sent
	server, client := spans[0], spans[1]
	fmt.Println(client.SpanKind(), client.Name())
	fmt.Println(server.SpanKind(), server.Name())
	fmt.Println("same trace:", server.SpanContext().TraceID() == client.SpanContext().TraceID())
	fmt.Println("server's parent is the client span:", server.Parent().SpanID() == client.SpanContext().SpanID())
	// Output:
	// client Calc/Add
	// server Calc/Add
	// same trace: true
	// server's parent is the client span: true
}
