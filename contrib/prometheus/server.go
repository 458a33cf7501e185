package prometheus

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	rpc "github.com/seedrpc/rpc"
)

// ServerMetrics counts and times the calls a server handles. It is a
// prometheus.Collector: register it, and install Interceptor on servers.
type ServerMetrics struct {
	m *callMetrics
}

var _ prometheus.Collector = (*ServerMetrics)(nil)

// NewServerMetrics returns the collector of seedrpc_server_handled_total,
// seedrpc_server_handling_seconds and seedrpc_server_in_flight.
func NewServerMetrics(opts ...Option) *ServerMetrics {
	return &ServerMetrics{m: newCallMetrics("server", newOptions(opts))}
}

// Describe sends the descriptors of the server metrics.
func (sm *ServerMetrics) Describe(ch chan<- *prometheus.Desc) { sm.m.describe(ch) }

// Collect sends the server metrics.
func (sm *ServerMetrics) Collect(ch chan<- prometheus.Metric) { sm.m.collect(ch) }

// Interceptor returns the server interceptor that records every call it
// sees (oneways too). A call that panics is recorded with code Internal
// and the panic goes on to the server, which answers it as usual.
func (sm *ServerMetrics) Interceptor() rpc.ServerInterceptor {
	return func(ctx context.Context, req *rpc.Request, next rpc.Handler) (reply any, err error) {
		s := sm.m.series(req.ServiceMethod)
		sm.m.inFlight.Inc()
		start := time.Now()
		panicked := true
		defer func() {
			sm.m.inFlight.Dec()
			code := "Internal"
			if !panicked {
				code = serverCode(err)
			}
			s.done(code, time.Since(start).Seconds())
		}()
		reply, err = next(ctx, req)
		panicked = false
		return reply, err
	}
}
