package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/seedrpc/rpc/codec"
	"github.com/seedrpc/rpc/internal/wire"
)

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

	mu sync.Mutex // guards calls, closed
	// closed is set by close; calls registered later are cancelled at once.
	closed bool
	// calls holds the ctx of every running request, for cancel frames and
	// connection loss.
	calls map[uint64]*callContext

	handlers  sync.WaitGroup
	closeOnce sync.Once
}

func newServerConn(s *Server, nc net.Conn) *serverConn {
	return &serverConn{
		srv:   s,
		nc:    nc,
		br:    bufio.NewReaderSize(nc, 32<<10),
		w:     wire.NewConnWriter(nc, serverWriteTimeout),
		sem:   make(chan struct{}, s.opts.connCalls),
		calls: make(map[uint64]*callContext),
	}
}

// serve reads frames until the connection fails or is closed.
func (c *serverConn) serve() {
	defer func() {
		c.close()
		c.handlers.Wait()
		c.w.Wait()
	}()
	var hb [wire.HeaderSize]byte
	for {
		// Reject garbage as soon as its first bytes arrive, even when it is
		// shorter than a header; a read error is reported by ReadFull below.
		if _, err := c.br.Peek(1); err == nil {
			p, _ := c.br.Peek(min(c.br.Buffered(), 3))
			if err := wire.CheckPrefix(p); err != nil {
				c.srv.opts.logger.Warn("rpc: closing connection: bad frame", "remote", c.nc.RemoteAddr(), "err", err)
				return
			}
		}
		if _, err := io.ReadFull(c.br, hb[:]); err != nil {
			if !isClosedConnErr(err) {
				c.srv.opts.logger.Info("rpc: connection read failed", "remote", c.nc.RemoteAddr(), "err", err)
			}
			return
		}
		h, err := wire.ParseHeader(hb[:], c.srv.opts.maxFrame)
		if err != nil {
			c.srv.opts.logger.Warn("rpc: closing connection: bad frame", "remote", c.nc.RemoteAddr(), "err", err)
			return
		}
		switch h.Type {
		case wire.TypeRequest, wire.TypeOneway:
			bp := getBuf(h.PayloadLen())
			if _, err := io.ReadFull(c.br, *bp); err != nil {
				putBuf(bp)
				c.srv.opts.logger.Warn("rpc: closing connection: truncated frame", "remote", c.nc.RemoteAddr(), "err", err)
				return
			}
			if !c.dispatch(&h, bp) {
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
			if !c.discard(&h) {
				return
			}
			_ = c.w.WriteControl(wire.TypePong, h.Seq)
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
	}
}

func (c *serverConn) discard(h *wire.Header) bool {
	if n := h.PayloadLen(); n > 0 {
		if _, err := c.br.Discard(n); err != nil {
			c.srv.opts.logger.Warn("rpc: closing connection: truncated frame", "remote", c.nc.RemoteAddr(), "err", err)
			return false
		}
	}
	return true
}

// dispatch starts a handler for a request or oneway frame whose payload is
// in bp. It returns false when the connection must be closed.
func (c *serverConn) dispatch(h *wire.Header, bp *[]byte) bool {
	oneway := h.Type == wire.TypeOneway
	payload := *bp
	method := payload[:h.MethodLen]
	meta := payload[int(h.MethodLen) : int(h.MethodLen)+int(h.MetaLen)]
	body := payload[int(h.MethodLen)+int(h.MetaLen):]

	if c.srv.shuttingDown.Load() {
		putBuf(bp)
		if !oneway {
			c.writeError(h.Seq, wire.StatusShuttingDown, "rpc: server shutting down")
		}
		return true
	}
	sc := &serverCall{conn: c, seq: h.Seq, codecID: h.Codec, oneway: oneway, method: method, body: body, bp: bp}
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
		putBuf(bp)
		c.srv.opts.logger.Warn("rpc: closing connection: bad metadata", "remote", c.nc.RemoteAddr(), "err", err)
		return false
	}

	if expired {
		putBuf(bp)
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
		putBuf(bp)
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
			putBuf(bp)
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
	c.srv.workers.run(sc)
	return true
}

// serverCall is one request on its way through a handler.
type serverCall struct {
	conn    *serverConn
	seq     uint64
	codecID byte
	oneway  bool
	track   bool
	method  []byte
	body    []byte
	bp      *[]byte
	ctx     callContext
	lim     limitTicket
}

// serve runs the call on a worker goroutine.
func (sc *serverCall) serve() {
	sc.conn.handle(sc.seq, sc.codecID, sc.oneway, sc.track, sc.method, sc.body, sc.bp, &sc.ctx)
	sc.conn.srv.limiter.done(&sc.lim)
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

// handle runs one call and writes its response.
func (c *serverConn) handle(seq uint64, codecID byte, oneway, track bool, method, body []byte, bp *[]byte, ctx *callContext) {
	defer func() {
		ctx.release()
		if track {
			c.mu.Lock()
			delete(c.calls, seq)
			c.mu.Unlock()
		}
		c.srv.running.Add(-1)
		c.running.Add(-1)
		<-c.sem
		c.handlers.Done()
	}()
	status, reply, name, err := c.invoke(ctx, codecID, method, body, bp)
	if oneway {
		if err != nil {
			c.srv.opts.logger.Info("rpc: oneway call failed", "remote", c.nc.RemoteAddr(), "err", err)
		}
		return
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return // the caller gave up; nobody waits for the reply
	}
	if status != wire.StatusOK {
		c.writeError(seq, status, err.Error())
		return
	}
	cd, _ := codec.ByID(codecID)
	rb := getBuf(wire.HeaderSize)
	defer putBuf(rb)
	out, err := cd.AppendMarshal(*rb, reply.Interface())
	*rb = out[:0]
	if err != nil {
		c.writeError(seq, wire.StatusServerError, fmt.Sprintf("rpc: %s: encoding reply: %v", name, err))
		return
	}
	if len(out)-wire.HeaderSize > c.srv.opts.maxFrame {
		c.writeError(seq, wire.StatusServerError, fmt.Sprintf("rpc: %s: reply of %d bytes exceeds the frame limit %d", name, len(out)-wire.HeaderSize, c.srv.opts.maxFrame))
		return
	}
	hdr := wire.Header{Type: wire.TypeResponse, Codec: codecID, Seq: seq, BodyLen: uint32(len(out) - wire.HeaderSize)}
	wire.PutHeader(out, &hdr)
	_ = c.w.Write(context.Background(), out, false) // a failed write closes the conn; nothing else to do
}

// invoke decodes the args, runs the method and returns its reply and name,
// or the status and error to answer with. It releases bp once the args are
// decoded, so method must not be used after it returns.
func (c *serverConn) invoke(ctx *callContext, codecID byte, method, body []byte, bp *[]byte) (status wire.Status, reply reflect.Value, name string, err error) {
	m, err := c.srv.lookup(method)
	if err == nil {
		name = m.fullName
	}
	if err != nil {
		putBuf(bp)
		if errors.Is(err, ErrNoService) {
			return wire.StatusNoService, reply, name, err
		}
		return wire.StatusNoMethod, reply, name, err
	}
	cd, ok := codec.ByID(codecID)
	if !ok {
		putBuf(bp)
		return wire.StatusBadRequest, reply, name, fmt.Errorf("rpc: %s: unknown codec id %d", m.fullName, codecID)
	}
	argp, replyp := m.newValues()
	err = cd.Unmarshal(body, argp.Interface())
	putBuf(bp)
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
		if ctx.hasDeadline && errors.Is(err, context.DeadlineExceeded) {
			return wire.StatusTimeout, reply, name, err
		}
		return wire.StatusServerError, reply, name, err
	}
	return wire.StatusOK, reply, name, nil
}

// writeError answers request seq with status and message msg.
func (c *serverConn) writeError(seq uint64, status wire.Status, msg string) {
	if len(msg) > 64<<10 {
		msg = msg[:64<<10]
	}
	bp := getBuf(wire.HeaderSize + len(msg))
	defer putBuf(bp)
	hdr := wire.Header{Type: wire.TypeResponse, Status: status, Seq: seq, BodyLen: uint32(len(msg))}
	wire.PutHeader(*bp, &hdr)
	copy((*bp)[wire.HeaderSize:], msg)
	_ = c.w.Write(context.Background(), *bp, false)
}

// startDrain tells the client to send no new calls here.
func (c *serverConn) startDrain() {
	if c.draining.Swap(true) {
		return
	}
	c.drainStart.Store(time.Now().UnixNano())
	_ = c.w.WriteControl(wire.TypeDraining, 0)
}

// drained reports whether the connection can be closed without losing a
// call: nothing runs, nothing waits to be written, and the client has
// acknowledged the draining frame (or had the grace period to).
func (c *serverConn) drained() bool {
	if c.running.Load() > 0 || !c.w.Idle() {
		return false
	}
	if c.acked.Load() {
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
