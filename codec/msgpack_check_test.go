package codec

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func TestCheckMsgpack(t *testing.T) {
	tests := []struct {
		name    string
		give    []byte
		wantErr bool
	}{
		{"positive fixint", []byte{0x7f}, false},
		{"negative fixint", []byte{0xe0}, false},
		{"fixmap", []byte{0x81, 0xa1, 'k', 0x01}, false},
		{"empty fixmap", []byte{0x80}, false},
		{"fixmap short", []byte{0x81, 0xa1, 'k'}, true},
		{"fixarray", []byte{0x92, 0x01, 0x02}, false},
		{"empty fixarray", []byte{0x90}, false},
		{"fixarray short", []byte{0x92, 0x01}, true},
		{"fixstr", []byte{0xa3, 'a', 'b', 'c'}, false},
		{"fixstr short", []byte{0xa3, 'a', 'b'}, true},
		{"nil", []byte{0xc0}, false},
		{"never used", []byte{0xc1}, true},
		{"false", []byte{0xc2}, false},
		{"true", []byte{0xc3}, false},
		{"bin8", []byte{0xc4, 0x02, 1, 2}, false},
		{"bin8 short", []byte{0xc4, 0x03, 1, 2}, true},
		{"bin8 no header", []byte{0xc4}, true},
		{"bin16", []byte{0xc5, 0x00, 0x01, 1}, false},
		{"bin32", []byte{0xc6, 0x00, 0x00, 0x00, 0x01, 1}, false},
		{"bin32 bomb", []byte{0xc6, 0xff, 0xff, 0xff, 0xff}, true},
		{"ext8", []byte{0xc7, 0x01, 0x05, 1}, false},
		{"ext8 empty", []byte{0xc7, 0x00, 0x05}, false},
		{"ext8 no type", []byte{0xc7, 0x00}, true},
		{"ext16", []byte{0xc8, 0x00, 0x01, 0x05, 1}, false},
		{"ext32", []byte{0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 1}, false},
		{"ext32 short", []byte{0xc9, 0x00, 0x00, 0x00, 0x02, 0x05, 1}, true},
		{"ext wrapping small map", []byte{0xc7, 0x06, 0x01, 0xde, 0x00, 0x01, 0xa1, 'k', 0x01}, false},
		{"ext wrapping map32 bomb", []byte{0xc7, 0x05, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff}, true},
		{"float32", []byte{0xca, 0, 0, 0, 0}, false},
		{"float32 short", []byte{0xca, 0, 0, 0}, true},
		{"float64", []byte{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{"uint8", []byte{0xcc, 1}, false},
		{"uint16", []byte{0xcd, 0, 1}, false},
		{"uint32", []byte{0xce, 0, 0, 0, 1}, false},
		{"uint64", []byte{0xcf, 0, 0, 0, 0, 0, 0, 0, 1}, false},
		{"uint64 short", []byte{0xcf, 0, 0, 0, 0, 0, 0, 0}, true},
		{"int8", []byte{0xd0, 1}, false},
		{"int16", []byte{0xd1, 0, 1}, false},
		{"int32", []byte{0xd2, 0, 0, 0, 1}, false},
		{"int64", []byte{0xd3, 0, 0, 0, 0, 0, 0, 0, 1}, false},
		{"fixext1", []byte{0xd4, 0x05, 1}, false},
		{"fixext2", []byte{0xd5, 0x05, 1, 2}, false},
		{"fixext4", []byte{0xd6, 0xff, 1, 2, 3, 4}, false},
		{"fixext8", []byte{0xd7, 0xff, 1, 2, 3, 4, 5, 6, 7, 8}, false},
		{"fixext16", append([]byte{0xd8, 0x05}, make([]byte, 16)...), false},
		{"fixext16 short", append([]byte{0xd8, 0x05}, make([]byte, 15)...), true},
		{"str8", []byte{0xd9, 0x01, 'a'}, false},
		{"str16", []byte{0xda, 0x00, 0x01, 'a'}, false},
		{"str32", []byte{0xdb, 0x00, 0x00, 0x00, 0x01, 'a'}, false},
		{"str32 bomb", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, true},
		{"array16", []byte{0xdc, 0x00, 0x01, 0xc0}, false},
		{"array16 header short", []byte{0xdc, 0x00}, true},
		{"array32", []byte{0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0}, false},
		{"array32 bomb", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, true},
		{"map16", []byte{0xde, 0x00, 0x01, 0x01, 0x02}, false},
		{"map16 one byte per entry", []byte{0xde, 0x00, 0x02, 0x01, 0x02}, true},
		{"map32", []byte{0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02}, false},
		{"map32 bomb", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, true},
		{"empty", nil, true},
		{"trailing byte", []byte{0x01, 0x02}, true},
		{"two values", []byte{0x90, 0x90}, true},
		{"depth 64", append(bytes.Repeat([]byte{0x91}, 63), 0x90), false},
		{"depth 64 with scalar", append(bytes.Repeat([]byte{0x91}, 64), 0x01), false},
		{"depth 65", append(bytes.Repeat([]byte{0x91}, 65), 0x01), true},
		{"siblings close levels", []byte{0x92, 0x91, 0x91, 0x01, 0x92, 0x01, 0x90}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkMsgpack(tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("checkMsgpack(% x) error = %v, want error %v", tt.give, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("checkMsgpack(% x) error = %v, want %v", tt.give, err, ErrMalformed)
			}
		})
	}
}

// TestCheckMsgpackCoverage checks that every code byte is classified: each
// one alone is either a complete value or rejected, never a panic, and the
// validator agrees with msgpack's own parser on which ones are complete.
func TestCheckMsgpackCoverage(t *testing.T) {
	for c := 0; c < 256; c++ {
		give := []byte{byte(c)}
		err := checkMsgpack(give)
		d := msgpack.NewDecoder(bytes.NewReader(give))
		skipErr := d.Skip()
		if (err == nil) != (skipErr == nil) {
			t.Errorf("checkMsgpack(%02x) error = %v, msgpack Skip error = %v; want both nil or both non-nil", c, err, skipErr)
		}
	}
}

// TestCheckMsgpackAcceptsEncodings checks that the validator accepts what
// msgpack encodes, with lengths on both sides of every size boundary.
func TestCheckMsgpackAcceptsEncodings(t *testing.T) {
	var gives []any
	for _, n := range []int{0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536} {
		gives = append(gives, strings.Repeat("s", n), bytes.Repeat([]byte{1}, n), make([]bool, n))
		m := make(map[int]bool, n)
		for i := range n {
			m[i] = true
		}
		gives = append(gives, m)
	}
	gives = append(gives,
		nil, true, false, 0, -1, -32, -33, 127, 128, 255, 256, 65536, math.MaxInt64, math.MinInt64,
		uint64(math.MaxUint64), int8(-5), int16(-300), int32(-70000), uint8(200), uint16(60000), uint32(1<<31),
		float32(1.5), 2.5, time.Unix(1, 0), time.Unix(1<<33, 5), time.Unix(1<<40, 5),
		newBenchmarkMessage(), outer{Ptr: &inner{}, Nested: [][]int32{{}}}, map[string]any{"a": []any{map[string]any{}}},
	)
	for _, give := range gives {
		data, err := msgpack.Marshal(give)
		if err != nil {
			t.Fatalf("msgpack.Marshal(%T) error = %v", give, err)
		}
		if err := checkMsgpack(data); err != nil {
			t.Errorf("checkMsgpack(msgpack.Marshal(%T of %d bytes)) error = %v, want nil", give, len(data), err)
		}
	}
}

func TestCheckMsgpackErrorMessage(t *testing.T) {
	err := checkMsgpack([]byte{0x91, 0xdd, 0xff, 0xff, 0xff, 0xff})
	want := "codec: malformed body: msgpack: array of 4294967295 values does not fit: 4294967295 values owed, 0 bytes left at offset 1"
	if err == nil || err.Error() != want {
		t.Errorf("checkMsgpack(91 dd ff ff ff ff) error = %v, want %q", err, want)
	}
}

// FuzzCheckMsgpack checks that the validator never panics, that whatever it
// accepts msgpack can parse and decode into any without panicking, and
// that msgpack's parser consumes exactly the accepted body.
func FuzzCheckMsgpack(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkMsgpack(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("checkMsgpack(% x) error = %v, want %v", data, err, ErrMalformed)
			}
			return
		}
		r := bytes.NewReader(data)
		if err := msgpack.NewDecoder(r).Skip(); err != nil || r.Len() != 0 {
			t.Fatalf("checkMsgpack(% x) accepted, but msgpack Skip error = %v with %d bytes left", data, err, r.Len())
		}
		defer func() {
			if p := recover(); p != nil {
				t.Fatalf("checkMsgpack(% x) accepted, but decoding into any panicked: %v", data, p)
			}
		}()
		var v any
		_ = msgpack.NewDecoder(bytes.NewReader(data)).Decode(&v)
	})
}

// FuzzMsgpackUnmarshal checks that Unmarshal never panics, whatever the
// body and target.
func FuzzMsgpackUnmarshal(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		targets := []any{
			new(any), new(benchmarkMessage), new(outer), new([]int), new([]any),
			new(map[string]any), new(map[int]string), new([]byte), new(string), new(time.Time),
		}
		for _, v := range targets {
			err := Msgpack{}.Unmarshal(data, v)
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Unmarshal(% x, %T) error = %v, want nil or %v", data, v, err, ErrMalformed)
			}
		}
	})
}
