// Package compress compresses and decompresses message bodies for the wire
// layer: S2 blocks (github.com/klauspost/compress/s2, the Snappy-compatible
// block format extended with longer matches and repeat codes).
//
// S2 was chosen by measurement against zstd, gzip and flate (see
// BenchmarkCompress): on a 2-core server it costs a few hundred microseconds
// per MiB where gzip costs tens of milliseconds, it starts no goroutines and
// keeps no per-caller state, and its block header states the decompressed
// length, so a receiver can refuse a body that would inflate past its limit
// before allocating anything.
//
// Both functions are safe for concurrent use.
package compress

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
)

// Errors returned by Decompress and DecodedLen.
var (
	// ErrTooLarge reports a body whose decompressed size exceeds the limit.
	ErrTooLarge = errors.New("compress: decompressed body too large")
	// ErrCorrupt reports a body that is not a valid compressed block.
	ErrCorrupt = errors.New("compress: corrupt compressed body")
)

// Compress appends the compressed form of src to dst and returns the
// extended slice and true, but only when that saves at least an eighth of
// src's size: otherwise it returns dst unchanged and false, and the caller
// sends src as it is. Incompressible input (random or already compressed
// bytes) is detected cheaply, so a false costs little.
func Compress(dst, src []byte) (out []byte, ok bool) {
	if len(src) == 0 {
		return dst, false
	}
	maxLen := s2.MaxEncodedLen(len(src))
	if maxLen < 0 { // over 4 GiB: no frame carries that
		return dst, false
	}
	n := len(dst)
	if cap(dst)-n < maxLen {
		grown := make([]byte, n, n+maxLen)
		copy(grown, dst)
		dst = grown
	}
	enc := s2.Encode(dst[n:n+maxLen], src)
	if len(enc) > len(src)-len(src)/8 {
		return dst[:n], false
	}
	return dst[:n+len(enc)], true
}

// DecodedLen returns the decompressed size that a body produced by Compress
// declares, reading only its first bytes. A receiver can check it against a
// memory budget before calling Decompress.
func DecodedLen(src []byte) (int, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return 0, fmt.Errorf("%w: bad length header", ErrCorrupt)
	}
	return n, nil
}

// Decompress appends the decompression of src, a body produced by Compress,
// to dst and returns the extended slice. A body that would decompress to
// more than limit bytes fails with an error matching ErrTooLarge before any
// memory is allocated for it; a malformed one fails with ErrCorrupt. At most
// limit bytes are allocated whatever src claims. When dst has room for the
// result, Decompress allocates nothing. dst and src must not overlap.
//
// A block carries no checksum: a flipped bit inside a literal run decodes
// to a wrong byte rather than an error. The transport (TCP, TLS) guards
// integrity, as it does for uncompressed bodies.
func Decompress(dst, src []byte, limit int) ([]byte, error) {
	size, err := DecodedLen(src)
	if err != nil {
		return dst, err
	}
	if size > limit {
		return dst, fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, size, limit)
	}
	n := len(dst)
	if cap(dst)-n < size {
		grown := make([]byte, n, n+size)
		copy(grown, dst)
		dst = grown
	}
	dec, err := s2.Decode(dst[n:n+size], src)
	if err != nil || len(dec) != size {
		return dst[:n], fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return dst[:n+size], nil
}
