package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func header(h Header) []byte {
	b := make([]byte, HeaderSize)
	PutHeader(b, &h)
	return b
}

func TestHeaderRoundTrip(t *testing.T) {
	tests := []Header{
		{Type: TypeRequest, Codec: 1, MethodLen: 8, Seq: 1, MetaLen: 19, BodyLen: 3},
		{Type: TypeResponse, Codec: 2, Status: StatusInternalError, Seq: 1<<64 - 1, BodyLen: 100},
		{Type: TypeOneway, Codec: 1, MethodLen: MaxMethodLen, Seq: 42},
		{Type: TypePing, Seq: 7},
		{Type: TypePong, Seq: 7},
		{Type: TypeCancel, Seq: 99},
		{Type: TypeDraining},
	}
	for _, give := range tests {
		b := header(give)
		if b[0] != Magic0 || b[1] != Magic1 || b[2] != Version {
			t.Errorf("PutHeader(%+v) starts % x, want 5e ed 01", give, b[:3])
		}
		got, err := ParseHeader(b, DefaultMaxFrameSize)
		if err != nil {
			t.Errorf("ParseHeader(PutHeader(%+v)) error = %v", give, err)
			continue
		}
		if got != give {
			t.Errorf("ParseHeader(PutHeader(%+v)) = %+v", give, got)
		}
		if n := got.PayloadLen(); n != int(give.MethodLen)+int(give.MetaLen)+int(give.BodyLen) {
			t.Errorf("PayloadLen() = %d", n)
		}
	}
}

// TestHeaderLayout pins the byte layout documented in docs/PROTOCOL.md.
func TestHeaderLayout(t *testing.T) {
	b := header(Header{Type: TypeRequest, Codec: 1, Status: 0, MethodLen: 0x0102, Seq: 0x0304050607080910, MetaLen: 0x11121314, BodyLen: 0x15161718})
	want := []byte{
		0x5e, 0xed, 0x01, 0x01, 0x01, 0x00, 0x01, 0x02,
		0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x10,
		0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
	}
	if !bytes.Equal(b, want) {
		t.Errorf("PutHeader = % x, want % x", b, want)
	}
}

func TestParseHeaderErrors(t *testing.T) {
	valid := header(Header{Type: TypeRequest, Codec: 1, MethodLen: 8, Seq: 1, BodyLen: 10})
	with := func(f func(b []byte)) []byte {
		b := bytes.Clone(valid)
		f(b)
		return b
	}
	tests := []struct {
		name     string
		give     []byte
		maxFrame int
		wantErr  error
	}{
		{name: "short", give: valid[:HeaderSize-1], wantErr: ErrMalformed},
		{name: "empty", give: nil, wantErr: ErrMalformed},
		{name: "bad magic 0", give: with(func(b []byte) { b[0] = 'G' }), wantErr: ErrBadMagic},
		{name: "bad magic 1", give: with(func(b []byte) { b[1] = 0 }), wantErr: ErrBadMagic},
		{name: "http", give: []byte("GET / HTTP/1.1\r\nHost: x\r\n"), wantErr: ErrBadMagic},
		{name: "all 0xff", give: bytes.Repeat([]byte{0xff}, HeaderSize), wantErr: ErrBadMagic},
		{name: "version 0", give: with(func(b []byte) { b[2] = 0 }), wantErr: ErrVersion},
		{name: "version 2", give: with(func(b []byte) { b[2] = 2 }), wantErr: ErrVersion},
		{name: "type 0", give: with(func(b []byte) { b[3] = 0 }), wantErr: ErrBadType},
		{name: "type 9", give: with(func(b []byte) { b[3] = 9 }), wantErr: ErrBadType},
		{name: "type 255", give: with(func(b []byte) { b[3] = 255 }), wantErr: ErrBadType},
		{name: "method too long", give: with(func(b []byte) { binary.BigEndian.PutUint16(b[6:], MaxMethodLen+1) }), wantErr: ErrMalformed},
		{name: "method on response", give: with(func(b []byte) { b[3] = byte(TypeResponse) }), wantErr: ErrMalformed},
		{name: "method on ping", give: with(func(b []byte) { b[3] = byte(TypePing) }), wantErr: ErrMalformed},
		{name: "method on cancel", give: with(func(b []byte) { b[3] = byte(TypeCancel) }), wantErr: ErrMalformed},
		{name: "body too large", give: with(func(b []byte) { binary.BigEndian.PutUint32(b[20:], 0xffffffff) }), wantErr: ErrTooLarge},
		{name: "meta too large", give: with(func(b []byte) { binary.BigEndian.PutUint32(b[16:], 0xffffffff) }), wantErr: ErrTooLarge},
		{name: "sum overflows uint32", give: with(func(b []byte) {
			binary.BigEndian.PutUint32(b[16:], 0x80000000)
			binary.BigEndian.PutUint32(b[20:], 0x80000000)
		}), maxFrame: 1<<31 - 1, wantErr: ErrTooLarge},
		{name: "one over limit", give: valid, maxFrame: 8 + 10 - 1, wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		maxFrame := tt.maxFrame
		if maxFrame == 0 {
			maxFrame = DefaultMaxFrameSize
		}
		_, err := ParseHeader(tt.give, maxFrame)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseHeader(%s) error = %v, want %v", tt.name, err, tt.wantErr)
		}
	}
	if _, err := ParseHeader(valid, 8+10); err != nil {
		t.Errorf("ParseHeader(frame at the limit) error = %v, want nil", err)
	}
}

func TestCheckPrefix(t *testing.T) {
	tests := []struct {
		give    []byte
		wantErr error
	}{
		{give: nil},
		{give: []byte{Magic0}},
		{give: []byte{Magic0, Magic1}},
		{give: []byte{Magic0, Magic1, Version}},
		{give: []byte{Magic0, Magic1, Version, 99}},
		{give: []byte("G"), wantErr: ErrBadMagic},
		{give: []byte("GET / HTTP/1.0\r\n\r\n"), wantErr: ErrBadMagic},
		{give: []byte{Magic0, 0}, wantErr: ErrBadMagic},
		{give: []byte{Magic0, Magic1, 2}, wantErr: ErrVersion},
	}
	for _, tt := range tests {
		if err := CheckPrefix(tt.give); !errors.Is(err, tt.wantErr) {
			t.Errorf("CheckPrefix(% x) error = %v, want %v", tt.give, err, tt.wantErr)
		}
	}
}

func TestTypeString(t *testing.T) {
	for typ := TypeRequest; typ <= TypeContinuation; typ++ {
		if s := typ.String(); s == "" || s[0] == 't' && s[:4] == "type" {
			t.Errorf("Type(%d).String() = %q, want a name", typ, s)
		}
	}
	if s := Type(42).String(); s != "type(42)" {
		t.Errorf("Type(42).String() = %q, want type(42)", s)
	}
}
