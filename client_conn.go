package rpc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// clientConn is one multiplexed connection to a server: a reader goroutine
// matches responses to pending calls by sequence number; callers write
// through a coalescing writer. When the reader exits it fails every pending
// call with the first terminal error.
type clientConn struct {
	pool *connPool
	nc   net.Conn
	br   *bufio.Reader
	fr   frameReader // reads large replies
	// hb holds the header being read, by whoever holds the read role (a
	// field, not a local: a caller reading its own response would
	// otherwise allocate it on every call).
	hb  [wire.HeaderSize]byte
	w   *wire.Writer
	seq atomic.Uint64
	// draining is set when the server sent a draining frame: no new calls.
	draining atomic.Bool
	// dead is set as soon as the connection failed, before its pending
	// calls are failed, so that their retries never pick it again.
	dead atomic.Bool
	// peerS2 and peerChunks are set once the server's hello said it
	// accepts compressed bodies and continuation frames.
	peerS2, peerChunks atomic.Bool
	// parts are the chunked responses being reassembled (reader only);
	// chunkSem holds a slot per chunked request being written.
	parts    partials
	chunkSem chan struct{}
	// hello is closed once the server answered the client's hello, or the
	// reader ended (client_bulk.go).
	hello chan struct{}
	// suspect is set when a sibling connection to the same address broke
	// abruptly, or when this one was dialled since: no new calls go here
	// until the server answers the ping sent then (probe is its sequence
	// number). A response read meanwhile proves nothing: the server may
	// have written it before it died.
	suspect atomic.Bool
	probe   atomic.Uint64
	// recvd is set by the reader on every frame and cleared by the health
	// check, which pings a connection that stayed silent.
	recvd atomic.Bool
	// pingSent is when the outstanding ping went out (unix ns), 0 if none.
	pingSent atomic.Int64
	// lastUsed is when a call last started here (unix ns), for idle trimming.
	lastUsed atomic.Int64
	// load counts pending calls, read without the lock to pick the least busy.
	load atomic.Int32
	// sr is the read role a lone caller may take (client_selfread.go).
	sr selfRead

	mu sync.Mutex // guards pending, err
	// pending maps sequence numbers to calls awaiting a response.
	pending map[uint64]*attempt
	// err is set once the connection is dead; no call may be added after.
	err error
}

func newClientConn(p *connPool, nc net.Conn) *clientConn {
	cc := &clientConn{
		pool:    p,
		nc:      nc,
		br:      bufio.NewReaderSize(nc, 32<<10),
		w:       wire.NewConnWriter(nc, 2*p.client.opts.keepalive),
		pending: make(map[uint64]*attempt),
	}
	limitUnsent(nc, unsentLimit)
	cc.w.YieldWhen(cc.othersPending)
	cc.chunkSem = make(chan struct{}, maxPartials)
	cc.hello = make(chan struct{})
	cc.fr = frameReader{br: cc.br, maxFrame: p.client.opts.maxFrame, budget: p.client.budget,
		done: p.client.stop, closed: cc.dead.Load}
	cc.lastUsed.Store(time.Now().UnixNano())
	return cc
}

// usable reports whether new calls may go here.
func (cc *clientConn) usable() bool {
	return !cc.draining.Load() && !cc.dead.Load() && !cc.suspect.Load()
}

// readLoop is the connection's reader goroutine.
func (cc *clientConn) readLoop() {
	if cc.suspect.Load() {
		cc.probePing() // dialled while the address was suspect
	}
	err := cc.read(nil)
	cc.parts.releaseAll()
	if !cc.dead.Load() && !cc.draining.Load() {
		// The server went away without a word (crash, reset): its other
		// connections are likely gone too. Route new calls elsewhere until
		// they answer a ping.
		cc.pool.suspectAll(cc)
	}
	cc.fail(err)
	cc.helloDone() // once dead: a waiter sees it
	cc.w.Wait()
	cc.pool.remove(cc)
}

// read reads frames: on the reader goroutine (self nil), or on a caller's
// that holds the read role until its request is answered (client_selfread.go).
func (cc *clientConn) read(self *selfReader) error {
	opts := &cc.pool.client.opts
	hb := &cc.hb
	for {
		if self != nil && !cc.next(self) {
			return nil
		}
		if _, err := io.ReadFull(cc.br, hb[:]); err != nil {
			return err
		}
		cc.recvd.Store(true)
		cc.pingSent.Store(0)
		h, err := wire.ParseHeader(hb[:], hardLimit(opts.maxFrame))
		if err == nil && h.Type != wire.TypeResponse && h.PayloadLen() > opts.maxFrame {
			err = fmt.Errorf("%w: %s frame of %d bytes (max %d)", wire.ErrTooLarge, h.Type, h.PayloadLen(), opts.maxFrame)
		}
		if err != nil {
			opts.logger.Warn("rpc: closing connection: bad frame", "addr", cc.pool.addr, "err", err)
			return err
		}
		switch h.Type {
		case wire.TypeResponse:
			// The call of a chunked response stays pending until its last
			// frame (see continuation).
			more := h.Codec&wire.FlagMore != 0
			cc.mu.Lock()
			a := cc.pending[h.Seq]
			if a != nil && !more {
				delete(cc.pending, h.Seq)
				cc.load.Add(-1)
			}
			cc.mu.Unlock()
			n := h.PayloadLen()
			if more {
				if err := cc.parts.start(&cc.fr, &h, a == nil || n > opts.maxFrame); err != nil {
					return err
				}
				continue
			}
			if a == nil || n > opts.maxFrame { // nobody waits (timed out, cancelled), or too large
				if _, err := cc.br.Discard(n); err != nil {
					if a != nil {
						a.failed(err, true)
					}
					return err
				}
				if a != nil {
					a.completed(wire.StatusTooLarge, nil, fmt.Appendf(nil, "rpc: reply of %d bytes exceeds the client's frame limit of %d", n, opts.maxFrame))
				}
				continue
			}
			if h.Codec&wire.CompressMask != 0 {
				if err := cc.readCompressed(a, &h); err != nil {
					return err
				}
				continue
			}
			if n <= cc.br.Size() {
				body, err := cc.br.Peek(n)
				if err != nil {
					a.failed(err, true)
					return err
				}
				a.completed(h.Status, body[int(h.MethodLen):int(h.MethodLen)+int(h.MetaLen)], body[int(h.MethodLen)+int(h.MetaLen):])
				cc.br.Discard(n)
				if cc.draining.Load() {
					cc.closeIfIdle()
				}
				if err := cc.afterResponse(self); err != nil {
					return err
				}
				continue
			}
			fb, err := cc.fr.payload(n)
			if err != nil {
				a.failed(err, true)
				return err
			}
			a.completed(h.Status, fb.b[int(h.MethodLen):int(h.MethodLen)+int(h.MetaLen)], fb.b[int(h.MethodLen)+int(h.MetaLen):])
			fb.release()
			if cc.draining.Load() {
				cc.closeIfIdle()
			}
		case wire.TypeContinuation:
			if err := cc.continuation(&h); err != nil {
				return err
			}
		case wire.TypePing:
			if _, err := cc.br.Discard(h.PayloadLen()); err != nil {
				return err
			}
			_ = cc.w.WriteControl(wire.TypePong, h.Seq)
		case wire.TypePong:
			if err := cc.pong(&h); err != nil {
				return err
			}
			if h.Seq != 0 && h.Seq == cc.probe.Load() {
				cc.pool.proved(cc)
			}
		case wire.TypeDraining:
			if _, err := cc.br.Discard(h.PayloadLen()); err != nil {
				return err
			}
			cc.draining.Store(true)
			_ = cc.w.WriteControl(wire.TypeDraining, 0) // acknowledge: we send no more
			if h.Status != wire.StatusIdle {
				// Shutting down (idle: only this connection goes).
				cc.pool.client.onDraining(cc.pool.addr)
			}
			cc.closeIfIdle()
		default:
			opts.logger.Warn("rpc: closing connection: unexpected frame from server", "addr", cc.pool.addr, "type", h.Type)
			return fmt.Errorf("%w: unexpected %s frame from server", wire.ErrMalformed, h.Type)
		}
	}
}

// closeIfIdle closes a draining connection that has no call pending.
func (cc *clientConn) closeIfIdle() {
	if cc.draining.Load() {
		cc.closeIdle(errDrained)
	}
}

// closeIdle closes the connection if no call is pending, so that no call
// fails: a call that picked it meanwhile finds it closed when it registers,
// before anything was sent, and goes elsewhere. It reports whether it closed.
func (cc *clientConn) closeIdle(reason error) bool {
	cc.mu.Lock()
	if len(cc.pending) > 0 || cc.err != nil {
		cc.mu.Unlock()
		return false
	}
	cc.err = reason
	cc.dead.Store(true)
	cc.mu.Unlock()
	cc.nc.Close()
	return true
}

// Reasons a connection was closed while idle. They only appear wrapped in
// a call's error, which carries the "rpc: " prefix.
var (
	errDrained = errors.New("connection closed after the server drained it")
	errIdle    = errors.New("idle connection closed")
)

// fail marks the connection dead and fails every pending call. A call
// whose request the connection's writer had not handed to the kernel whole
// never reached the server: it fails as unsent, so it goes elsewhere.
func (cc *clientConn) fail(err error) {
	cc.dead.Store(true)
	cc.nc.Close()
	cc.pool.remove(cc)
	cc.mu.Lock()
	if cc.err == nil {
		cc.err = err
	}
	pending := cc.pending
	cc.pending = nil
	cc.load.Store(0)
	cc.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	written := cc.w.Settle() // final: the connection is closed
	for _, a := range pending {
		end := a.wend.Swap(wendClaimed)
		if end == 0 {
			continue // its sender is still writing; it decides (writeRequest)
		}
		a.failed(err, end <= written)
	}
}

// failure returns the error the connection failed with.
func (cc *clientConn) failure() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

// Values of attempt.wend besides a request's end in its connection's
// stream (see fail and writeRequest).
const (
	// wendClaimed: the connection failed before the sender recorded where
	// its request ends; the sender fails the attempt.
	wendClaimed = -1
	// wendNone: the request never entered the stream.
	wendNone = math.MaxInt64
)

// settled reports whether a request that ends at end in the stream reached
// the kernel whole, once the connection has failed.
func (cc *clientConn) settled(end int64) bool {
	return end != wendNone && end <= cc.w.Settle()
}

// register adds a to the pending map under a new sequence number.
func (cc *clientConn) register(a *attempt) (uint64, error) {
	seq := cc.seq.Add(1)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil {
		return 0, cc.err
	}
	cc.pending[seq] = a
	cc.load.Add(1)
	return seq, nil
}

// unregister removes seq; it reports whether it was still pending (nobody
// else has completed or failed it).
func (cc *clientConn) unregister(seq uint64) bool {
	cc.mu.Lock()
	_, ok := cc.pending[seq]
	if ok {
		delete(cc.pending, seq)
		cc.load.Add(-1)
	}
	cc.mu.Unlock()
	if ok && cc.draining.Load() {
		cc.closeIfIdle()
	}
	return ok
}

// cancel abandons request seq and tells the server to cancel its handler.
func (cc *clientConn) cancel(seq uint64) {
	if cc.unregister(seq) {
		_ = cc.w.WriteControl(wire.TypeCancel, seq)
	}
}

// probePing sends a ping whose pong clears the connection's suspicion.
func (cc *clientConn) probePing() {
	seq := cc.seq.Add(1)
	cc.probe.Store(seq)
	cc.pingSent.Store(time.Now().UnixNano())
	_ = cc.w.WriteControl(wire.TypePing, seq)
}

// ping sends a keepalive ping.
func (cc *clientConn) ping() {
	cc.pingSent.Store(time.Now().UnixNano())
	_ = cc.w.WriteControl(wire.TypePing, 0)
}
