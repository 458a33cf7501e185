package rpc

import (
	"fmt"

	"github.com/seedrpc/rpc/internal/compress"
	"github.com/seedrpc/rpc/internal/wire"
)

// WithCompression compresses message bodies whose encoded size is at least
// minSize bytes (S2 block compression: a few hundred microseconds per MiB);
// smaller bodies, and bodies that would not shrink by an eighth, go as they
// are. Zero or less turns it off, the default: compression costs CPU on both
// sides and pays only on slow links or with compressible payloads.
//
// On a client it compresses requests; on a server it compresses replies, and
// only to clients that announced support (every client of this package does
// when it connects) or sent compressed requests, so older clients keep
// working. Both sides always accept compressed bodies, whatever this option.
// A compressed body that would inflate past the receiver's max frame size
// fails its call alone with ErrTooLarge before anything is allocated for it.
func WithCompression(minSize int) Option {
	return sharedOption{
		s: func(o *serverOptions) { o.compressMin = max(0, minSize) },
		c: func(o *clientOptions) { o.compressMin = max(0, minSize) },
	}
}

// compressBody compresses the body that makes up out[bodyStart:] in place
// (through a pooled scratch buffer) when it is at least minSize bytes and
// compresses well; it reports whether it did. minSize 0: never.
func compressBody(out *[]byte, bodyStart, minSize int) bool {
	buf := *out
	if minSize <= 0 || len(buf)-bodyStart < minSize {
		return false
	}
	n := len(buf) - bodyStart
	sp := getBuf(n + n/6 + 64) // room for the worst case: no growing
	*sp = (*sp)[:0]
	defer putBuf(sp)
	enc, ok := compress.Compress(*sp, buf[bodyStart:])
	*sp = enc[:0]
	if !ok {
		return false
	}
	*out = append(buf[:bodyStart], enc...)
	return true
}

// inflate replaces the compressed body that makes up fb.b[off:] by its
// decompression, in a buffer charged to the reader's budget. A body that
// would take the payload over the frame limit fails with an error matching
// ErrTooLarge before anything is allocated; fb is released either way on
// success, and left to the caller on failure.
func (fr *frameReader) inflate(fb *frameBuf, off int) (*frameBuf, error) {
	src := fb.b[off:]
	size, err := compress.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if size > fr.maxFrame-off {
		return nil, fmt.Errorf("%w: compressed body of %d bytes inflates to %d (limit %d)", ErrTooLarge, len(src), size, fr.maxFrame-off)
	}
	out, err := fr.alloc(off+size, off+size <= smallPayload)
	if err != nil {
		fr.budget.release(0, false, &fr.od)
		return nil, err
	}
	out.od, fr.od = fr.od, false
	copy(out.b, fb.b[:off])
	if _, err := compress.Decompress(out.b[off:off], src, size); err != nil {
		out.release()
		return nil, err
	}
	out.b = out.b[:off+size]
	fb.release()
	return out, nil
}

// helloFrame is the ping a client sends right after connecting: it lists
// the features the client understands (docs/PROTOCOL.md, "Compression and
// chunks"). A server's answer (Server.helloReply) lists its own, and its
// limit of calls per connection.
var helloFrame = wire.AppendHello(nil, wire.TypePing, 0, wire.HelloFeatures, 0)

// maxHello is the largest hello payload read; a larger ping payload is
// skipped unread.
const maxHello = 1 << 10
