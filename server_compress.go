package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seedrpc/rpc/internal/compress"
	"github.com/seedrpc/rpc/internal/wire"
)

// hello handles a ping with a payload: a client's hello lists the features
// it understands; the server notes them and answers with its own. A ping
// without a payload, or with one too large to be a hello, is answered with
// a plain pong. It returns false when the connection must be closed.
func (c *serverConn) hello(h *wire.Header) bool {
	n := h.PayloadLen()
	if n == 0 || n > maxHello || h.Seq != 0 {
		if !c.discard(h) {
			return false
		}
		_ = c.w.WriteControl(wire.TypePong, h.Seq)
		return true
	}
	var b [maxHello]byte
	if err := c.fr.readFull(b[:n]); err != nil {
		c.readFailed(err)
		return false
	}
	hello := wire.ParseHello(b[int(h.MethodLen) : int(h.MethodLen)+int(h.MetaLen)])
	if hello.S2 {
		c.peerS2.Store(true)
	}
	if hello.Chunks {
		c.peerChunks.Store(true)
	}
	_ = c.w.WriteHello(c.srv.helloReply)
	return true
}

// inflateRequest decompresses the body of a compressed request in place of
// bp. When it fails, bp is released and it returns nil: the request has
// been answered (too large, corrupt) and ok is true, or the connection must
// be closed (the wait for budget failed) and ok is false.
func (c *serverConn) inflateRequest(h *wire.Header, bp *frameBuf) (out *frameBuf, ok bool) {
	c.peerS2.Store(true) // a compressed request announces support
	out, err := c.fr.inflate(bp, int(h.MethodLen)+int(h.MetaLen))
	if err == nil {
		h.Codec &^= wire.CompressMask
		return out, true
	}
	method := string(bp.b[:h.MethodLen])
	bp.release()
	status := wire.StatusBadRequest
	if errors.Is(err, ErrTooLarge) {
		status = wire.StatusTooLarge
	} else if !errors.Is(err, compress.ErrCorrupt) {
		c.readFailed(err)
		return nil, false
	}
	if h.Type == wire.TypeRequest {
		c.writeError(h.Seq, status, fmt.Sprintf("rpc: %s: request body: %v", method, err))
	} else {
		c.srv.opts.logger.Info("rpc: oneway call dropped: bad compressed body", "remote", c.nc.RemoteAddr(), "method", method, "err", err)
	}
	return nil, true
}

// continuation reads a continuation frame of a chunked request and
// dispatches the request once complete. It returns false when the
// connection must be closed.
func (c *serverConn) continuation(h *wire.Header) bool {
	c.frames.Add(1) // an upload in progress is not idle
	p, err := c.parts.next(&c.fr, h)
	if err != nil {
		c.readFailed(err)
		return false
	}
	if p == nil {
		return true // more to come
	}
	c.reassembling.Store(len(c.parts) > 0)
	switch {
	case p.aborted:
		if p.fb != nil {
			p.fb.release()
		}
		return true
	case p.tooLarge:
		if p.h.Type == wire.TypeRequest {
			c.writeError(p.h.Seq, wire.StatusTooLarge, fmt.Sprintf("rpc: chunked request exceeds the server's frame limit of %d", c.srv.opts.maxFrame))
		}
		return true
	}
	bp := p.fb
	if p.h.Codec&wire.CompressMask == wire.CompressS2 {
		var ok bool
		if bp, ok = c.inflateRequest(&p.h, bp); !ok {
			return false
		} else if bp == nil {
			return true
		}
	}
	return c.dispatch(&p.h, bp)
}

// writeChunked writes a large reply in chunks, at most maxPartials at once
// per connection.
func (c *serverConn) writeChunked(frame []byte, hdr wire.Header) {
	c.chunkSem <- struct{}{}
	defer func() { <-c.chunkSem }()
	_ = writeChunked(context.Background(), c.w, time.Time{}, frame, hdr, nil) // a failed write closes the conn
}
