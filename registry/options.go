package registry

import (
	"log/slog"
	"time"
)

const (
	defaultTTL       = 10 * time.Second
	defaultPrefix    = "seedrpc"
	defaultOpTimeout = 2 * time.Second
	defaultResync    = 5 * time.Minute
	// maxPing bounds how long a silent subscription connection goes without
	// a PING that proves it alive.
	maxPing = 15 * time.Second
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
	ping      time.Duration // derived: min(resync, maxPing)
	prefix    string
	logger    *slog.Logger
	pubsub    pubsubMode // tests only: force plain pub/sub on Cluster
}

// pubsubMode selects the kind of channel on Cluster.
type pubsubMode int

const (
	pubsubAuto  pubsubMode = iota // shard channels on Cluster, plain elsewhere
	pubsubPlain                   // plain PUBLISH/SUBSCRIBE everywhere (the Redis 6 path)
)

// withPubSub forces a pub/sub mode (tests exercise the Redis 6 path on a
// Redis 7 Cluster with it).
func withPubSub(m pubsubMode) Option {
	return optionFunc(func(o *options) { o.pubsub = m })
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
		o.resync = defaultResync
	}
	o.ping = min(o.resync, maxPing)
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
// when no change was announced (default 5 min; zero or negative means the
// default; each watcher waits a random time between half of it and all of
// it, so watchers started together do not read together). It is a safety
// net: changes reach watchers as they happen, a missed one is noticed by its
// version (the expiry checks below carry it too, about once per TTL), and a
// subscription that broke is followed by a full read anyway. The subscription connection is also pinged
// after min(resync, 15s) of silence, so a dead one is found. Independently,
// when the earliest instance a watcher knows of is due to expire, the
// watcher asks Redis to prune it and announce the result to every watcher
// of the service, so an instance whose server died without deregistering
// leaves watchers' lists moments after its TTL runs out (Memory re-reads its
// list then).
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
