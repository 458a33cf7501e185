package wire

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestHelloBytes: the hello frame is byte for byte the example of
// docs/PROTOCOL.md section 20.
func TestHelloBytes(t *testing.T) {
	want := strings.NewReplacer(" ", "", "\n", "").Replace(`5e ed 01 04 00 00 0000 0000000000000000 00000015 00000000
		09 3a 66 65 61 74 75 72 65 73 0009 73 32 2c 63 68 75 6e 6b 73`)
	want = strings.ReplaceAll(want, "\t", "")
	if got := hex.EncodeToString(AppendHello(nil, TypePing, 0, HelloFeatures, 0)); got != want {
		t.Errorf("hello = %s, want %s", got, want)
	}
}

func TestParseHello(t *testing.T) {
	meta, _ := AppendMeta(nil, "x", []byte("s2"))
	meta, _ = AppendMeta(meta, MetaFeatures, []byte(" chunks , zstd,s2"))
	if h := ParseHello(meta); !h.S2 || !h.Chunks || h.ConnCalls != 0 {
		t.Errorf("ParseHello(%q) = %+v; want both features, no limit", meta, h)
	}
	for _, bad := range [][]byte{nil, {5, 'a'}, meta[:len(meta)-3]} {
		if h := ParseHello(bad); h.S2 && h.Chunks {
			t.Errorf("ParseHello(%q) = both, want not both", bad)
		}
	}
	// A server's answer: its limit of calls per connection too.
	frame := AppendHello(nil, TypePong, 0, HelloFeatures, 256)
	h, err := ParseHeader(frame, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := ParseHello(frame[HeaderSize : HeaderSize+int(h.MetaLen)]); got != (Hello{S2: true, Chunks: true, ConnCalls: 256}) {
		t.Errorf("ParseHello(server hello) = %+v", got)
	}
	for _, v := range []string{"0", "-3", "x", "99999999999"} {
		m, _ := AppendMeta(nil, MetaConnCalls, []byte(v))
		if got := ParseHello(m).ConnCalls; got != 0 {
			t.Errorf("ParseHello(%s=%q).ConnCalls = %d, want 0 (ignored)", MetaConnCalls, v, got)
		}
	}
}
