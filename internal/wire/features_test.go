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
	if got := hex.EncodeToString(AppendHello(nil, TypePing, 0, HelloFeatures)); got != want {
		t.Errorf("hello = %s, want %s", got, want)
	}
}

func TestParseFeatures(t *testing.T) {
	meta, _ := AppendMeta(nil, "x", []byte("s2"))
	meta, _ = AppendMeta(meta, MetaFeatures, []byte(" chunks , zstd,s2"))
	if s2, chunks := ParseFeatures(meta); !s2 || !chunks {
		t.Errorf("ParseFeatures(%q) = %v, %v; want both", meta, s2, chunks)
	}
	for _, bad := range [][]byte{nil, {5, 'a'}, meta[:len(meta)-3]} {
		if s2, chunks := ParseFeatures(bad); s2 && chunks {
			t.Errorf("ParseFeatures(%q) = both, want not both", bad)
		}
	}
}
