// Package prometheus exports seedrpc's calls as Prometheus metrics. It is a
// module of its own, so that the library never depends on client_golang.
//
// ServerMetrics and ClientMetrics are prometheus.Collectors whose
// Interceptor counts and times every call that goes through it:
//
//	sm := rpcprom.NewServerMetrics()
//	prometheus.MustRegister(sm)
//	srv := rpc.NewServer(rpc.WithServerInterceptor(sm.Interceptor()))
//
//	cm := rpcprom.NewClientMetrics()
//	prometheus.MustRegister(cm)
//	cli, err := rpc.NewClient(rpc.WithRegistry(reg), rpc.WithClientInterceptor(cm.Interceptor()))
//	prometheus.MustRegister(rpcprom.NewClientStatsCollector(cli))
//
// (imported as rpcprom "github.com/seedrpc/rpc/contrib/prometheus"). The
// metrics:
//
//	seedrpc_server_handled_total{service,method,code}   counter
//	seedrpc_server_handling_seconds{service,method}     histogram
//	seedrpc_server_in_flight                            gauge
//	seedrpc_client_handled_total{service,method,code}   counter
//	seedrpc_client_handling_seconds{service,method}     histogram
//	seedrpc_client_in_flight                            gauge
//	seedrpc_client_connections{address}                 gauge (ClientStatsCollector)
//	seedrpc_client_registry_instances{service}          gauge (ClientStatsCollector)
//	seedrpc_client_registry_sync_age_seconds{service}   gauge (ClientStatsCollector)
//
// service and method split "Calc.Add" into "Calc" and "Add". The handling
// time of a server call is the interceptor chain inside the metrics
// interceptor and the method; that of a client call spans all its attempts
// (retries, hedges) until the reply, or until a oneway is written. Failed
// calls are timed too.
//
// code is "OK" for a call that succeeded and otherwise one of a fixed set
// of names (see the middleware package's Status, which names them the
// same way in logs):
//
//	Error             the handler returned an *rpc.Error (any code)
//	ServerError       the handler returned another error
//	Timeout           the deadline passed (either side)
//	Canceled          the caller cancelled
//	Unauthenticated   rpc.ErrUnauthenticated (missing or bad credentials)
//	PermissionDenied  rpc.ErrPermissionDenied
//	Overloaded        rpc.ErrOverloaded (limits, rate limits)
//	BadRequest        rpc.ErrBadRequest (args that do not decode)
//	Internal          the handler or an interceptor panicked
//	ShuttingDown      rpc.ErrServerShuttingDown
//	NoService         rpc.ErrNoService
//	NoMethod          rpc.ErrNoMethod
//
// and on the client side only:
//
//	NoInstances       rpc.ErrNoInstances (the registry lists none)
//	Unavailable       no connection: rpc.ErrShutdown, or a dial or network error
//	Unknown           a local failure the client raised itself (args that
//	                  do not encode, a request over the frame limit, ...)
//
// Install the server interceptor first (outermost) so that calls refused by
// the interceptors after it (auth, rate limits) are counted with their
// code. One ServerMetrics may serve several servers, and one ClientMetrics
// several clients; a Registerer accepts each collector once.
package prometheus

import (
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBuckets are the upper bounds, in seconds, of the handling-time
// histograms: from 50µs (a call on loopback) to 10s.
var DefaultBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Option configures ServerMetrics and ClientMetrics.
type Option func(*options)

type options struct {
	buckets []float64
}

func defaultOptions() options {
	return options{buckets: DefaultBuckets}
}

// WithBuckets sets the upper bounds, in seconds, of the handling-time
// histogram (default DefaultBuckets). They are used sorted, without
// duplicates or NaN; none at all means the default.
func WithBuckets(buckets ...float64) Option {
	b := slices.DeleteFunc(slices.Clone(buckets), math.IsNaN)
	slices.Sort(b)
	b = slices.Compact(b)
	return func(o *options) {
		if len(b) > 0 {
			o.buckets = b
		}
	}
}

func newOptions(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// splitMethod splits "Service.Method" at its last dot; a name without a
// dot is all service.
func splitMethod(serviceMethod string) (service, method string) {
	if i := strings.LastIndexByte(serviceMethod, '.'); i >= 0 {
		return serviceMethod[:i], serviceMethod[i+1:]
	}
	return serviceMethod, ""
}

// callMetrics is the collectors of one side: counted calls, their
// handling times and the calls in flight.
type callMetrics struct {
	handled  *prometheus.CounterVec
	handling *prometheus.HistogramVec
	inFlight prometheus.Gauge

	// methods caches, by "Service.Method", the series of each method, so
	// that a call looks its labels up once.
	methods sync.Map // string → *methodSeries
}

func newCallMetrics(side string, o options) *callMetrics {
	return &callMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seedrpc_" + side + "_handled_total",
			Help: "Calls completed by the " + side + ", by service, method and outcome code.",
		}, []string{"service", "method", "code"}),
		handling: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "seedrpc_" + side + "_handling_seconds",
			Help:    "Time the " + side + " took to handle calls, in seconds, by service and method.",
			Buckets: o.buckets,
		}, []string{"service", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "seedrpc_" + side + "_in_flight",
			Help: "Calls the " + side + " is handling now.",
		}),
	}
}

func (m *callMetrics) describe(ch chan<- *prometheus.Desc) {
	m.handled.Describe(ch)
	m.handling.Describe(ch)
	m.inFlight.Describe(ch)
}

func (m *callMetrics) collect(ch chan<- prometheus.Metric) {
	m.handled.Collect(ch)
	m.handling.Collect(ch)
	m.inFlight.Collect(ch)
}

// methodSeries are the series of one method.
type methodSeries struct {
	m               *callMetrics
	service, method string
	seconds         prometheus.Observer
	handled         sync.Map // code → prometheus.Counter, made on first use
}

// series returns the series of serviceMethod, creating them on first use.
func (m *callMetrics) series(serviceMethod string) *methodSeries {
	if v, ok := m.methods.Load(serviceMethod); ok {
		return v.(*methodSeries)
	}
	service, method := splitMethod(serviceMethod)
	s := &methodSeries{
		m:       m,
		service: service,
		method:  method,
		seconds: m.handling.WithLabelValues(service, method),
	}
	v, _ := m.methods.LoadOrStore(serviceMethod, s)
	return v.(*methodSeries)
}

// done records one call that took seconds and ended with code.
func (s *methodSeries) done(code string, seconds float64) {
	s.seconds.Observe(seconds)
	c, ok := s.handled.Load(code)
	if !ok {
		c, _ = s.handled.LoadOrStore(code, s.m.handled.WithLabelValues(s.service, s.method, code))
	}
	c.(prometheus.Counter).Inc()
}
