package rpc

import (
	"errors"
	"fmt"

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
	off := int(h.MethodLen) + int(h.MetaLen)
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
	a.completed(h.Status, out.b[int(h.MethodLen):off], out.b[off:])
	out.release()
	if cc.draining.Load() {
		cc.closeIfIdle()
	}
	return nil
}

// pong reads a pong; the server's answer to the client's hello lists the
// features it understands.
func (cc *clientConn) pong(h *wire.Header) error {
	n := h.PayloadLen()
	if n == 0 || n > maxHello || h.Seq != 0 {
		return cc.fr.skip(n)
	}
	var b [maxHello]byte
	if err := cc.fr.readFull(b[:n]); err != nil {
		return err
	}
	s2, chunks := wire.ParseFeatures(b[int(h.MethodLen) : int(h.MethodLen)+int(h.MetaLen)])
	if s2 {
		cc.peerS2.Store(true)
	}
	if chunks {
		cc.peerChunks.Store(true)
	}
	return nil
}
