package wire

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseHeader checks that ParseHeader never panics, that every header
// it accepts respects the limits, and that accepted headers round-trip.
func FuzzParseHeader(f *testing.F) {
	for _, h := range []Header{
		{Type: TypeRequest, Codec: 1, MethodLen: 8, Seq: 1, MetaLen: 19, BodyLen: 3},
		{Type: TypeResponse, Status: StatusBadRequest, Seq: 2, BodyLen: 11},
		{Type: TypePing},
	} {
		f.Add(header(h), 1024)
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), DefaultMaxFrameSize)
	f.Add(bytes.Repeat([]byte{0xff}, HeaderSize), DefaultMaxFrameSize)
	f.Fuzz(func(t *testing.T, b []byte, maxFrame int) {
		if maxFrame <= 0 {
			maxFrame = DefaultMaxFrameSize // options never pass a non-positive limit
		}
		h, err := ParseHeader(b, maxFrame)
		if err != nil {
			for _, sentinel := range []error{ErrBadMagic, ErrVersion, ErrBadType, ErrTooLarge, ErrMalformed} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("ParseHeader error %v wraps no sentinel", err)
		}
		if len(b) < HeaderSize {
			t.Fatalf("ParseHeader accepted %d bytes", len(b))
		}
		if h.PayloadLen() > maxFrame || h.PayloadLen() < 0 {
			t.Fatalf("accepted payload of %d bytes with limit %d", h.PayloadLen(), maxFrame)
		}
		if h.MethodLen > MaxMethodLen || (h.MethodLen > 0 && h.Type != TypeRequest && h.Type != TypeOneway) {
			t.Fatalf("accepted method length %d on %s", h.MethodLen, h.Type)
		}
		if err := CheckPrefix(b); err != nil {
			t.Fatalf("CheckPrefix rejects an accepted header: %v", err)
		}
		if got := header(h); !bytes.Equal(got, b[:HeaderSize]) {
			t.Fatalf("PutHeader(ParseHeader(% x)) = % x", b[:HeaderSize], got)
		}
	})
}

// FuzzParseMeta checks that ParseMeta never panics or reads out of bounds,
// and that what it parses re-encodes to the same bytes.
func FuzzParseMeta(f *testing.F) {
	good, _ := AppendMeta(nil, "trace", []byte("abc"))
	f.Add(good)
	f.Add(AppendTimeout(nil, 5e9))
	f.Add(AppendTimeout(good, 1))
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{1, 'a', 0xff, 0xff})
	f.Fuzz(func(t *testing.T, meta []byte) {
		var re []byte
		err := ParseMeta(meta, func(k, v []byte) error {
			var err error
			if string(k) == MetaTimeout {
				_, _ = ParseTimeout(v)
			}
			re, err = AppendMeta(re, string(k), v)
			return err
		})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseMeta error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(re, meta) {
			t.Fatalf("re-encoded metadata % x differs from % x", re, meta)
		}
	})
}
