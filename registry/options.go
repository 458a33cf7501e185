package registry

import (
	"log/slog"
	"time"
)

const (
	defaultTTL       = 10 * time.Second
	defaultPrefix    = "seedrpc"
	defaultOpTimeout = 2 * time.Second
	maxResync        = 30 * time.Second
)

// Option configures NewRedis and NewMemory.
type Option interface {
	apply(*options)
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	ttl       time.Duration
	heartbeat time.Duration
	resync    time.Duration
	opTimeout time.Duration
	prefix    string
	logger    *slog.Logger
}

func defaultOptions() options {
	return options{ttl: defaultTTL, prefix: defaultPrefix}
}

// newOptions applies opts over the defaults and fills in the values that
// derive from the TTL.
func newOptions(opts []Option) options {
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	if o.ttl <= 0 {
		o.ttl = defaultTTL
	}
	if o.heartbeat <= 0 || o.heartbeat >= o.ttl {
		o.heartbeat = o.ttl / 3
	}
	if o.resync <= 0 {
		o.resync = min(o.ttl/2, maxResync)
	}
	if o.opTimeout <= 0 {
		o.opTimeout = defaultOpTimeout
	}
	if o.prefix == "" {
		o.prefix = defaultPrefix
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// WithTTL sets how long an instance stays registered after its last
// heartbeat (default 10s; zero or negative means the default). An instance
// whose server died disappears from Lookup within one TTL.
func WithTTL(d time.Duration) Option {
	return optionFunc(func(o *options) { o.ttl = d })
}

// WithHeartbeat sets how often a registered instance's TTL is refreshed
// (default TTL/3; zero, negative or not below the TTL means TTL/3). Keep it
// well inside the TTL so one lost heartbeat does not expire the instance.
func WithHeartbeat(d time.Duration) Option {
	return optionFunc(func(o *options) { o.heartbeat = d })
}

// WithResync sets how often a watcher re-reads the full instance list even
// when no change was announced (default min(TTL/2, 30s); zero or negative
// means the default). Independently of it, a watcher also re-reads the list
// as soon as the earliest instance it knows of is due to expire, so an
// instance whose server died without deregistering (nobody announces an
// expiry) leaves watchers' lists at most moments after its TTL runs out.
func WithResync(d time.Duration) Option {
	return optionFunc(func(o *options) { o.resync = d })
}

// WithOpTimeout bounds every single call to the backing store, including the
// ones made by background heartbeats and watchers (default 2s; zero or
// negative means the default). The caller's ctx deadline applies too when it
// is earlier. For Redis the bound only holds when the go-redis client was
// created with ContextTimeoutEnabled: true; otherwise go-redis ignores
// context deadlines and waits for its own ReadTimeout (3s by default).
func WithOpTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.opTimeout = d })
}

// WithPrefix sets the key namespace (default "seedrpc"; empty means the
// default). Registries that must see each other use the same prefix.
func WithPrefix(p string) Option {
	return optionFunc(func(o *options) { o.prefix = p })
}

// WithLogger sets where background heartbeats and watchers report problems
// (default: discard; nil means the default). Calls made by the caller return
// their errors and never log.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) { o.logger = l })
}
