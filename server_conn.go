package rpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/seedrpc/rpc/codec"
	"github.com/seedrpc/rpc/internal/wire"
)

// serverProcs is the number of calls that keep every core busy
// (server_inline.go); tests change it.
var serverProcs = func() int { return runtime.GOMAXPROCS(0) }

// serverWriteTimeout bounds one write to a client; a client that reads
// nothing for this long loses its connection.
const serverWriteTimeout = 30 * time.Second

// serverConn serves one client connection: one reader goroutine that
// dispatches each request to a handler goroutine, and a coalescing writer
// shared by the handlers.
type serverConn struct {
	srv *Server
	nc  net.Conn
	br  *bufio.Reader
	fr  frameReader
	w   *wire.Writer
	// sem holds one token per running handler; the reader blocks when it is
	// full (WithMaxCalls), so a client cannot make the server spawn
	// without bound.
	sem chan struct{}
	// running counts handlers in progress.
	running atomic.Int64
	// draining is set once the draining frame was sent; acked once the client
	// answered it (it will send nothing more).
	draining   atomic.Bool
	acked      atomic.Bool
	drainStart atomic.Int64 // unix nanoseconds
	// idleDraining is set once a draining frame told the client that this
	// connection is closed for being idle (the server goes on serving).
	idleDraining atomic.Bool
	// peerS2 and peerChunks are set once the client announced (or used)
	// compressed bodies and continuation frames.
	peerS2, peerChunks atomic.Bool
	// parts are the chunked requests being reassembled (reader only);
	// chunkSem holds a slot per chunked reply being written.
	parts    partials
	chunkSem chan struct{}
	// reassembling is set while parts is not empty, for drained.
	reassembling atomic.Bool
	// started is set once the connection is ready to serve (TLS handshake
	// done).
	started atomic.Bool
	// frames counts request and oneway frames, for the idle reaper, whose
	// own fields seenFrames and activeAt are.
	frames     atomic.Uint64
	seenFrames uint64
	activeAt   time.Time

	mu sync.Mutex // guards calls, closed
	// closed is set by close; calls registered later are cancelled at once.
	closed bool
	// calls holds the ctx of every running request, for cancel frames and
	// connection loss.
	calls map[uint64]*callContext

	handlers  sync.WaitGroup
	closeOnce sync.Once

	// tls is the connection's TLS state for Request.TLS, read once.
	tlsOnce sync.Once
	tls     *tls.ConnectionState
	// netrpc is set when the connection speaks net/rpc's protocol
	// (netrpc_server.go): it has no draining frame and no acknowledgement.
	netrpc atomic.Pointer[netrpcConn]

	// inline and readDone hand the reading from goroutine to goroutine
	// (server_inline.go).
	inline      servable
	readDone    chan struct{}
	inlineSince atomic.Int64 // monoNow when the inline call began; 0: none
	guardSeen   atomic.Uint64
	// holding is set while the reading holds the writer (server_inline.go);
	// procs is GOMAXPROCS when the connection started.
	holding   bool
	holdSince time.Duration // monoNow when the hold began
	procs     int64
	// inlineCall is c.inline's call.
	inlineCall *serverCall
}

func newServerConn(s *Server, nc net.Conn) *serverConn {
	c := &serverConn{
		srv:      s,
		nc:       nc,
		br:       bufio.NewReaderSize(nc, 32<<10),
		w:        wire.NewConnWriter(nc, serverWriteTimeout),
		sem:      make(chan struct{}, s.opts.connCalls),
		chunkSem: make(chan struct{}, maxPartials),
		calls:    make(map[uint64]*callContext),
		activeAt: time.Now(),
		readDone: make(chan struct{}),
		procs:    int64(serverProcs()),
	}
	limitUnsent(nc, unsentLimit)
	c.w.YieldWhen(c.othersRunning)
	c.fr = frameReader{br: c.br, nc: nc, maxFrame: s.opts.maxFrame, timeout: s.opts.readTimeout,
		budget: s.budget, done: s.baseCtx.Done(), closed: c.isClosed, waiting: c.releaseHold}
	return c
}

// serve serves the connection until it fails or is closed, and until its
// handlers have returned.
func (c *serverConn) serve() {
	defer func() {
		c.close()
		c.handlers.Wait()
		c.w.Wait()
	}()
	if !c.handshake() {
		return
	}
	c.started.Store(true)
	if c.serveNetRPC() {
		return
	}
	c.readLoop()
	<-c.readDone // the reading may have moved to other goroutines
}

// readFrames reads frames and dispatches them until the connection fails
// (c.inline is nil) or a call is to run on this goroutine (c.inline).
func (c *serverConn) readFrames() {
	for {
		if c.holding && !c.nextWhole() {
			c.releaseHold() // the read may wait: what is held goes now
		}
		h, err := c.fr.next()
		if err != nil {
			c.readFailed(err)
			return
		}
		switch h.Type {
		case wire.TypeRequest, wire.TypeOneway:
			c.frames.Add(1)
			if h.PayloadLen() > c.srv.opts.maxFrame {
				if err := c.refuseTooLarge(&h); err != nil {
					c.readFailed(err)
					return
				}
				if h.Codec&wire.FlagMore != 0 { // answered: skip its continuations
					if err := c.parts.start(&c.fr, &wire.Header{Seq: h.Seq}, true); err != nil {
						c.readFailed(err)
						return
					}
				}
				continue
			}
			if h.Codec&wire.FlagMore != 0 {
				if err := c.parts.start(&c.fr, &h, false); err != nil {
					c.readFailed(err)
					return
				}
				c.reassembling.Store(true)
				continue
			}
			bp, err := c.fr.payload(h.PayloadLen())
			if err != nil {
				c.readFailed(err)
				return
			}
			if h.Codec&wire.CompressMask == wire.CompressS2 {
				var ok bool
				if bp, ok = c.inflateRequest(&h, bp); !ok {
					return
				} else if bp == nil {
					continue
				}
			}
			if !c.dispatch(&h, bp) {
				return
			}
		case wire.TypeContinuation:
			if !c.continuation(&h) {
				return
			}
		case wire.TypeCancel:
			if !c.discard(&h) {
				return
			}
			c.mu.Lock()
			ctx := c.calls[h.Seq]
			c.mu.Unlock()
			if ctx != nil {
				ctx.cancel(context.Canceled)
			}
		case wire.TypePing:
			if !c.hello(&h) {
				return
			}
		case wire.TypePong:
			if !c.discard(&h) {
				return
			}
		case wire.TypeDraining:
			// The client acknowledges our draining frame: it sends no more.
			if !c.discard(&h) {
				return
			}
			c.acked.Store(true)
		default:
			c.srv.opts.logger.Warn("rpc: closing connection: unexpected frame from client", "remote", c.nc.RemoteAddr(), "type", h.Type)
			return
		}
		if c.inline != nil {
			return
		}
	}
}

func (c *serverConn) discard(h *wire.Header) bool {
	if n := h.PayloadLen(); n > 0 {
		if err := c.fr.skip(n); err != nil {
			c.readFailed(err)
			return false
		}
	}
	return true
}

// dispatch starts a handler for a request or oneway frame whose payload is
// in bp. It returns false when the connection must be closed.
func (c *serverConn) dispatch(h *wire.Header, bp *frameBuf) bool {
	oneway := h.Type == wire.TypeOneway
	payload := bp.b
	method := payload[:h.MethodLen]
	meta := payload[int(h.MethodLen) : int(h.MethodLen)+int(h.MetaLen)]
	body := payload[int(h.MethodLen)+int(h.MetaLen):]

	if c.srv.shuttingDown.Load() {
		bp.release()
		if !oneway {
			c.writeError(h.Seq, wire.StatusShuttingDown, "rpc: server shutting down")
		}
		return true
	}
	sc, job := c.newCall()
	sc.conn, sc.seq, sc.codecID, sc.oneway, sc.method, sc.body, sc.bp = c, h.Seq, h.Codec, oneway, method, body, bp
	sc.ctx.Context = c.srv.baseCtx
	ctx := &sc.ctx
	expired := false
	err := wire.ParseMeta(meta, func(k, v []byte) error {
		if string(k) == wire.MetaTimeout {
			d, err := wire.ParseTimeout(v)
			if err != nil {
				return err
			}
			ctx.deadline, ctx.hasDeadline = time.Now().Add(d), true
			if d <= 0 {
				expired = true
			}
			return nil
		}
		if ctx.header == nil {
			ctx.header = make(map[string]string)
		}
		ctx.header[string(k)] = string(v)
		return nil
	})
	if err != nil {
		bp.release()
		c.srv.opts.logger.Warn("rpc: closing connection: bad metadata", "remote", c.nc.RemoteAddr(), "err", err)
		return false
	}

	if expired {
		bp.release()
		if !oneway {
			c.writeError(h.Seq, wire.StatusTimeout, "rpc: deadline passed before the call started")
		}
		return true
	}
	c.acquire() // blocks reading at the per-connection cap
	n := c.srv.running.Add(1)
	if n > int64(c.srv.opts.maxCalls) || c.srv.limiter.refuse(n) {
		c.srv.running.Add(-1)
		<-c.sem
		bp.release()
		if !oneway {
			c.writeError(h.Seq, wire.StatusOverloaded, c.srv.overloadMessage())
		}
		return true
	}
	sc.lim = c.srv.limiter.admit(c.srv, method, n)
	track := true
	c.mu.Lock()
	if _, dup := c.calls[h.Seq]; dup {
		track = false
		if !oneway {
			c.mu.Unlock()
			c.srv.running.Add(-1)
			<-c.sem
			bp.release()
			c.srv.opts.logger.Warn("rpc: closing connection: duplicate sequence number", "remote", c.nc.RemoteAddr(), "seq", h.Seq)
			return false
		}
	} else {
		c.calls[h.Seq] = ctx
	}
	if c.closed {
		ctx.cancel(context.Canceled)
	}
	c.mu.Unlock()
	c.running.Add(1)
	c.handlers.Add(1)
	sc.track = track
	c.start(sc, job)
	return true
}

// serverCall is one request on its way through a handler.
type serverCall struct {
	conn    *serverConn
	seq     uint64
	codecID byte
	oneway  bool
	track   bool
	// slotFreed is set once the call left the server-wide cap (freeSlot).
	slotFreed bool
	// onWorker is set when the call runs on a worker, not on the
	// goroutine that read it. (The flags sit together: apart, their
	// padding took the struct, allocated per call, to the next size class.)
	onWorker bool
	method   []byte
	body     []byte
	bp       *frameBuf
	ctx      callContext
	lim      limitTicket
	// m is the method, once looked up (nil before, or if there is none).
	m *methodType
	// took is how long decoding the args and running the handler took.
	took time.Duration
}

// stats returns the stats of the call's method, nil if not looked up.
func (sc *serverCall) stats() *methodStats {
	if sc.m == nil {
		return nil
	}
	return sc.m.stats
}

// ran counts the call, which ended with status, in its method's stats,
// with how long its handler took and where it ran. It runs before the
// response is written: a caller that has its response and calls again
// must find the method's average updated.
func (sc *serverCall) ran(status wire.Status) {
	st := sc.stats()
	st.record(sc.took, status)
	if sc.onWorker {
		st.ranOnWorker(sc.took)
	} else {
		st.ranInline(sc.took)
	}
}

// serve runs the call on a worker goroutine.
func (sc *serverCall) serve() {
	c := sc.conn
	defer c.finish(sc)
	start := monoNow()
	status, rv, name, err := c.invoke(&sc.ctx, sc.m, sc.codecID, sc.method, sc.body, sc.bp)
	sc.took = monoNow() - start
	sc.ran(status)
	var reply any
	if status == wire.StatusOK {
		reply = rv.Interface()
	}
	c.freeSlot(sc)
	c.respond(sc, status, reply, name, err)
	c.srv.limiter.done(&sc.lim)
}

// acquire takes a handler slot, waiting while the connection is at its cap.
// While it waits the reader reads nothing, so it sends an unsolicited pong
// now and then: the client takes any frame as proof of life and must not
// mistake a busy server for a dead one.
func (c *serverConn) acquire() {
	select {
	case c.sem <- struct{}{}:
		return
	default:
	}
	c.releaseHold() // the responses held must not wait for the slot
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case c.sem <- struct{}{}:
			return
		case <-tick.C:
			_ = c.w.WriteControl(wire.TypePong, 0)
		}
	}
}

// finish releases what a call held once it has been answered.
func (c *serverConn) finish(sc *serverCall) {
	sc.ctx.release()
	if sc.track {
		c.mu.Lock()
		delete(c.calls, sc.seq)
		c.mu.Unlock()
	}
	c.freeSlot(sc)
	c.running.Add(-1)
	<-c.sem
	c.handlers.Done()
}

// freeSlot gives back the call's place under the server-wide cap
// (WithMaxCalls) once its handler has returned, before its response is
// written: a caller that has its reply and calls again at once must find
// the place free, not be refused as overloaded.
func (c *serverConn) freeSlot(sc *serverCall) {
	if !sc.slotFreed {
		sc.slotFreed = true
		c.srv.running.Add(-1)
	}
}

// respond writes the response of a call that ended with status, reply
// (status OK) or err, and the response headers set with SetHeader.
func (c *serverConn) respond(sc *serverCall, status wire.Status, reply any, name string, err error) {
	ctx := &sc.ctx
	if sc.oneway {
		if err != nil {
			c.srv.opts.logger.Info("rpc: oneway call failed", "remote", c.nc.RemoteAddr(), "err", err)
		}
		return
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return // the caller gave up; nobody waits for the reply
	}
	if status != wire.StatusOK {
		msg, code := errorMessage(status, err)
		if status == wire.StatusUnauthenticated || status == wire.StatusPermissionDenied {
			c.srv.opts.logger.Debug("rpc: call refused", "method", name, "remote", c.nc.RemoteAddr(), "err", err)
		}
		c.writeErrorMeta(sc.seq, status, msg, ctx.takeResponseHeader(), code)
		return
	}
	cd, _ := codec.ByID(sc.codecID)
	rb := getEncodeBuf(wire.HeaderSize, reply) // encode_buf.go
	defer putBuf(rb)
	out := *rb
	if hdrs := ctx.takeResponseHeader(); len(hdrs) > 0 {
		out = appendResponseMeta(out, hdrs, nil)
	}
	metaLen := len(out) - wire.HeaderSize
	out, err = cd.AppendMarshal(out, reply)
	*rb = out[:0]
	if err != nil {
		c.writeError(sc.seq, wire.StatusServerError, fmt.Sprintf("rpc: %s: encoding reply: %v", name, err))
		return
	}
	if len(out)-wire.HeaderSize > c.srv.opts.maxFrame {
		c.writeError(sc.seq, wire.StatusTooLarge, fmt.Sprintf("rpc: %s: reply of %d bytes exceeds the server's frame limit of %d", name, len(out)-wire.HeaderSize, c.srv.opts.maxFrame))
		return
	}
	codecByte := sc.codecID
	if c.srv.opts.compressMin > 0 && c.peerS2.Load() && compressBody(&out, wire.HeaderSize+metaLen, c.srv.opts.compressMin) {
		codecByte |= wire.CompressS2
		*rb = out[:0]
	}
	hdr := wire.Header{Type: wire.TypeResponse, Codec: codecByte, Seq: sc.seq, MetaLen: uint32(metaLen), BodyLen: uint32(len(out) - wire.HeaderSize - metaLen)}
	if needsChunks(int(hdr.BodyLen), c.peerChunks.Load()) {
		c.writeChunked(out, hdr)
		return
	}
	wire.PutHeader(out, &hdr)
	_ = c.w.Write(context.Background(), out, false) // a failed write closes the conn; nothing else to do
}

// invoke decodes the args, runs the method (m, or the one named method
// when m is nil) and returns its reply and name, or the status and error
// to answer with. It releases bp once the args are decoded, so method must
// not be used after it returns.
func (c *serverConn) invoke(ctx *callContext, m *methodType, codecID byte, method, body []byte, bp *frameBuf) (status wire.Status, reply reflect.Value, name string, err error) {
	m, cd, status, err := c.resolve(m, method, codecID)
	if err != nil {
		bp.release()
		return status, reply, name, err
	}
	name = m.fullName
	argp, replyp := m.newValues()
	err = cd.Unmarshal(body, argp.Interface())
	bp.release()
	if err != nil {
		return wire.StatusBadRequest, reply, name, fmt.Errorf("rpc: %s: decoding args: %v", m.fullName, err)
	}
	reply = replyp
	defer func() {
		if r := recover(); r != nil {
			c.srv.opts.logger.Error("rpc: handler panicked", "method", m.fullName, "remote", c.nc.RemoteAddr(), "panic", r, "stack", string(debug.Stack()))
			status, err = wire.StatusInternalError, fmt.Errorf("rpc: %s panicked", m.fullName)
		}
	}()
	if err := m.call(ctx, argp, reply); err != nil {
		return errorStatus(ctx, err, true), reply, name, err
	}
	return wire.StatusOK, reply, name, nil
}

// resolve finds the method named method (unless m, already looked up, is
// it) and the codec of codecID, or returns the status and error to answer
// with.
func (c *serverConn) resolve(m *methodType, method []byte, codecID byte) (*methodType, codec.Codec, wire.Status, error) {
	var err error
	if m == nil {
		m, err = c.srv.lookup(method)
	}
	if err != nil {
		if errors.Is(err, ErrNoService) {
			return nil, nil, wire.StatusNoService, err
		}
		return nil, nil, wire.StatusNoMethod, err
	}
	cd, ok := codec.ByID(codecID)
	if !ok {
		return nil, nil, wire.StatusBadRequest, fmt.Errorf("rpc: %s: unknown codec id %d", m.fullName, codecID)
	}
	return m, cd, wire.StatusOK, nil
}

// writeError answers request seq with status and message msg.
func (c *serverConn) writeError(seq uint64, status wire.Status, msg string) {
	c.writeErrorMeta(seq, status, msg, nil, nil)
}

// writeErrorMeta is writeError with response headers and the code of a
// coded error (nil: none) as metadata. Headers that would take the frame
// over the limit are left out.
func (c *serverConn) writeErrorMeta(seq uint64, status wire.Status, msg string, hdrs []metaPair, code *Error) {
	if len(msg) > 64<<10 {
		msg = msg[:64<<10]
	}
	bp := getBuf(wire.HeaderSize)
	defer putBuf(bp)
	buf := appendResponseMeta(*bp, hdrs, code)
	if len(buf)+len(msg)-wire.HeaderSize > c.srv.opts.maxFrame {
		buf = appendResponseMeta((*bp)[:wire.HeaderSize], nil, code)
	}
	metaLen := len(buf) - wire.HeaderSize
	buf = append(buf, msg...)
	*bp = buf[:0]
	hdr := wire.Header{Type: wire.TypeResponse, Status: status, Seq: seq, MetaLen: uint32(metaLen), BodyLen: uint32(len(msg))}
	wire.PutHeader(buf, &hdr)
	_ = c.w.Write(context.Background(), buf, false)
}

// startDrain tells the client to send no new calls here.
func (c *serverConn) startDrain() {
	if c.draining.Swap(true) {
		return
	}
	c.drainStart.Store(time.Now().UnixNano())
	if c.netrpc.Load() == nil {
		_ = c.w.WriteControl(wire.TypeDraining, 0)
	}
}

// drained reports whether the connection can be closed without losing a
// call: nothing runs, nothing waits to be written, and the client has
// acknowledged the draining frame (or had the grace period to).
func (c *serverConn) drained() bool {
	// acked first: the requests the client sent before its acknowledgement
	// were counted in running before acked was set.
	acked := c.acked.Load()
	if c.running.Load() > 0 || c.reassembling.Load() || !c.w.Idle() {
		return false
	}
	if acked || c.netrpc.Load() != nil {
		return true
	}
	return time.Since(time.Unix(0, c.drainStart.Load())) >= c.srv.opts.drainGrace
}

// close closes the connection and cancels every running call.
func (c *serverConn) close() {
	c.closeOnce.Do(func() {
		c.nc.Close()
		c.mu.Lock()
		c.closed = true
		for _, ctx := range c.calls {
			ctx.cancel(context.Canceled)
		}
		c.mu.Unlock()
	})
}

// isClosedConnErr reports whether err only says the connection ended.
func isClosedConnErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET)
}
