package rpc

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// The server's defences against its clients, besides the memory budget
// (budget.go) and the frame reader (readbuf.go): connections beyond
// WithMaxConns are closed at accept, connections idle for WithIdleTimeout
// are drained and closed, slow frames and TLS handshakes are bounded by
// WithReadTimeout, and requests over the frame limit are answered with
// StatusTooLarge without being buffered.

// Server defaults for the limits.
const (
	defaultReadTimeout       = 30 * time.Second
	defaultServerIdleTimeout = 5 * time.Minute
	defaultMaxConns          = 10000
)

// refuseLogEvery is how often a long burst of connections refused at
// accept is logged again.
const refuseLogEvery = time.Minute

// admit reports whether the accepted connection nc may be served under
// WithMaxConns; it closes one beyond the limit. A burst of refusals is
// logged when it begins (and every refuseLogEvery while it lasts) and when
// it ends, not once per connection.
func (s *Server) admit(nc net.Conn) bool {
	s.mu.Lock()
	if len(s.conns) < s.opts.maxConns {
		refused := s.refused
		s.refused = 0
		s.mu.Unlock()
		if refused > 0 {
			s.opts.logger.Warn("rpc: connection limit: accepting connections again", "addr", nc.LocalAddr(), "refused", refused, "max_conns", s.opts.maxConns)
		}
		return true
	}
	s.refused++
	refused := s.refused
	now := time.Now()
	logIt := refused == 1 || now.Sub(s.refusedLog) >= refuseLogEvery
	if logIt {
		s.refusedLog = now
	}
	s.mu.Unlock()
	nc.Close()
	if logIt {
		s.opts.logger.Warn("rpc: connection limit reached; closing new connections", "addr", nc.LocalAddr(), "max_conns", s.opts.maxConns, "refused", refused)
	}
	return false
}

// startReaperLocked starts the idle reaper with the first connection; s.mu
// is held. It stops when Shutdown or Close cancel baseCtx, or once the
// server has no connection left, and s.wg waits for it.
func (s *Server) startReaperLocked() {
	if s.reaping {
		return
	}
	s.reaping = true
	s.wg.Add(1)
	go s.reap()
}

// reap drains connections idle for the idle timeout and closes them once
// drained.
func (s *Server) reap() {
	defer s.wg.Done()
	tick := time.NewTicker(min(max(s.opts.idleTimeout/4, 5*time.Millisecond), time.Second))
	defer tick.Stop()
	var conns []*serverConn
	for {
		select {
		case <-s.baseCtx.Done():
			return
		case now := <-tick.C:
			s.mu.Lock()
			if len(s.conns) == 0 {
				// Nothing to watch: stop, so that a server whose
				// connections all ended (DefaultServer with ServeConn, say)
				// holds no goroutine; the next connection starts another.
				s.reaping = false
				s.mu.Unlock()
				return
			}
			for c := range s.conns {
				conns = append(conns, c)
			}
			s.mu.Unlock()
			for _, c := range conns {
				c.checkIdle(now)
			}
			clear(conns)
			conns = conns[:0]
		}
	}
}

// checkIdle is the reaper's look at one connection: one that read no
// request for the idle timeout, with nothing running, gets a draining frame
// that says it is idle (StatusIdle); it is closed once drained (section 11
// of PROTOCOL.md: acknowledged, or after the drain grace). Pings do not
// count as activity. Connections Shutdown is draining are left to it.
func (c *serverConn) checkIdle(now time.Time) {
	if !c.started.Load() || c.draining.Load() {
		return
	}
	if c.idleDraining.Load() {
		if c.drained() {
			c.close()
		}
		return
	}
	if n := c.frames.Load(); n != c.seenFrames || c.running.Load() > 0 {
		c.seenFrames, c.activeAt = n, now
		return
	}
	if now.Sub(c.activeAt) >= c.srv.opts.idleTimeout {
		c.drainStart.Store(now.UnixNano())
		c.idleDraining.Store(true)
		_ = c.w.WriteControlStatus(wire.TypeDraining, wire.StatusIdle, 0)
	}
}

// handshake completes a TLS handshake within the read timeout, so that a
// client that connects and sends nothing costs at most that long. It
// reports whether to go on serving.
func (c *serverConn) handshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	_ = tc.SetDeadline(time.Now().Add(c.srv.opts.readTimeout))
	if err := tc.HandshakeContext(c.srv.baseCtx); err != nil {
		c.srv.opts.logger.Info("rpc: TLS handshake failed", "remote", c.nc.RemoteAddr(), "err", err)
		return false
	}
	_ = tc.SetDeadline(time.Time{})
	return true
}

// refuseTooLarge answers a request whose payload exceeds the frame limit
// (but not the hard limit) with StatusTooLarge and skips the payload
// without buffering it; a oneway is dropped. The connection goes on.
func (c *serverConn) refuseTooLarge(h *wire.Header) error {
	n, limit := h.PayloadLen(), c.srv.opts.maxFrame
	var mb [wire.MaxMethodLen]byte
	method := mb[:h.MethodLen]
	if err := c.fr.readFull(method); err != nil {
		return err
	}
	if h.Type == wire.TypeRequest {
		c.writeError(h.Seq, wire.StatusTooLarge, fmt.Sprintf("rpc: %s: request of %d bytes exceeds the server's frame limit of %d", method, n, limit))
	} else {
		c.srv.opts.logger.Info("rpc: oneway call dropped: request too large", "remote", c.nc.RemoteAddr(), "method", string(method), "bytes", n, "max", limit)
	}
	return c.fr.skip(n - len(method))
}

// readFailed logs why reading the connection failed, before it is closed.
func (c *serverConn) readFailed(err error) {
	log := c.srv.opts.logger
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Info("rpc: closing connection: frame not complete within the read timeout", "remote", c.nc.RemoteAddr(), "timeout", c.srv.opts.readTimeout)
	case isWireError(err):
		log.Warn("rpc: closing connection: bad frame", "remote", c.nc.RemoteAddr(), "err", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		log.Warn("rpc: closing connection: truncated frame", "remote", c.nc.RemoteAddr(), "err", err)
	case isClosedConnErr(err):
	default:
		log.Info("rpc: connection read failed", "remote", c.nc.RemoteAddr(), "err", err)
	}
}

// isClosed reports whether close was called.
func (c *serverConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// isWireError reports whether err says a frame broke the wire format.
func isWireError(err error) bool {
	for _, e := range []error{wire.ErrBadMagic, wire.ErrVersion, wire.ErrBadType, wire.ErrTooLarge, wire.ErrMalformed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
