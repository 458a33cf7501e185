package prometheus_test

import (
	"context"
	"testing"

	rpc "github.com/seedrpc/rpc"
	rpcprom "github.com/seedrpc/rpc/contrib/prometheus"
)

// BenchmarkInterceptor measures what the metrics add to a call: the
// interceptors around a handler that does nothing.
func BenchmarkInterceptor(b *testing.B) {
	b.Run("server", func(b *testing.B) {
		ic := rpcprom.NewServerMetrics().Interceptor()
		req := &rpc.Request{ServiceMethod: "Calc.Add"}
		next := func(context.Context, *rpc.Request) (any, error) { return nil, nil }
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ic(ctx, req, next)
			}
		})
	})
	b.Run("client", func(b *testing.B) {
		ic := rpcprom.NewClientMetrics().Interceptor()
		call := &rpc.Call{ServiceMethod: "Calc.Add"}
		next := func(context.Context, *rpc.Call) error { return nil }
		ctx := context.Background()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				ic(ctx, call, next)
			}
		})
	})
}
