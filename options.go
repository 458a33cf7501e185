package rpc

import (
	"crypto/tls"
	"log/slog"
	"maps"
	"time"

	"github.com/seedrpc/rpc/codec"
	"github.com/seedrpc/rpc/internal/wire"
	"github.com/seedrpc/rpc/lb"
	"github.com/seedrpc/rpc/registry"
)

// ServerOption configures NewServer.
type ServerOption interface{ applyServer(*serverOptions) }

// ClientOption configures Dial and NewClient.
type ClientOption interface{ applyClient(*clientOptions) }

// Option is accepted by NewServer, Dial and NewClient alike: it means the
// same on both sides.
type Option interface {
	ServerOption
	ClientOption
}

// CallOption configures one call. Given to Dial or NewClient, a CallOption
// becomes the default of every call of that client.
type CallOption interface {
	ClientOption
	applyCall(*callOptions)
}

type serverOptions struct {
	logger          *slog.Logger
	tls             *tls.Config
	maxFrame        int
	connCalls       int
	maxCalls        int
	adaptive        bool
	registry        registry.Registry
	instance        registry.Instance // Service unused
	drainGrace      time.Duration
	registerTimeout time.Duration
	interceptors    []ServerInterceptor // outermost first
	noIntrospection bool                // WithIntrospection(false)
	maxBuffered     int64
	readTimeout     time.Duration
	idleTimeout     time.Duration
	maxConns        int
	compressMin     int // WithCompression; 0: replies are never compressed
}

func defaultServerOptions() serverOptions {
	return serverOptions{
		logger:          slog.New(slog.DiscardHandler),
		maxFrame:        wire.DefaultMaxFrameSize,
		connCalls:       256,
		maxCalls:        10000,
		drainGrace:      drainGrace,
		registerTimeout: 5 * time.Second,
		maxBuffered:     defaultMaxBuffered,
		readTimeout:     defaultReadTimeout,
		idleTimeout:     defaultServerIdleTimeout,
		maxConns:        defaultMaxConns,
	}
}

// drainGrace is how long Shutdown waits, once a connection has no call
// running, for its client to acknowledge the draining frame before closing
// it. A client of this package acknowledges at once; the grace bounds the
// wait for one that does not, and Shutdown's ctx bounds it too.
const drainGrace = 2 * time.Second

type clientOptions struct {
	logger      *slog.Logger
	tls         *tls.Config
	maxFrame    int
	codec       codec.Codec
	registry    registry.Registry
	balancer    lb.Balancer
	poolSize    int
	keepalive   time.Duration
	idleTimeout time.Duration
	ejectAfter  int
	ejectFor    time.Duration
	maxBuffered int64
	netRPC      bool        // WithNetRPC: speak net/rpc's protocol
	compressMin int         // WithCompression; 0: requests are never compressed
	call        callOptions // defaults for every call
	// interceptors wrap every call, outermost first.
	interceptors []ClientInterceptor
}

func defaultClientOptions() clientOptions {
	return clientOptions{
		logger:      slog.New(slog.DiscardHandler),
		maxFrame:    wire.DefaultMaxFrameSize,
		codec:       codec.Msgpack{},
		balancer:    lb.RoundRobin(),
		poolSize:    4,
		keepalive:   5 * time.Second,
		idleTimeout: 5 * time.Minute,
		ejectAfter:  5,
		ejectFor:    time.Second,
		maxBuffered: defaultMaxBuffered,
	}
}

type callOptions struct {
	timeout time.Duration
	hashKey string
	retries int
	hedge   time.Duration
	filter  map[string]string
	meta    []metaPair
	// respHeader receives the response headers of a sync call.
	respHeader *map[string]string
	// schemaCheck is WithSchemaCheck's: 1 on, -1 off, 0 unset (on for
	// typed calls only).
	schemaCheck int8
}

type metaPair struct{ key, val string }

type sharedOption struct {
	s func(*serverOptions)
	c func(*clientOptions)
}

func (o sharedOption) applyServer(so *serverOptions) { o.s(so) }
func (o sharedOption) applyClient(co *clientOptions) { o.c(co) }

type serverOption func(*serverOptions)

func (f serverOption) applyServer(o *serverOptions) { f(o) }

type clientOption func(*clientOptions)

func (f clientOption) applyClient(o *clientOptions) { f(o) }

type callOption func(*callOptions)

func (f callOption) applyCall(o *callOptions)     { f(o) }
func (f callOption) applyClient(o *clientOptions) { f(&o.call) }

// WithRegistry makes a server announce its services in reg while it serves,
// and a client (NewClient) discover instances there. Default: none.
func WithRegistry(reg registry.Registry) Option {
	return sharedOption{
		s: func(o *serverOptions) { o.registry = reg },
		c: func(o *clientOptions) { o.registry = reg },
	}
}

// WithTLS serves or dials over TLS with cfg. A server config that sets
// ClientAuth to tls.RequireAndVerifyClientCert asks for mutual TLS; a client
// config then needs Certificates. Default: plain TCP.
func WithTLS(cfg *tls.Config) Option {
	return sharedOption{
		s: func(o *serverOptions) { o.tls = cfg },
		c: func(o *clientOptions) { o.tls = cfg },
	}
}

// WithLogger sets where background goroutines report what they cannot
// return (a dropped connection, a handler panic). Default: discard.
func WithLogger(l *slog.Logger) Option {
	return sharedOption{
		s: func(o *serverOptions) {
			if l != nil {
				o.logger = l
			}
		},
		c: func(o *clientOptions) {
			if l != nil {
				o.logger = l
			}
		},
	}
}

// WithMaxFrameSize sets the largest frame accepted or sent, in bytes,
// counting method, metadata and body (default 16 MiB). A call whose request
// or reply is larger fails alone with ErrTooLarge; a frame that claims more
// than twice the limit closes its connection.
func WithMaxFrameSize(n int) Option {
	return sharedOption{
		s: func(o *serverOptions) {
			if n > 0 {
				o.maxFrame = n
			}
		},
		c: func(o *clientOptions) {
			if n > 0 {
				o.maxFrame = n
			}
		},
	}
}

// WithMaxCalls caps the calls a server runs at once: total on the whole
// server (default 10000), beyond which calls are answered at once with
// ErrOverloaded, and perConn on one connection (default 256), at which the
// server stops reading that connection until a call finishes, pushing back
// on its client. The server announces perConn in its hello, so that Go
// clients put no more calls than that on one connection when they have
// others. Zero or less keeps a default.
func WithMaxCalls(total, perConn int) ServerOption {
	return serverOption(func(o *serverOptions) {
		if total > 0 {
			o.maxCalls = total
		}
		if perConn > 0 {
			o.connCalls = perConn
		}
	})
}

// WithAdaptiveLimit turns on an adaptive limit of the calls a server runs
// at once, below WithMaxCalls' total (default: off). It keeps the server
// near the concurrency it serves without a standing queue, judged by how
// much longer calls take than the same methods on a quiet server, and
// answers the calls beyond it at once with ErrOverloaded, before decoding
// their args, so that under overload the calls it takes still finish
// within their callers' timeouts. Leave it off for services whose handlers
// wait on purpose (long polls), whose slowness is not congestion.
func WithAdaptiveLimit(on bool) ServerOption {
	return serverOption(func(o *serverOptions) { o.adaptive = on })
}

// WithInstance describes the instance a server announces in the registry
// (WithRegistry) for each service it serves; inst.Service is ignored.
// inst.Addr is what clients dial (default: the listener's address, which
// must then not be unspecified such as 0.0.0.0 or [::]); inst.Weight is for
// weighted balancers (0 means 1); inst.Meta holds labels such as a version
// or a zone, which calls select with WithFilter.
func WithInstance(inst registry.Instance) ServerOption {
	inst.Service = ""
	inst.Meta = maps.Clone(inst.Meta)
	return serverOption(func(o *serverOptions) { o.instance = inst })
}

// WithCodec sets the codec a client encodes its calls with (default
// codec.Msgpack{}). Servers answer in the codec each request names.
func WithCodec(c codec.Codec) ClientOption {
	return clientOption(func(o *clientOptions) {
		if c != nil {
			o.codec = c
		}
	})
}

// WithBalancer sets how a discovering client picks an instance (default
// lb.RoundRobin()).
func WithBalancer(b lb.Balancer) ClientOption {
	return clientOption(func(o *clientOptions) {
		if b != nil {
			o.balancer = b
		}
	})
}

// WithPoolSize sets how many multiplexed connections a client keeps per
// server address at most (default 4). They are dialled lazily as load
// grows: calls spread over the first 4, and a further connection is used
// only for every 64 calls in flight (a fifth once 256 are, a sixth at
// 320, …; fewer if the server's per-connection limit of WithMaxCalls,
// which its hello announces, is lower), so that calls share system calls
// instead of paying for them one or two to a connection.
func WithPoolSize(n int) ClientOption {
	return clientOption(func(o *clientOptions) {
		if n > 0 {
			o.poolSize = n
		}
	})
}

// WithKeepalive sets how long the client lets a server stay silent
// (default 5s; zero keeps it): a dial, TLS handshake included, must
// complete within d; a connection silent for d is pinged, and one still
// silent d after the ping is declared dead, failing its pending calls (so
// a blackholed server is detected within about 2d).
func WithKeepalive(d time.Duration) ClientOption {
	return clientOption(func(o *clientOptions) {
		if d > 0 {
			o.keepalive = d
		}
	})
}

// WithIdleTimeout closes connections that carried no call for d (pings do
// not count; default 5m). A client closes such pooled connections but one
// per address. A server sends a draining frame on such a connection and
// closes it once the client acknowledges (the client redials for its next
// call, failing none) or after the drain grace.
func WithIdleTimeout(d time.Duration) Option {
	return sharedOption{
		s: func(o *serverOptions) {
			if d > 0 {
				o.idleTimeout = d
			}
		},
		c: func(o *clientOptions) {
			if d > 0 {
				o.idleTimeout = d
			}
		},
	}
}

// WithEjection sets outlier ejection: after n consecutive failed calls
// (transport errors or timeouts) an instance is skipped for base, doubling
// on each repeated ejection up to 30 base; it is then probed back. The last
// instance of a service is never ejected. n == 0 disables ejection
// (default 5 and 1s).
func WithEjection(n int, base time.Duration) ClientOption {
	return clientOption(func(o *clientOptions) {
		if n >= 0 {
			o.ejectAfter = n
		}
		if base > 0 {
			o.ejectFor = base
		}
	})
}

// WithTimeout bounds a call, from its start to its reply, in every call
// style; the server's handler sees the deadline in its ctx and is cancelled
// when it passes. Zero means no timeout (the default).
func WithTimeout(d time.Duration) CallOption {
	return callOption(func(o *callOptions) { o.timeout = d })
}

// WithHashKey sets the key lb.ConsistentHash routes the call by.
func WithHashKey(key string) CallOption {
	return callOption(func(o *callOptions) { o.hashKey = key })
}

// WithRetries lets an idempotent call be retried up to n times on another
// instance after a transport failure or a timeout, each attempt within what
// remains of the call's timeout, with jittered backoff (default 0). A
// ServerError is never retried. Calls whose request never reached a server
// are retried regardless.
func WithRetries(n int) CallOption {
	return callOption(func(o *callOptions) {
		if n >= 0 {
			o.retries = n
		}
	})
}

// WithHedge sends a backup request to another instance if no reply came
// within after; the first reply wins and the other request is cancelled.
// Use it for idempotent calls only. Zero disables hedging (the default).
func WithHedge(after time.Duration) CallOption {
	return callOption(func(o *callOptions) { o.hedge = after })
}

// WithFilter routes calls only to instances whose metadata has key=val,
// e.g. WithFilter("version", "v2"). Several filters must all match.
func WithFilter(key, val string) CallOption {
	return callOption(func(o *callOptions) {
		m := maps.Clone(o.filter) // the default's map is shared by every call
		if m == nil {
			m = make(map[string]string, 1)
		}
		m[key] = val
		o.filter = m
	})
}

// WithHeader sends a metadata key/value with the call; the handler reads it
// with HeaderFromContext, a server interceptor in Request.Header.
func WithHeader(key, val string) CallOption {
	return callOption(func(o *callOptions) {
		o.meta = append(o.meta[:len(o.meta):len(o.meta)], metaPair{key, val})
	})
}

// WithMaxBufferedBytes bounds the payload bytes held in buffers, frames
// being read included (default 256 MiB): on a server for requests, on a
// client for replies. Buffers grow as bytes arrive, so a header that claims
// much costs nothing until the bytes come. At the bound the reader of a
// connection that needs more stops reading it (its peer feels
// backpressure) while frames of up to 64 KiB, which may use the last
// eighth, go on. Zero or less keeps the default.
func WithMaxBufferedBytes(n int) Option {
	return sharedOption{
		s: func(o *serverOptions) {
			if n > 0 {
				o.maxBuffered = int64(n)
			}
		},
		c: func(o *clientOptions) {
			if n > 0 {
				o.maxBuffered = int64(n)
			}
		},
	}
}

// WithReadTimeout bounds how long a server waits for the rest of a frame
// whose first byte has arrived, and for a TLS handshake (default 30s); the
// connection is closed when it passes, so a client that trickles bytes
// (slowloris) holds nothing for long. The time between frames is the idle
// timeout's business. Zero or less keeps the default.
func WithReadTimeout(d time.Duration) ServerOption {
	return serverOption(func(o *serverOptions) {
		if d > 0 {
			o.readTimeout = d
		}
	})
}

// WithMaxConns caps the connections a server serves at once (default
// 10000): a connection accepted beyond n is closed at once. A burst of
// such refusals is logged once, not per connection. Zero or less keeps the
// default.
func WithMaxConns(n int) ServerOption {
	return serverOption(func(o *serverOptions) {
		if n > 0 {
			o.maxConns = n
		}
	})
}
