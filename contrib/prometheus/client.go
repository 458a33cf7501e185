package prometheus

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	rpc "github.com/seedrpc/rpc"
)

// ClientMetrics counts and times the calls a client makes. It is a
// prometheus.Collector: register it, and install Interceptor on clients.
type ClientMetrics struct {
	m *callMetrics
}

var _ prometheus.Collector = (*ClientMetrics)(nil)

// NewClientMetrics returns the collector of seedrpc_client_handled_total,
// seedrpc_client_handling_seconds and seedrpc_client_in_flight.
func NewClientMetrics(opts ...Option) *ClientMetrics {
	return &ClientMetrics{m: newCallMetrics("client", newOptions(opts))}
}

// Describe sends the descriptors of the client metrics.
func (cm *ClientMetrics) Describe(ch chan<- *prometheus.Desc) { cm.m.describe(ch) }

// Collect sends the client metrics.
func (cm *ClientMetrics) Collect(ch chan<- prometheus.Metric) { cm.m.collect(ch) }

// Interceptor returns the client interceptor that records every call, in
// every call style, once per call however many attempts it took. Install
// it first (outermost) to time what the caller waits for.
func (cm *ClientMetrics) Interceptor() rpc.ClientInterceptor {
	return func(ctx context.Context, call *rpc.Call, next rpc.Invoker) (err error) {
		s := cm.m.series(call.ServiceMethod)
		cm.m.inFlight.Inc()
		start := time.Now()
		panicked := true
		defer func() {
			cm.m.inFlight.Dec()
			code := "Internal"
			if !panicked {
				code = clientCode(err)
			}
			s.done(code, time.Since(start).Seconds())
		}()
		err = next(ctx, call)
		panicked = false
		return err
	}
}
