package rpc

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	netrpc "net/rpc"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// WithNetRPC makes Dial, DialHTTP, DialHTTPPath and NewClientConn speak
// net/rpc's own protocol (gob), to call a server that still runs net/rpc.
// The client then has one connection, as net/rpc's has: it is not
// re-dialled, and once it is lost calls fail with ErrShutdown. Calls keep
// their timeouts and all four call styles. NewClient refuses it.
func WithNetRPC() ClientOption {
	return clientOption(func(o *clientOptions) { o.netRPC = true })
}

// NewClientConn returns a client that calls over conn alone, as net/rpc's
// NewClient(conn) does: seedrpc's protocol (net/rpc's with WithNetRPC), no
// pool, no re-dial; once conn is lost, calls fail with ErrShutdown. It runs
// seedrpc over connections a program makes itself, such as the streams of a
// multiplexer. Close closes conn. A conn that is not a net.Conn has no
// deadlines: only closing it bounds its writes. Options are Dial's, except
// that a negative WithTimeout means none here, as on a call.
func NewClientConn(conn io.ReadWriteCloser, opts ...ClientOption) *Client {
	nc := asNetConn(conn)
	addr := "conn"
	if a := nc.RemoteAddr(); a != nil && a.String() != "" {
		addr = a.String()
	}
	c := newOneConnClient(addr, opts)
	if c.isClosed() {
		nc.Close()
		return c
	}
	if c.opts.netRPC {
		c.useCodec(newGobClientCodec(nc, c.opts.maxFrame, 2*c.opts.keepalive))
		return c
	}
	c.dial = func(context.Context, string) (net.Conn, error) { return nil, ErrShutdown } // lost is lost
	c.bulkMin = math.MaxUint32                                                           // and no bulk connection (client_bulk.go)
	p := c.pool(addr)
	c.staticPool = p
	cc := newClientConn(p, nc)
	p.mu.Lock()
	p.conns = append(p.conns, cc)
	p.mu.Unlock()
	if !c.wg.Go(cc.readLoop) {
		nc.Close() // not reached: nothing closed the client yet
	}
	return c
}

// NewClientWithCodec returns a client that calls through codec, as net/rpc's
// does: one connection, no pool, no re-dial; once codec fails, calls fail
// with ErrShutdown. A goroutine of the client writes the requests, so a
// call's timeout holds even while codec blocks in a write. Close closes
// codec, which should then return from the reads and writes in progress;
// Close waits for that, for a second at most. Options are as for
// NewClientConn.
func NewClientWithCodec(codec ClientCodec, opts ...ClientOption) *Client {
	c := newOneConnClient("codec", opts)
	if c.isClosed() {
		codec.Close()
		return c
	}
	c.useCodec(codec)
	return c
}

// newOneConnClient returns a client of the one server named addr, with a
// pool of one connection at most and no connection yet.
func newOneConnClient(addr string, opts []ClientOption) *Client {
	// These constructors return no error, and newClient's one error is a
	// negative timeout: here it means none, as it does on a call.
	opts = append(opts[:len(opts):len(opts)], clientOption(func(o *clientOptions) {
		o.call.timeout = max(o.call.timeout, 0)
		o.poolSize = 1
	}))
	c, err := newClient("", "", opts)
	if err != nil {
		// Not reached (see above), unless newClient learns to refuse more:
		// then a closed client, whose calls fail, rather than a nil one.
		c, _ = newClient("", "", nil)
		c.Close()
	}
	c.static = addr
	return c
}

// dialNetRPC makes the one connection of a client created with WithNetRPC.
func (c *Client) dialNetRPC() error {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.keepalive)
	defer cancel()
	nc, err := c.dial(ctx, c.static)
	if err != nil {
		return fmt.Errorf("rpc: dial %s: %w", c.static, err)
	}
	c.useCodec(newGobClientCodec(nc, c.opts.maxFrame, 2*c.opts.keepalive))
	return nil
}

// useCodec makes c call through codec, and starts its reader and writer.
func (c *Client) useCodec(codec ClientCodec) {
	cc := &codecClient{
		client:  c,
		codec:   codec,
		addr:    c.static,
		slots:   make(chan struct{}, codecQueue),
		wake:    make(chan struct{}, 1),
		dead:    make(chan struct{}),
		done:    make(chan struct{}),
		pending: make(map[uint64]*attempt),
	}
	c.codec = cc
	cc.running.Store(2)
	go cc.readLoop()
	go cc.writeLoop()
}

// codecQueue is how many requests may wait for a codec client's writer;
// beyond, callers wait for room as net/rpc's do for their connection.
const codecQueue = 256

// codecCloseWait bounds how long Close waits for a codec's reader and
// writer to return once the codec is closed. A codec whose Close does not
// end its reads and writes would otherwise hang Close forever; a
// well-behaved one returns at once.
const codecCloseWait = time.Second

// codecClient is the one connection of a Client that calls through a
// ClientCodec: a writer goroutine sends requests in the order calls queued
// them, and a reader goroutine matches responses to pending calls by
// sequence number. Once the codec fails, every call fails with ErrShutdown.
type codecClient struct {
	client    *Client
	codec     ClientCodec
	addr      string
	slots     chan struct{} // a token per queued request: a full queue pushes back
	wake      chan struct{} // cap 1: the writer has work
	dead      chan struct{} // closed once err is set
	closeOnce sync.Once
	// running counts the reader and the writer; the last to return closes done.
	running atomic.Int32
	done    chan struct{}

	mu sync.Mutex // guards the fields below
	// queue holds the requests the writer has yet to send.
	queue []*attempt
	seq   uint64
	// pending maps sequence numbers to calls awaiting a response; nil once
	// the connection is dead.
	pending map[uint64]*attempt
	// err is why the connection ended; no request is queued after it is set.
	err error
}

// send queues the call's request for the writer. When the queue is full it
// waits, as net/rpc's Go does while its connection is busy, but no longer
// than the call may last.
func (cc *codecClient) send(ctx context.Context, st *callState) {
	a, _ := st.route(nil, false) // a client of one server: never fails
	select {
	case cc.slots <- struct{}{}:
	default:
		if !cc.waitSlot(ctx, st, a) {
			return
		}
	}
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		<-cc.slots
		cc.forget(a)
		st.finish(ErrShutdown)
		return
	}
	cc.queue = append(cc.queue, a)
	cc.mu.Unlock()
	select {
	case cc.wake <- struct{}{}:
	default:
	}
}

// waitSlot waits for room in the queue. When the call ends first (its
// deadline, its ctx, the connection) it forgets a and reports false.
func (cc *codecClient) waitSlot(ctx context.Context, st *callState, a *attempt) bool {
	var expired <-chan time.Time
	if !st.deadline.IsZero() {
		t := time.NewTimer(time.Until(st.deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case cc.slots <- struct{}{}:
		return true
	case <-cc.dead:
		cc.forget(a)
		st.finish(ErrShutdown)
	case <-ctx.Done(): // CallContext ends the call
		cc.forget(a)
	case <-expired: // the call's timer ends it
		cc.forget(a)
	}
	return false
}

// forget drops a from its call's attempts: it will get no response.
func (cc *codecClient) forget(a *attempt) {
	st := &a.call.st
	st.mu.Lock()
	st.removeLive(a)
	st.mu.Unlock()
	a.report(nil, nil)
}

// writeLoop is the writer goroutine: it sends queued requests in order, and
// fails those still queued once the connection is dead.
func (cc *codecClient) writeLoop() {
	defer cc.exited()
	var batch []*attempt
	for {
		select {
		case <-cc.wake:
		case <-cc.dead:
		}
		cc.mu.Lock()
		batch, cc.queue = cc.queue, batch[:0]
		err := cc.err
		cc.mu.Unlock()
		for i, a := range batch {
			if err != nil {
				cc.forget(a)
				a.call.st.finish(ErrShutdown)
			} else {
				cc.write(a)
			}
			batch[i] = nil
			<-cc.slots
		}
		if err != nil {
			return
		}
	}
}

// write sends a's request, unless its call ended while it was queued.
func (cc *codecClient) write(a *attempt) {
	call := a.call
	st := &call.st
	if st.finished.Load() {
		cc.forget(a) // timed out or cancelled before it was sent: it never will be
		return
	}
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		cc.forget(a)
		st.finish(ErrShutdown)
		return
	}
	cc.seq++
	seq := cc.seq
	if !st.oneway {
		cc.pending[seq] = a
	}
	cc.mu.Unlock()
	err := cc.codec.WriteRequest(&netrpc.Request{ServiceMethod: call.ServiceMethod, Seq: seq}, call.Args)
	if err != nil {
		cc.mu.Lock()
		delete(cc.pending, seq) // a nil map once dead: a no-op
		dead := cc.err != nil
		cc.mu.Unlock()
		if dead {
			err = ErrShutdown
		} else {
			err = callError(call.ServiceMethod, cc.addr, fmt.Errorf("writing request: %w", err))
		}
		cc.forget(a)
		st.finish(err)
		if _, breaks := cc.codec.(interface{ writeErrorBreaks() }); breaks {
			cc.close()
		}
		return
	}
	if st.oneway {
		cc.forget(a)
		st.finish(nil)
	}
}

// readLoop is the reader goroutine: it completes calls with their
// responses until the codec fails, then fails every pending call.
func (cc *codecClient) readLoop() {
	defer cc.exited()
	var err error
	for err == nil {
		var resp netrpc.Response
		if err = cc.codec.ReadResponseHeader(&resp); err != nil {
			break
		}
		cc.mu.Lock()
		a := cc.pending[resp.Seq]
		delete(cc.pending, resp.Seq)
		cc.mu.Unlock()
		if a == nil || !a.call.st.finished.CompareAndSwap(false, true) {
			// Nobody waits: a oneway call's, or one that timed out.
			err = cc.codec.ReadResponseBody(nil)
			if a != nil {
				a.report(nil, nil)
			}
			continue
		}
		call := a.call
		var callErr error
		if resp.Error != "" {
			callErr = netrpcError(resp.Error)
			err = cc.codec.ReadResponseBody(nil)
		} else if err = cc.codec.ReadResponseBody(call.Reply); err != nil {
			// As in net/rpc, the stream cannot be trusted after that.
			callErr = callError(call.ServiceMethod, cc.addr, fmt.Errorf("reading reply: %w", err))
		}
		a.report(nil, nil)
		call.st.done(a, callErr)
	}
	cc.fail(err)
}

// fail marks the connection dead, closes the codec and fails every pending
// call with ErrShutdown; the cause is logged.
func (cc *codecClient) fail(err error) {
	cc.mu.Lock()
	if cc.err == nil {
		cc.err = err
		close(cc.dead)
	}
	pending := cc.pending
	cc.pending = nil
	cc.mu.Unlock()
	cc.close()
	if len(pending) > 0 && !cc.client.isClosed() {
		cc.client.opts.logger.Info("rpc: connection lost; its calls fail with ErrShutdown", "addr", cc.addr, "calls", len(pending), "err", err)
	}
	for _, a := range pending {
		cc.forget(a)
		a.call.st.finish(ErrShutdown)
	}
}

// close closes the codec once; the reader then fails.
func (cc *codecClient) close() {
	cc.closeOnce.Do(func() { cc.codec.Close() })
}

// exited is called by the reader and the writer as they return.
func (cc *codecClient) exited() {
	if cc.running.Add(-1) == 0 {
		close(cc.done)
	}
}

// shutdown fails every call, closes the codec and waits, bounded by
// codecCloseWait, for the reader and the writer to return: Client.Close.
func (cc *codecClient) shutdown() {
	cc.fail(ErrShutdown)
	t := time.NewTimer(codecCloseWait)
	defer t.Stop()
	select {
	case <-cc.done:
	case <-t.C:
		cc.client.opts.logger.Warn("rpc: the codec's reads or writes did not return after its Close; leaving them", "addr", cc.addr)
	}
}

// netrpcError is the error of a call that a net/rpc server answered with
// msg. net/rpc's texts for unknown services and methods, and this server's
// for refused calls, match their sentinels; any other is the handler's
// ServerError.
func netrpcError(msg string) error {
	for _, e := range [...]struct {
		prefix   string
		sentinel error
	}{
		{"rpc: can't find service ", ErrNoService},
		{"rpc: can't find method ", ErrNoMethod},
		{"rpc: service/method request ill-formed: ", ErrNoMethod},
		{"rpc: server shutting down", ErrServerShuttingDown},
		{"rpc: server overloaded", ErrOverloaded},
	} {
		if strings.HasPrefix(msg, e.prefix) {
			return wrapMsg(e.sentinel, msg)
		}
	}
	return ServerError(msg)
}
