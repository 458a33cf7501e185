package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// readCompressed reads the response of a whose body is compressed,
// decompresses it and completes a (nil: nobody waits). A body that would
// inflate past the client's frame limit fails the call alone with
// ErrTooLarge. An error return ends the connection.
func (cc *clientConn) readCompressed(a *attempt, h *wire.Header) error {
	if a == nil {
		return cc.fr.skip(h.PayloadLen())
	}
	if h.Codec&wire.CompressMask != wire.CompressS2 {
		err := fmt.Errorf("%w: unknown compression %#x in a response", wire.ErrMalformed, h.Codec&wire.CompressMask)
		a.failed(err, true)
		return err
	}
	fb, err := cc.fr.payload(h.PayloadLen())
	if err != nil {
		a.failed(err, true)
		return err
	}
	return cc.complete(a, h, fb, false)
}

// complete completes a with the response whose header is h and payload
// fb (released), decompressing its body first if need be. With async, the
// reply is decoded on a goroutine of its own, so that decoding a large
// reply does not hold the connection's other responses behind it. An
// error return ends the connection.
func (cc *clientConn) complete(a *attempt, h *wire.Header, fb *frameBuf, async bool) error {
	off := int(h.MethodLen) + int(h.MetaLen)
	if h.Codec&wire.CompressMask == wire.CompressS2 {
		out, err := cc.fr.inflate(fb, off)
		if err != nil {
			fb.release()
			if errors.Is(err, ErrTooLarge) {
				a.completed(wire.StatusTooLarge, nil, fmt.Appendf(nil, "rpc: reply: %v", err))
				return nil
			}
			a.failed(err, true)
			return err
		}
		fb = out
	}
	status, metaStart := h.Status, int(h.MethodLen)
	finish := func() {
		a.completed(status, fb.b[metaStart:off], fb.b[off:])
		fb.release()
		if cc.draining.Load() {
			cc.closeIfIdle()
		}
	}
	if !async || !cc.pool.client.goAsync(finish) {
		finish()
	}
	return nil
}

// continuation reads a continuation frame of a chunked response and
// completes its call once the response is whole; the call stayed pending
// until then, so that a connection told to drain is not closed under it.
// An error return ends the connection.
func (cc *clientConn) continuation(h *wire.Header) error {
	p, err := cc.parts.next(&cc.fr, h)
	if err != nil || p == nil {
		return err
	}
	cc.mu.Lock()
	a := cc.pending[p.h.Seq]
	if a != nil {
		delete(cc.pending, p.h.Seq)
		cc.load.Add(-1)
	}
	cc.mu.Unlock()
	switch {
	case a == nil: // the caller gave up meanwhile
	case p.aborted:
		a.failed(errAborted, true)
	case p.tooLarge:
		a.completed(wire.StatusTooLarge, nil, fmt.Appendf(nil, "rpc: chunked reply exceeds the client's frame limit of %d", cc.fr.maxFrame))
	default:
		if p.h.BodyLen >= cc.pool.client.bulkMin {
			cc.pool.client.noteLargeReply(a.call.ServiceMethod) // client_bulk.go
		}
		return cc.complete(a, &p.h, p.fb, true)
	}
	if p.fb != nil {
		p.fb.release()
	}
	if cc.draining.Load() {
		cc.closeIfIdle()
	}
	return nil
}

// writeChunked writes a large request in chunks, at most maxPartials at
// once on the connection.
func (cc *clientConn) writeChunked(ctx context.Context, deadline time.Time, frame []byte, hdr wire.Header, abandon func() bool) error {
	select {
	case cc.chunkSem <- struct{}{}:
	default:
		var timeout <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			timeout = t.C
		}
		select {
		case cc.chunkSem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return context.DeadlineExceeded
		}
	}
	defer func() { <-cc.chunkSem }()
	return writeChunked(ctx, cc.w, deadline, frame, hdr, abandon)
}

// pong reads a pong; the server's answer to the client's hello lists the
// features it understands.
func (cc *clientConn) pong(h *wire.Header) error {
	if h.Seq == 0 {
		defer cc.helloDone() // the first pong of seq 0 answers the hello
	}
	n := h.PayloadLen()
	if n == 0 || n > maxHello || h.Seq != 0 {
		return cc.fr.skip(n)
	}
	var b [maxHello]byte
	if err := cc.fr.readFull(b[:n]); err != nil {
		return err
	}
	hello := wire.ParseHello(b[int(h.MethodLen) : int(h.MethodLen)+int(h.MetaLen)])
	if hello.S2 {
		cc.peerS2.Store(true)
	}
	if hello.Chunks {
		cc.peerChunks.Store(true)
	}
	cc.pool.connCalls.Store(int32(hello.ConnCalls)) // 0: the server gave none
	return nil
}
