package wire

import (
	"errors"
	"math"
	"testing"
)

func TestCodeMeta(t *testing.T) {
	for _, give := range []int64{0, 1, 404, -2, math.MaxInt64, math.MinInt64} {
		meta := AppendCode(nil, give)
		var got int64
		n := 0
		err := ParseMeta(meta, func(k, v []byte) error {
			n++
			if string(k) != MetaCode {
				t.Errorf("AppendCode(%d) key = %q, want %q", give, k, MetaCode)
			}
			var err error
			got, err = ParseCode(v)
			return err
		})
		if err != nil || n != 1 || got != give {
			t.Errorf("ParseCode(AppendCode(%d)) = %d (%d entries), %v; want %d", give, got, n, err, give)
		}
	}
	if _, err := ParseCode([]byte{1, 2, 3}); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseCode(3 bytes) error = %v, want ErrMalformed", err)
	}
}
