package middleware

import (
	"container/list"
	"context"
	"fmt"
	"net/netip"
	"path"
	"sync"

	rpc "github.com/seedrpc/rpc"
	"golang.org/x/time/rate"
)

// RateLimitOption configures RateLimit.
type RateLimitOption func(*rateConfig)

type rateConfig struct {
	maxPeers  int // buckets kept with PerPeer; 0: one bucket per method for all peers
	overrides []methodRate
}

type methodRate struct {
	pattern string
	limit   rate.Limit
	burst   int
}

// PerPeer gives every peer IP address its own bucket per method, so that
// one busy client cannot use up the others' share. At most maxBuckets
// (peer, method) buckets are kept: beyond that the least recently used is
// dropped (its peer starts again with a full bucket). maxBuckets <= 0
// keeps the default, one bucket per method shared by all peers. Peers that
// are not IP addresses share one bucket per method.
func PerPeer(maxBuckets int) RateLimitOption {
	return func(c *rateConfig) { c.maxPeers = maxBuckets }
}

// ForMethods sets another rate and burst for the methods matching pattern
// ("Service.Method" in path.Match syntax, as in Rule); the first matching
// ForMethods wins over RateLimit's own rate.
func ForMethods(pattern string, r rate.Limit, burst int) RateLimitOption {
	return func(c *rateConfig) { c.overrides = append(c.overrides, methodRate{pattern, r, burst}) }
}

// RateLimit returns an interceptor that admits calls to each method at r
// per second with bursts of burst (a token bucket, golang.org/x/time/rate;
// rate.Inf admits everything, a burst of 0 nothing). A call over the limit
// fails at once, before its args are decoded, with an error matching
// rpc.ErrOverloaded: the client takes it as "did not run" and retries
// another instance. A malformed ForMethods pattern matches nothing.
func RateLimit(r rate.Limit, burst int, opts ...RateLimitOption) rpc.ServerInterceptor {
	cfg := rateConfig{}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return newLimiter(r, burst, cfg).intercept
}

func newLimiter(r rate.Limit, burst int, cfg rateConfig) *limiter {
	l := &limiter{cfg: cfg, limit: r, burst: burst, methods: make(map[string]*rate.Limiter)}
	if cfg.maxPeers > 0 {
		l.peers = make(map[peerKey]*list.Element)
		l.lru = list.New()
	}
	return l
}

// intercept is the interceptor.
func (l *limiter) intercept(ctx context.Context, req *rpc.Request, next rpc.Handler) (any, error) {
	if !l.bucket(req).Allow() {
		return nil, fmt.Errorf("%w: %s from %s: rate limit exceeded", rpc.ErrOverloaded, req.ServiceMethod, req.Peer)
	}
	return next(ctx, req)
}

// limiter holds the buckets of one RateLimit.
type limiter struct {
	cfg   rateConfig
	limit rate.Limit
	burst int

	mu sync.Mutex // guards the fields below
	// methods holds the shared bucket of each method; methods are only
	// those the server has, so it is bounded.
	methods map[string]*rate.Limiter
	// peers and lru hold the per-peer buckets, most recently used first.
	peers map[peerKey]*list.Element
	lru   *list.List
}

type peerKey struct {
	method string
	ip     netip.Addr
}

type peerBucket struct {
	key peerKey
	lim *rate.Limiter
}

// bucket returns the token bucket req draws from.
func (l *limiter) bucket(req *rpc.Request) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peers == nil {
		b := l.methods[req.ServiceMethod]
		if b == nil {
			b = l.newBucket(req.ServiceMethod)
			l.methods[req.ServiceMethod] = b
		}
		return b
	}
	ip, _ := peerIP(req.Peer) // the zero Addr for all non-IP peers
	k := peerKey{req.ServiceMethod, ip}
	if e := l.peers[k]; e != nil {
		l.lru.MoveToFront(e)
		return e.Value.(*peerBucket).lim
	}
	if l.lru.Len() >= l.cfg.maxPeers {
		old := l.lru.Back()
		l.lru.Remove(old)
		delete(l.peers, old.Value.(*peerBucket).key)
	}
	b := &peerBucket{key: k, lim: l.newBucket(req.ServiceMethod)}
	l.peers[k] = l.lru.PushFront(b)
	return b.lim
}

// newBucket makes a full bucket for method.
func (l *limiter) newBucket(method string) *rate.Limiter {
	for _, o := range l.cfg.overrides {
		if ok, _ := path.Match(o.pattern, method); ok {
			return rate.NewLimiter(o.limit, o.burst)
		}
	}
	return rate.NewLimiter(l.limit, l.burst)
}
