package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// connPool holds up to opts.poolSize multiplexed connections to one
// address. A call goes to the least busy of the first few connections, as
// many as the calls pending need (spreadConns, packDepth); another is
// dialled, in the background, only while all those are busy. Failed dials
// back off exponentially with jitter.
type connPool struct {
	client *Client
	addr   string

	mu sync.Mutex // guards the fields below
	// conns are the live connections.
	conns []*clientConn
	// dialDone is not nil while a dial is in progress, and closed when it
	// ends.
	dialDone chan struct{}
	// failures counts consecutive failed dials; nextDial is when the next may start.
	failures int
	nextDial time.Time
	lastErr  error
	closed   bool
	// suspect is set when a connection broke abruptly (the server may be
	// dead, its other connections not yet reset) and cleared when a
	// connection answers a ping sent since. Meanwhile connections dialled
	// are suspect too (a dying server's kernel still completes handshakes),
	// and calls that can go elsewhere do.
	suspect bool

	// schema holds the schema checks' verdicts for this address; a lost
	// connection clears it (the server may have restarted).
	schema schemaCache

	// bulk is the pool of the address's bulk connection (client_bulk.go),
	// nil until a large request; guarded by mu. isBulk is set on that
	// pool, whose refusals counts, under mu, its connections in a row that
	// the server closed before they answered.
	bulk     *connPool
	isBulk   bool
	refusals int

	// connCalls is the server's limit of calls per connection, as its
	// hello said (0: not said); packing stays under it.
	connCalls atomic.Int32
}

// errSuspect is why a call that could go to another instance did not use
// an address whose connection just broke: it fails before sending and is
// routed elsewhere.
var errSuspect = errors.New("a connection broke abruptly; the address is avoided until it answers a ping")

// ready returns a usable connection without waiting (see leastBusy), or
// nil. When the calls in flight need another connection it dials one in
// the background, up to the pool size.
func (p *connPool) ready() *clientConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	return p.leastBusy()
}

// get returns a usable connection, dialling one (bounded by ctx and the
// keepalive interval) when there is none, or joining the dial in progress.
func (p *connPool) get(ctx context.Context) (*clientConn, error) { return p.getConn(ctx, false) }

// getConn is get for a call that, if canSkip, may go to another instance:
// while the address is suspect it fails at once with errSuspect (starting
// a dial that will probe the address if no connection is left to).
// Otherwise a suspect connection is still better than none.
func (p *connPool) getConn(ctx context.Context, canSkip bool) (*clientConn, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrShutdown
		}
		if cc := p.leastBusy(); cc != nil {
			p.mu.Unlock()
			return cc, nil
		}
		if p.suspect {
			if canSkip {
				if len(p.conns) == 0 && p.dialDone == nil && !p.client.now().Before(p.nextDial) {
					p.dialDone = make(chan struct{})
					if !p.client.goAsync(func() { p.dial(p.client.ctx) }) {
						close(p.dialDone)
						p.dialDone = nil
					}
				}
				p.mu.Unlock()
				return nil, fmt.Errorf("%s: %w", p.addr, errSuspect)
			}
			if cc := p.leastBusySuspect(); cc != nil {
				p.mu.Unlock()
				return cc, nil
			}
		}
		if done := p.dialDone; done != nil {
			p.mu.Unlock()
			select {
			case <-done:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("dial %s: %w", p.addr, ctx.Err())
			}
		}
		if wait := p.nextDial.Sub(p.client.now()); wait > 0 {
			err := p.lastErr
			p.mu.Unlock()
			return nil, fmt.Errorf("dial %s: backing off for %v after: %w", p.addr, wait.Round(time.Millisecond), err)
		}
		p.dialDone = make(chan struct{})
		p.mu.Unlock()
		return p.dial(ctx)
	}
}

// How calls share a pool's connections: the least busy of the first
// spreadConns connections (in dial order) takes a call, as in a pool of
// that size; a further connection is used only for every packDepth calls
// in flight (a fifth once 256 are, a sixth at 320, …), or for fewer if the
// server's limit of calls per connection is lower: it reads no more from a
// connection at its limit.
//
// Calls that share a connection share its system calls: the client's
// writer sends the requests queued while it writes in one write, the
// server reads them in one read, runs them in turn and answers them in one
// write (server_inline.go), and the client's reader reads their responses
// together. Spread one or two to a connection, every call pays its four
// system calls, and the goroutine wake-ups behind them, alone on both
// sides. A few connections are still worth having: each has a reading
// goroutine on either side, so that calls are read and answered in
// parallel. Measured with the harness and a pool of 10 (docs/BENCHMARKS.md,
// "Issue 15, fifth step"): at 16 callers, 4 connections with 4 calls each
// instead of 10 with one or two cut the CPU per call of client and server
// together by about a quarter and raised calls/s by about a third, and
// one connection for all calls cost a quarter of calls/s at 4 callers; at
// 32, 64 and 128 callers, a depth of 16 instead of 4 raised calls/s by
// 10 to 25 %, and at 128 and 256 callers a depth of 64 instead of 16 by
// another 10 to 15 %. A connection's calls do not wait for one another:
// they are multiplexed, a server runs a call on the goroutine that read it
// only if its method is quick, and large messages are chunked or go on the
// bulk connection.
const (
	spreadConns = 4
	packDepth   = 64
)

// leastBusy returns the connection a call should use, or nil: the least
// busy of the first usable ones, as many as the calls pending need (see
// spreadConns). When that one is busy and the pool has fewer connections
// than needed, it starts a background dial; p.mu is held.
func (p *connPool) leastBusy() *clientConn {
	var pending int32
	usable := 0
	for _, cc := range p.conns {
		if cc.usable() {
			usable++
			pending += cc.load.Load()
		}
	}
	want := int(pending) + 1 // bulk connections: one per large call
	if !p.isBulk {
		depth := int32(packDepth)
		if n := p.connCalls.Load(); n > 0 && n < depth {
			// The server reads no more from a connection at its limit:
			// stay a quarter under it, so that the calls made while
			// another connection is dialled still fit.
			depth = max(n-n/4, 1)
		}
		want = max(spreadConns, int((pending+1)/depth)+1)
	}
	var best *clientConn
	var bestLoad int32
	seen := 0
	for _, cc := range p.conns {
		if seen == want {
			break
		}
		if !cc.usable() {
			continue
		}
		seen++
		if l := cc.load.Load(); best == nil || l < bestLoad {
			best, bestLoad = cc, l
		}
	}
	if best != nil && bestLoad > 0 && usable < want && len(p.conns) < p.size() && p.dialDone == nil && !p.client.now().Before(p.nextDial) {
		p.dialDone = make(chan struct{})
		if !p.client.goAsync(func() { p.dial(p.client.ctx) }) {
			close(p.dialDone) // the client is closing
			p.dialDone = nil
		}
	}
	return best
}

// leastBusySuspect returns the live suspect connection with the fewest
// pending calls, or nil; p.mu is held.
func (p *connPool) leastBusySuspect() *clientConn {
	var best *clientConn
	for _, cc := range p.conns {
		if cc.draining.Load() || cc.dead.Load() {
			continue
		}
		if best == nil || cc.load.Load() < best.load.Load() {
			best = cc
		}
	}
	return best
}

// dial opens one connection and adds it to the pool; p.dialDone is set and
// is closed when dial returns.
func (p *connPool) dial(ctx context.Context) (*clientConn, error) {
	dctx, cancel := context.WithTimeout(ctx, p.client.opts.keepalive)
	defer cancel()
	nc, err := p.client.dial(dctx, p.addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.dialDone)
	p.dialDone = nil
	if err == nil && p.closed {
		nc.Close()
		err = ErrShutdown
	}
	if err != nil && ctx.Err() != nil {
		// The caller gave up (its deadline) or the client closed, not the
		// server: no backoff.
		return nil, fmt.Errorf("dial %s: %w", p.addr, err)
	}
	if err != nil {
		p.failures++
		backoff := min(50*time.Millisecond<<min(p.failures-1, 10), 5*time.Second)
		backoff = backoff/2 + rand.N(backoff/2+1) // jitter
		p.nextDial = p.client.now().Add(backoff)
		p.lastErr = err
		return nil, fmt.Errorf("dial %s: %w", p.addr, err)
	}
	cc := newClientConn(p, nc)
	if p.suspect {
		cc.suspect.Store(true) // its reader probes it
	}
	if !p.client.goAsync(cc.readLoop) {
		nc.Close() // the client is closing
		return nil, ErrShutdown
	}
	_ = cc.w.WriteHello(helloFrame) // a failed write fails the reader too
	p.failures = 0
	p.nextDial = time.Time{}
	p.conns = append(p.conns, cc)
	return cc, nil
}

// remove drops a dead connection.
func (p *connPool) remove(cc *clientConn) {
	p.schema.reset()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.conns {
		if c == cc {
			// A new slice: check and close iterate over copies of the old one.
			p.conns = append(p.conns[:i:i], p.conns[i+1:]...)
			return
		}
	}
}

// suspectAll marks the address and every connection but broken as
// suspect, and probes each connection with a ping.
func (p *connPool) suspectAll(broken *clientConn) {
	p.mu.Lock()
	p.suspect = true
	conns := slices.Clone(p.conns)
	p.mu.Unlock()
	for _, cc := range conns {
		if cc != broken {
			// Probe again even if suspect already: a pong to an older
			// ping proves nothing about this break.
			cc.suspect.Store(true)
			cc.probePing()
		}
	}
}

// proved clears the suspicion of cc, which answered its probe, and of the
// address: the server is alive. Its other suspect connections stay so
// until they answer too.
func (p *connPool) proved(cc *clientConn) {
	p.mu.Lock()
	p.suspect = false
	p.mu.Unlock()
	cc.suspect.Store(false)
}

// check pings silent connections, closes those that stayed silent after a
// ping, and trims idle ones. The client's health loop calls it.
func (p *connPool) check(now time.Time) {
	o := &p.client.opts
	p.mu.Lock()
	conns := slices.Clone(p.conns)
	p.mu.Unlock()
	kept := 0
	for _, cc := range conns {
		if cc.recvd.Swap(false) {
			kept++
			if (kept > 1 || p.isBulk) && now.Sub(time.Unix(0, cc.lastUsed.Load())) > p.idleAfter() {
				cc.closeIdle(errIdle)
			}
			continue
		}
		if sent := cc.pingSent.Load(); sent != 0 {
			if now.Sub(time.Unix(0, sent)) >= o.keepalive {
				o.logger.Warn("rpc: connection unresponsive; closing", "addr", p.addr, "silent_for", now.Sub(time.Unix(0, sent)))
				cc.fail(fmt.Errorf("connection to %s unresponsive for %v", p.addr, now.Sub(time.Unix(0, sent)).Round(time.Millisecond)))
			}
			continue
		}
		cc.ping()
		kept++
	}
	if b := p.bulkPoolIfAny(); b != nil {
		b.check(now)
	}
}

// close closes every connection; their readers fail the pending calls.
func (p *connPool) close() {
	p.mu.Lock()
	p.closed = true
	conns := slices.Clone(p.conns)
	bulk := p.bulk
	p.mu.Unlock()
	for _, cc := range conns {
		cc.fail(ErrShutdown)
	}
	if bulk != nil {
		bulk.close()
	}
}

// dialer opens a connection to addr, over TLS when configured.
func (c *Client) dialer(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{KeepAlive: 15 * time.Second}
	if c.opts.tls != nil {
		td := tls.Dialer{NetDialer: &d, Config: c.opts.tls}
		return td.DialContext(ctx, c.network, addr)
	}
	return d.DialContext(ctx, c.network, addr)
}
