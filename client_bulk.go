package rpc

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Large requests go on a connection of their own (docs/PROTOCOL.md,
// section 21): a request whose encoded body is at least bulkMin bytes is
// written on its address's bulk connection instead of the pooled one its
// call picked. Chunking (chunks.go) lets small frames pass
// between the chunks the process writes, but not the megabytes the
// kernel's socket buffers already hold, which nothing can overtake; a
// connection that carries only large calls keeps those bytes away from the
// small ones. The bulk connection is dialled on the first large call, is
// not counted in the pool size, is shared by concurrent large calls (whose
// chunks interleave there; a second one is dialled while the first is
// busy, up to maxBulkConns and the pool size), and is closed after
// bulkIdleTimeout without a call, or with the client. Its replies come back on it, so an echo of a
// large body does not touch the pooled connections at all.
//
// Large replies: a method that once answered with a reply of at least
// bulkMin bytes (a download: small request, large reply) has its later
// requests sent on the bulk connection too, since a reply comes back on the
// connection its request went out on. The client learns this per method
// and never forgets it; a method whose replies are sometimes small has
// those wait behind the large transfers on the bulk connection, not the
// calls of other methods on the pooled ones. Until the first large reply of
// any method, the check costs one atomic load per call.
//
// When no bulk connection can be had (its dial failed or is backing off,
// the server did not answer its hello in time), the request goes on the
// pooled connection, as before: a large call never fails for want of an
// extra connection, and the bulk connection's troubles never mark the
// address's pool as suspect or back off its dials (the bulk connection's
// pool keeps its own).

const (
	// bulkMin is the smallest encoded request body that goes on the bulk
	// connection: well above chunkSize, so that only transfers that would
	// fill the socket buffers pay for a connection of their own (measured
	// in docs/BENCHMARKS.md, "Head-of-line blocking").
	bulkMin = 1 << 20
	// bulkIdleTimeout is how long a bulk connection without a call stays
	// open at most (WithIdleTimeout shortens it): it holds megabytes of
	// socket buffers.
	bulkIdleTimeout = 30 * time.Second
	// maxBulkConns is how many bulk connections an address gets at most: a
	// second is dialled, in the background, while the first carries a
	// call, so that two large calls at once are read and written in
	// parallel (one connection moves one chunked message per direction
	// at a time, through one reader goroutine on each side).
	maxBulkConns = 2
)

// bulkPool returns the pool of the address's bulk connection, creating it
// (closed if p is).
func (p *connPool) bulkPool() *connPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bulk == nil {
		p.bulk = &connPool{client: p.client, addr: p.addr, isBulk: true, closed: p.closed}
	}
	return p.bulk
}

// bulkConn returns the connection a large request to p's address goes on:
// the bulk connection, dialled if need be and once its server answered the
// hello (so that its features are known and a server that refused it at
// accept is not written to), or shared when there is none to be had. It
// waits at most until ctx ends, the deadline (zero: none) or the keepalive
// interval passes.
func (p *connPool) bulkConn(ctx context.Context, deadline time.Time, shared *clientConn) *clientConn {
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	b := p.bulkPool()
	cc, err := b.getConn(ctx, false)
	if err != nil {
		p.client.opts.logger.Debug("rpc: no bulk connection; a large request goes on a pooled one", "addr", p.addr, "err", err)
		return shared
	}
	select {
	case <-cc.hello:
	default:
		t := time.NewTimer(p.client.opts.keepalive)
		defer t.Stop()
		select {
		case <-cc.hello:
		case <-ctx.Done():
			return shared // its write fails at once too
		case <-t.C:
			p.client.opts.logger.Debug("rpc: bulk connection unanswered; a large request goes on a pooled one", "addr", p.addr)
			return shared
		}
	}
	if cc.dead.Load() {
		// Closed before it answered: a server at its connection limit
		// (WithMaxConns) closes it at accept. Back off as from a failed
		// dial, not to dial one per large call.
		// (Concurrent waiters each count it: the backoff grows faster.)
		b.mu.Lock()
		b.refusals++
		backoff := min(50*time.Millisecond<<min(b.refusals-1, 10), 5*time.Second)
		b.nextDial = b.client.now().Add(backoff/2 + rand.N(backoff/2+1))
		b.lastErr = errBulkRefused
		b.mu.Unlock()
		return shared
	}
	if cc.draining.Load() {
		return shared
	}
	b.mu.Lock()
	b.refusals = 0
	b.mu.Unlock()
	return cc
}

// errBulkRefused is why a bulk connection is backing off after the server
// closed the last one before answering its hello.
var errBulkRefused = errors.New("bulk connection closed by the server before it answered")

// noteLargeReply records that method answered with a large reply: its
// later requests go on the bulk connection.
func (c *Client) noteLargeReply(method string) {
	if _, ok := c.largeReplies.Load(method); !ok {
		c.largeReplies.Store(method, struct{}{})
		c.anyLargeReply.Store(true)
	}
}

// repliesLarge reports whether method once answered with a large reply.
func (c *Client) repliesLarge(method string) bool {
	_, ok := c.largeReplies.Load(method)
	return ok
}

// size is how many connections p holds at most: the pool size, or for
// bulk connections at most maxBulkConns.
func (p *connPool) size() int {
	if p.isBulk {
		return min(p.client.opts.poolSize, maxBulkConns)
	}
	return p.client.opts.poolSize
}

// idleAfter is how long a connection of p may go without a call before
// the health check closes it.
func (p *connPool) idleAfter() time.Duration {
	if p.isBulk {
		return min(p.client.opts.idleTimeout, bulkIdleTimeout)
	}
	return p.client.opts.idleTimeout
}

// bulkPoolIfAny returns the pool of p's bulk connection, nil if no large
// call was made.
func (p *connPool) bulkPoolIfAny() *connPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bulk
}

// helloDone marks the server's hello answered (or the connection ended):
// large requests waiting for the connection go ahead. Only the reader
// calls it.
func (cc *clientConn) helloDone() {
	select {
	case <-cc.hello:
	default:
		close(cc.hello)
	}
}
