package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	netrpc "net/rpc"
	"reflect"
	"runtime/debug"
	"sync"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// A Server serves net/rpc clients too, from the same service table and
// within the same limits: a connection accepted by Serve (or given to
// ServeConn) that opens with net/rpc's gob stream is served with net/rpc's
// protocol, and one that opens with net/rpc's HTTP CONNECT handshake is
// answered and then served with whichever protocol follows. seedrpc frames
// open with the bytes 5E ED, which neither does. ServeCodec and
// ServeRequest serve any net/rpc ServerCodec.

// Accept serves the connections lis accepts, as Serve does, and returns
// when Serve would. As in net/rpc it returns nothing: an accept error is
// logged (WithLogger). Use Serve to get it.
func (s *Server) Accept(lis net.Listener) {
	if err := s.Serve(lis); err != nil && !errors.Is(err, ErrServerClosed) {
		s.opts.logger.Error("rpc: accept", "addr", lis.Addr(), "err", err)
	}
}

// ServeCodec serves the requests codec reads until it fails to read one,
// then waits for the calls it started to be answered, closes codec and
// returns, as in net/rpc. Calls run concurrently, within WithMaxCalls;
// Shutdown waits for them and Close cancels them, closing codec.
func (s *Server) ServeCodec(codec ServerCodec) {
	nc := rwcConn{codecCloser{codec}}
	c := &serverConn{
		srv:   s,
		nc:    nc,
		w:     wire.NewConnWriter(nc, serverWriteTimeout), // idle: replies go through codec
		sem:   make(chan struct{}, s.opts.connCalls),
		calls: make(map[uint64]*callContext),
	}
	c.netrpc.Store(&netrpcConn{codec: codec})
	s.serveConn(c, false)
}

// ServeRequest reads one request from codec, runs it and writes its
// response, all on the caller's goroutine, and does not close codec, as in
// net/rpc. It returns the error that ended the read, or the error the
// request was answered with when it could not run (unknown method,
// undecodable args, server shutting down or overloaded), or the write's
// error; a handler's own error goes to the caller in the response alone.
// Shutdown and Close do not wait for it; Close cancels the handler's ctx.
func (s *Server) ServeRequest(codec ServerCodec) error {
	var req netrpc.Request
	m, argp, replyp, answer, err := s.readCodecRequest(codec, &req)
	if err != nil {
		return err
	}
	nr := &netrpcConn{codec: codec}
	if answer == nil {
		if n := s.running.Add(1); n > int64(s.opts.maxCalls) {
			answer = overloaded(s.opts.maxCalls)
		} else {
			ctx, cancel := context.WithCancel(s.baseCtx)
			reply, msg := s.invokeCodec(ctx, &req, m, argp, replyp, rwcAddr{})
			cancel()
			s.running.Add(-1)
			return nr.respond(&req, reply, msg)
		}
		s.running.Add(-1)
	}
	if err := nr.respond(&req, nil, answer.Error()); err != nil {
		return err
	}
	return answer
}

// netrpcConn is the net/rpc side of a serverConn that speaks a ServerCodec.
type netrpcConn struct {
	codec ServerCodec

	sending sync.Mutex // serializes responses, as a codec expects
}

// codecCloser closes the codec served by ServeCodec when its serverConn is
// closed; it carries no bytes of its own.
type codecCloser struct{ codec ServerCodec }

func (c codecCloser) Read([]byte) (int, error)  { return 0, io.EOF }
func (c codecCloser) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }
func (c codecCloser) Close() error              { return c.codec.Close() }

// serveNetRPC serves c as net/rpc when it speaks it, and reports whether it
// did; false leaves c to the seedrpc frame reader, which also rejects
// garbage. The connection's first bytes decide, read as they arrive: a
// seedrpc client costs one peek at one byte.
func (c *serverConn) serveNetRPC() bool {
	if nr := c.netrpc.Load(); nr != nil { // ServeCodec
		c.serveCodec(nr)
		return true
	}
	for {
		switch sniff(c) {
		case sniffGob:
			nr := &netrpcConn{codec: newGobServerCodec(c)}
			c.netrpc.Store(nr)
			c.serveCodec(nr)
			return true
		case sniffConnect:
			if err := c.acceptConnect(); err != nil {
				c.srv.opts.logger.Warn("rpc: closing connection: bad HTTP CONNECT", "remote", c.nc.RemoteAddr(), "err", err)
				return true
			}
			// The handshake done, either protocol may follow.
		case sniffStalled:
			c.srv.opts.logger.Info("rpc: closing connection: its first bytes stalled", "remote", c.nc.RemoteAddr(), "read_timeout", c.srv.opts.readTimeout)
			return true
		default:
			return false
		}
	}
}

// What the opening bytes of a connection are.
const (
	sniffOther   = iota // seedrpc, garbage or a read error: the frame reader decides
	sniffGob            // net/rpc's gob stream
	sniffConnect        // net/rpc's HTTP CONNECT handshake
	sniffMore           // a prefix of one of the above; read on
	sniffStalled        // a prefix, then nothing within the read timeout
)

// sniff reads the connection's first bytes, without consuming them, until
// they say what it speaks.
//
// Once the first byte has arrived, the rest must arrive within the read
// timeout (the wait for the first byte is the idle timeout's business);
// sniffStalled reports a connection that stopped in between.
func sniff(c *serverConn) int {
	n := 1
	deadline := false
	defer func() {
		if deadline {
			_ = c.nc.SetReadDeadline(time.Time{})
		}
	}()
	for {
		p, err := c.br.Peek(n)
		r := sniffPrefix(p)
		if r != sniffMore {
			return r
		}
		if err != nil {
			var ne net.Error
			if deadline && errors.As(err, &ne) && ne.Timeout() {
				return sniffStalled
			}
			return sniffOther
		}
		if len(p) >= 32 {
			return sniffOther
		}
		if !deadline && c.srv.opts.readTimeout > 0 {
			deadline = true
			_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.readTimeout))
		}
		n = max(len(p)+1, c.br.Buffered()) // whatever has arrived, or one more byte
	}
}

// gobRequestType is how a net/rpc client's gob stream opens, after the
// message length and the type id: the definition of the type it sends
// first, net/rpc's Request (struct type, common type, name "Request").
const gobRequestType = "\x03\x01\x01\x07Request"

// sniffPrefix tells what p, the first bytes of a connection, open.
func sniffPrefix(p []byte) int {
	if len(p) == 0 {
		return sniffMore
	}
	if p[0] == wire.Magic0 {
		return sniffOther
	}
	const connect = "CONNECT "
	if p[0] == connect[0] {
		if len(p) >= len(connect) {
			if string(p[:len(connect)]) == connect {
				return sniffConnect
			}
			return sniffOther
		}
		if string(p) == connect[:len(p)] {
			return sniffMore
		}
		return sniffOther
	}
	// Gob: a message length under 128 (one byte), then the type id, a
	// negative integer (a type definition) in gob's encoding: one odd byte,
	// or a byte 0xF8-0xFF giving the count of bytes that follow.
	if p[0] >= 0x80 || p[0] < 16 {
		return sniffOther
	}
	if len(p) < 2 {
		return sniffMore
	}
	idLen := 1
	switch b := p[1]; {
	case b < 0x80 && b&1 == 1:
	case b >= 0xF8:
		idLen += 256 - int(b)
	default:
		return sniffOther
	}
	start := 1 + idLen // where the type definition begins
	if len(p) <= start {
		return sniffMore
	}
	rest := p[start:]
	n := min(len(rest), len(gobRequestType))
	switch {
	case string(rest[:n]) != gobRequestType[:n]:
		return sniffOther
	case n < len(gobRequestType):
		return sniffMore
	}
	return sniffGob
}

// serveCodec serves nr's codec until a request cannot be read, then waits
// for the calls it started. The calls share one ctx, cancelled when the
// connection is closed.
func (c *serverConn) serveCodec(nr *netrpcConn) {
	ctx := &callContext{Context: c.srv.baseCtx}
	c.mu.Lock()
	c.calls[0] = ctx
	if c.closed {
		ctx.cancel(context.Canceled)
	}
	c.mu.Unlock()
	defer c.handlers.Wait() // their responses are written before the conn closes, as in net/rpc
	for {
		req := new(netrpc.Request)
		m, argp, replyp, answer, err := c.srv.readCodecRequest(nr.codec, req)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isClosedConnErr(err) {
				c.srv.opts.logger.Warn("rpc: closing net/rpc connection", "remote", c.nc.RemoteAddr(), "err", err)
			}
			return
		}
		if answer == nil {
			c.sem <- struct{}{} // blocks reading at the per-connection cap
			if n := c.srv.running.Add(1); n > int64(c.srv.opts.maxCalls) {
				c.srv.running.Add(-1)
				<-c.sem
				answer = overloaded(c.srv.opts.maxCalls)
			}
		}
		if answer != nil {
			if err := nr.respond(req, nil, answer.Error()); err != nil {
				c.writeFailed(err)
				return
			}
			continue
		}
		c.running.Add(1)
		c.handlers.Add(1)
		go func() {
			defer func() {
				c.running.Add(-1)
				<-c.sem
				c.handlers.Done()
			}()
			reply, msg := c.srv.invokeCodec(ctx, req, m, argp, replyp, c.nc.RemoteAddr()) // recovers a handler's panic
			// The call leaves the server-wide cap before its response is
			// written, as native calls do (freeSlot): a caller that has its
			// reply and calls again at once must find the place free.
			c.srv.running.Add(-1)
			if err := nr.respond(req, reply, msg); err != nil {
				c.writeFailed(err)
			}
		}()
	}
}

// writeFailed closes a net/rpc connection whose response could not be
// written: its stream is broken.
func (c *serverConn) writeFailed(err error) {
	if !isClosedConnErr(err) {
		c.srv.opts.logger.Warn("rpc: closing net/rpc connection: writing a response", "remote", c.nc.RemoteAddr(), "err", err)
	}
	c.close()
}

// readCodecRequest reads one request from codec into req. It returns the
// method with its args decoded and a fresh reply; or answer, the error to
// answer the request with (its body was consumed, so the stream is in
// step); or err when nothing more can be read.
func (s *Server) readCodecRequest(codec ServerCodec, req *netrpc.Request) (m *methodType, argp, replyp reflect.Value, answer, err error) {
	if err = codec.ReadRequestHeader(req); err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("rpc: server cannot decode request: %w", err)
		}
		return
	}
	if s.shuttingDown.Load() {
		answer = ErrServerShuttingDown
	} else {
		m, answer = s.lookup([]byte(req.ServiceMethod))
	}
	if answer != nil {
		err = codec.ReadRequestBody(nil)
		return
	}
	argp, replyp = m.newValues()
	if derr := codec.ReadRequestBody(argp.Interface()); derr != nil {
		answer = wrapMsg(ErrBadRequest, fmt.Sprintf("rpc: %s: decoding args: %v", m.fullName, derr))
	}
	return
}

// overloaded is the answer to a call refused at the server's cap.
func overloaded(maxCalls int) error {
	return wrapMsg(ErrOverloaded, fmt.Sprintf("rpc: server overloaded (%d calls running)", maxCalls))
}

// invokeCodec runs m for a net/rpc request, through the server's
// interceptors when it has any (the args are decoded already: net/rpc's
// codecs read a request whole, so Request.Args costs nothing here), and
// returns the reply to send, or the error text to answer with.
func (s *Server) invokeCodec(ctx context.Context, req *netrpc.Request, m *methodType, argp, replyp reflect.Value, peer net.Addr) (reply any, msg string) {
	defer func() {
		if r := recover(); r != nil {
			s.opts.logger.Error("rpc: handler panicked", "method", m.fullName, "remote", peer, "panic", r, "stack", string(debug.Stack()))
			reply, msg = nil, fmt.Sprintf("rpc: %s panicked", m.fullName)
		}
	}()
	var err error
	if s.chain == nil {
		err = m.call(ctx, argp, replyp)
		reply = replyp.Interface()
	} else {
		ic := &interceptedCall{serverCall: serverCall{m: m}, argp: argp, replyp: replyp, decoded: true}
		ic.req = Request{ServiceMethod: m.fullName, Seq: req.Seq, Peer: peer, call: ic}
		reply, err = s.chain(ctx, &ic.req)
	}
	if err != nil {
		if msg = err.Error(); msg == "" {
			// net/rpc would take an empty text for success.
			msg = fmt.Sprintf("rpc: %s returned an error with no text", m.fullName)
		}
		return nil, msg
	}
	return reply, ""
}

// invalidRequest is the body of an error response, as in net/rpc.
var invalidRequest = struct{}{}

// respond writes the response to req: reply, or the error msg when it is
// not empty.
func (nr *netrpcConn) respond(req *netrpc.Request, reply any, msg string) error {
	resp := netrpc.Response{ServiceMethod: req.ServiceMethod, Seq: req.Seq, Error: msg}
	var body any = invalidRequest
	if msg == "" {
		body = reply
	}
	nr.sending.Lock()
	defer nr.sending.Unlock()
	return nr.codec.WriteResponse(&resp, body)
}
