package wire

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Metadata is a sequence of entries, each
//
//	keylen u8 | key (keylen bytes, 1..255) | vallen u16 BE | value (vallen bytes)
//
// Keys starting with ':' are reserved for the protocol: MetaTimeout in
// requests, MetaCode in responses.

// MetaTimeout is the reserved key that carries a request's remaining time
// budget: 8 bytes, big-endian nanoseconds. The server derives the handler's
// deadline from its own clock, so the peers' clocks need not agree.
const MetaTimeout = ":timeout"

// MetaCode is the reserved response key that carries the code of a coded
// application error (status 1): 8 bytes, a big-endian two's-complement
// int64. The body holds the error's message, as for any status-1 response.
const MetaCode = ":code"

// MaxMetaValueLen is the longest metadata value.
const MaxMetaValueLen = 1<<16 - 1

// AppendMeta appends one metadata entry. It returns an error for an empty or
// overlong key or an overlong value.
func AppendMeta(dst []byte, key string, val []byte) ([]byte, error) {
	if len(key) == 0 || len(key) > 255 {
		return dst, fmt.Errorf("%w: metadata key of %d bytes", ErrMalformed, len(key))
	}
	if len(val) > MaxMetaValueLen {
		return dst, fmt.Errorf("%w: metadata value of %d bytes for %q", ErrMalformed, len(val), key)
	}
	dst = append(dst, byte(len(key)))
	dst = append(dst, key...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(val)))
	return append(dst, val...), nil
}

// AppendTimeout appends the MetaTimeout entry for d.
func AppendTimeout(dst []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	dst = append(dst, byte(len(MetaTimeout)))
	dst = append(dst, MetaTimeout...)
	dst = binary.BigEndian.AppendUint16(dst, 8)
	return binary.BigEndian.AppendUint64(dst, uint64(d))
}

// ParseMeta calls fn for every entry of meta in order. key and val alias
// meta. It returns an error wrapping ErrMalformed when meta is truncated, and
// the first error fn returns.
func ParseMeta(meta []byte, fn func(key, val []byte) error) error {
	for off := 0; off < len(meta); {
		kl := int(meta[off])
		off++
		if kl == 0 || off+kl+2 > len(meta) {
			return fmt.Errorf("%w: truncated metadata at offset %d", ErrMalformed, off-1)
		}
		key := meta[off : off+kl]
		off += kl
		vl := int(binary.BigEndian.Uint16(meta[off:]))
		off += 2
		if off+vl > len(meta) {
			return fmt.Errorf("%w: truncated metadata value for %q", ErrMalformed, key)
		}
		if err := fn(key, meta[off:off+vl]); err != nil {
			return err
		}
		off += vl
	}
	return nil
}

// AppendCode appends the MetaCode entry for code.
func AppendCode(dst []byte, code int64) []byte {
	dst = append(dst, byte(len(MetaCode)))
	dst = append(dst, MetaCode...)
	dst = binary.BigEndian.AppendUint16(dst, 8)
	return binary.BigEndian.AppendUint64(dst, uint64(code))
}

// ParseCode decodes a MetaCode value.
func ParseCode(val []byte) (int64, error) {
	if len(val) != 8 {
		return 0, fmt.Errorf("%w: %s value of %d bytes, want 8", ErrMalformed, MetaCode, len(val))
	}
	return int64(binary.BigEndian.Uint64(val)), nil
}

// ParseTimeout decodes a MetaTimeout value.
func ParseTimeout(val []byte) (time.Duration, error) {
	if len(val) != 8 {
		return 0, fmt.Errorf("%w: %s value of %d bytes, want 8", ErrMalformed, MetaTimeout, len(val))
	}
	d := binary.BigEndian.Uint64(val)
	if d > 1<<62 {
		d = 1 << 62
	}
	return time.Duration(d), nil
}
