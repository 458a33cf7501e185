package rpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// Large messages travel in chunks (docs/PROTOCOL.md, "Chunks") so that
// they do not hold every other frame of their connection behind them: a
// body over chunkSize bytes, to a peer that announced chunks, goes as a
// first frame carrying the method, metadata and the first chunkSize bytes
// of the body with wire.FlagMore, then continuation frames of the same seq.
// Each chunk is handed to the connection's writer on its own, so frames of
// other calls queued meanwhile go between two chunks.

const (
	// chunkSize is the most body bytes a chunked frame carries.
	chunkSize = 64 << 10
	// maxPartials is how many chunked messages may be in flight in one
	// direction of a connection at once: a sender waits for a slot, a
	// receiver closes a connection whose peer exceeds it. One, so that a
	// receiver reassembles at most one message per connection, as it reads
	// at most one unchunked frame: with several, a reader waiting for
	// buffer budget for one could wait on bytes held by another whose rest
	// is behind it in the stream. Small frames still pass between chunks.
	maxPartials = 1
)

// chunkAbort is the status of a continuation frame that ends its message
// unfinished: the sender gave up, the receiver drops what it has.
const chunkAbort wire.Status = 1

// errAborted reports a chunked message that its sender abandoned.
var errAborted = errors.New("message abandoned by its sender before its end")

// errTooManyPartials reports a peer with more chunked messages in flight
// than maxPartials.
var errTooManyPartials = fmt.Errorf("%w: more than %d chunked messages in flight", wire.ErrMalformed, maxPartials)

// needsChunks reports whether a frame whose body is bodyLen bytes goes in
// chunks to a peer that does (chunks) or does not accept them.
func needsChunks(bodyLen int, chunks bool) bool { return chunks && bodyLen > chunkSize }

// writeChunked writes frame, whose header is hdr (not yet written into
// it), as a first frame and continuation frames, each handed to w on its
// own and waited for. Their headers are written in place, over the tail of
// the previous chunk once it has been handed over, so nothing is copied.
// abandon, if not nil, is asked between chunks whether the caller gave up;
// then, or when the deadline passes, the message is ended with an abort
// frame and an error is returned.
func writeChunked(ctx context.Context, w *wire.Writer, deadline time.Time, frame []byte, hdr wire.Header, abandon func() bool) error {
	bodyStart := wire.HeaderSize + int(hdr.MethodLen) + int(hdr.MetaLen)
	first := min(chunkSize, len(frame)-bodyStart)
	h := hdr
	h.Codec |= wire.FlagMore
	h.BodyLen = uint32(first)
	wire.PutHeader(frame, &h)
	err := w.WriteBy(ctx, deadline, frame[:bodyStart+first], true)
	off := bodyStart + first
	for err == nil && off < len(frame) {
		if abandon != nil && abandon() {
			err = errAborted
			break
		}
		n := min(chunkSize, len(frame)-off)
		ch := wire.Header{Type: wire.TypeContinuation, Seq: hdr.Seq, BodyLen: uint32(n)}
		if off+n < len(frame) {
			ch.Codec = wire.FlagMore
		}
		wire.PutHeader(frame[off-wire.HeaderSize:], &ch)
		err = w.WriteBy(ctx, deadline, frame[off-wire.HeaderSize:off+n], true)
		off += n
	}
	if err == nil || off == len(frame) && errors.Is(err, wire.ErrWriteContinues) {
		return err // the whole message is on its way
	}
	// The message ends unfinished (if the connection still works).
	_ = w.WriteControlStatus(wire.TypeContinuation, chunkAbort, hdr.Seq)
	return err
}

// partial is a chunked message being reassembled.
type partial struct {
	h  wire.Header // the first frame's; BodyLen counts the body so far
	fb *frameBuf   // the payload so far in fb.b[:n]; nil when skipping
	n  int
	// tooLarge is set once the body went over the frame limit; aborted
	// when the sender ended it unfinished.
	tooLarge, aborted bool
}

// partials are the chunked messages a connection's reader is reassembling,
// by seq. Only the reader uses it.
type partials map[uint64]*partial

// start reads the payload of a first frame (wire.FlagMore set) of n bytes,
// or skips it when skip is set, and records the message.
func (ps *partials) start(fr *frameReader, h *wire.Header, skip bool) error {
	if *ps == nil {
		*ps = make(partials)
	}
	if len(*ps) >= maxPartials {
		return errTooManyPartials
	}
	if _, dup := (*ps)[h.Seq]; dup {
		return fmt.Errorf("%w: chunked message seq %d started twice", wire.ErrMalformed, h.Seq)
	}
	p := &partial{h: *h, tooLarge: skip}
	if skip {
		if err := fr.skip(h.PayloadLen()); err != nil {
			return err
		}
	} else {
		fb, err := fr.payload(h.PayloadLen())
		if err != nil {
			return err
		}
		p.fb, p.n = fb, h.PayloadLen()
	}
	(*ps)[h.Seq] = p
	return nil
}

// next reads a continuation frame into its message. It returns the message
// once its last frame has arrived (removed from ps; the caller releases
// p.fb), nil before.
func (ps *partials) next(fr *frameReader, h *wire.Header) (*partial, error) {
	p := (*ps)[h.Seq]
	if p == nil && h.Status == chunkAbort && h.PayloadLen() == 0 {
		return nil, nil // an abort racing the message's last chunk: it ended
	}
	if p == nil {
		return nil, fmt.Errorf("%w: continuation frame for seq %d, which has no message in flight", wire.ErrMalformed, h.Seq)
	}
	n := int(h.BodyLen)
	if p.fb != nil && p.n+n > fr.maxFrame {
		p.tooLarge = true
		p.fb.release()
		p.fb = nil
	}
	if p.fb == nil {
		if err := fr.skip(h.PayloadLen()); err != nil {
			return nil, err
		}
	} else {
		if p.n+n > len(p.fb.b) && p.n+n > cap(p.fb.b) {
			if err := p.grow(fr, p.n+n); err != nil {
				return nil, err
			}
		}
		p.fb.b = p.fb.b[:cap(p.fb.b)]
		if err := fr.readFull(p.fb.b[p.n : p.n+n]); err != nil {
			return nil, err
		}
		p.n += n
		p.h.BodyLen += uint32(n)
	}
	if h.Status == chunkAbort {
		p.aborted = true
	} else if h.Codec&wire.FlagMore != 0 {
		return nil, nil
	}
	delete(*ps, h.Seq)
	if p.fb != nil {
		p.fb.b = p.fb.b[:p.n]
		if !p.aborted {
			fr.lastChunked = p.n
		}
	}
	p.h.Codec &^= wire.FlagMore
	return p, nil
}

// grow moves the payload into a buffer for at least need bytes (doubling,
// up to the frame limit), charged to the reader's budget. When the
// connection's previous chunked message was a little larger than doubling
// gives (a 1 MiB body plus its header), the buffer takes that size at once
// instead of doubling twice: a copy less and half the memory, and still at
// most a quarter more than doubling would hold.
func (p *partial) grow(fr *frameReader, need int) error {
	size := min(max(need, 2*cap(p.fb.b)), fr.maxFrame)
	if last := fr.lastChunked; last > size && last <= 2*cap(p.fb.b)+cap(p.fb.b)/4 && last <= fr.maxFrame {
		size = last
	}
	if p.fb.od { // the overdraft moves with the payload
		p.fb.od, fr.od = false, true
	}
	nb, err := fr.alloc(size, false)
	if err != nil {
		p.fb.od, fr.od = fr.od, false
		return err
	}
	nb.od, fr.od = fr.od, false
	copy(nb.b, p.fb.b[:p.n])
	p.fb.release()
	p.fb = nb
	return nil
}

// releaseAll drops every message in flight (the connection ended).
func (ps *partials) releaseAll() {
	for seq, p := range *ps {
		if p.fb != nil {
			p.fb.release()
		}
		delete(*ps, seq)
	}
}

// unsentLimit bounds the bytes written to a connection's socket but not
// yet sent (see limitUnsent): chunks beyond it wait in the writer, where
// small frames pass them.
const unsentLimit = 128 << 10
