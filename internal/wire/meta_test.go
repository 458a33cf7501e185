package wire

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type kv struct{ k, v string }

func TestMetaRoundTrip(t *testing.T) {
	tests := [][]kv{
		nil,
		{{"a", ""}},
		{{"trace-id", "abc123"}, {"tenant", "acme"}},
		{{strings.Repeat("k", 255), strings.Repeat("v", MaxMetaValueLen)}},
		{{"x", "1"}, {"x", "2"}}, // duplicates keep their order
	}
	for _, give := range tests {
		var b []byte
		var err error
		for _, e := range give {
			if b, err = AppendMeta(b, e.k, []byte(e.v)); err != nil {
				t.Fatalf("AppendMeta(%q) error = %v", e.k, err)
			}
		}
		var got []kv
		if err := ParseMeta(b, func(k, v []byte) error {
			got = append(got, kv{string(k), string(v)})
			return nil
		}); err != nil {
			t.Fatalf("ParseMeta(AppendMeta(%v)) error = %v", give, err)
		}
		if len(got) != len(give) {
			t.Fatalf("ParseMeta = %d entries, want %d", len(got), len(give))
		}
		for i := range got {
			if got[i] != give[i] {
				t.Errorf("entry %d = %q, want %q", i, got[i], give[i])
			}
		}
	}
}

func TestAppendMetaErrors(t *testing.T) {
	tests := []struct {
		name string
		key  string
		val  int
	}{
		{name: "empty key", key: "", val: 1},
		{name: "key too long", key: strings.Repeat("k", 256), val: 1},
		{name: "value too long", key: "k", val: MaxMetaValueLen + 1},
	}
	for _, tt := range tests {
		dst := []byte("prefix")
		got, err := AppendMeta(dst, tt.key, make([]byte, tt.val))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("AppendMeta(%s) error = %v, want ErrMalformed", tt.name, err)
		}
		if string(got) != "prefix" {
			t.Errorf("AppendMeta(%s) changed dst to %q", tt.name, got)
		}
	}
}

func TestParseMetaErrors(t *testing.T) {
	good, _ := AppendMeta(nil, "key", []byte("value"))
	tests := []struct {
		name string
		give []byte
	}{
		{name: "zero key length", give: []byte{0, 0, 0}},
		{name: "key runs past end", give: []byte{5, 'a', 'b'}},
		{name: "no value length", give: []byte{1, 'a'}},
		{name: "half value length", give: []byte{1, 'a', 0}},
		{name: "value runs past end", give: []byte{1, 'a', 0, 5, 'x'}},
		{name: "huge value length", give: []byte{1, 'a', 0xff, 0xff}},
		{name: "good then truncated", give: append(good[:len(good):len(good)], 3, 'k')},
	}
	for _, tt := range tests {
		calls := 0
		err := ParseMeta(tt.give, func(k, v []byte) error { calls++; return nil })
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseMeta(%s) error = %v, want ErrMalformed", tt.name, err)
		}
	}
	stop := errors.New("stop")
	if err := ParseMeta(good, func(k, v []byte) error { return stop }); err != stop {
		t.Errorf("ParseMeta with a failing fn = %v, want fn's error", err)
	}
}

func TestTimeoutMeta(t *testing.T) {
	tests := []struct {
		give, want time.Duration
	}{
		{give: 50 * time.Millisecond, want: 50 * time.Millisecond},
		{give: 0, want: 0},
		{give: -time.Second, want: 0},
		{give: 1<<63 - 1, want: 1 << 62},
	}
	for _, tt := range tests {
		b := AppendTimeout(nil, tt.give)
		n := 0
		err := ParseMeta(b, func(k, v []byte) error {
			n++
			if string(k) != MetaTimeout {
				t.Errorf("key = %q, want %q", k, MetaTimeout)
			}
			d, err := ParseTimeout(v)
			if err != nil {
				return err
			}
			if d != tt.want {
				t.Errorf("ParseTimeout(AppendTimeout(%v)) = %v, want %v", tt.give, d, tt.want)
			}
			return nil
		})
		if err != nil || n != 1 {
			t.Errorf("ParseMeta(AppendTimeout(%v)) = %d entries, %v", tt.give, n, err)
		}
	}
	if _, err := ParseTimeout([]byte{1, 2, 3}); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseTimeout(3 bytes) error = %v, want ErrMalformed", err)
	}
	if _, err := ParseTimeout(make([]byte, 9)); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseTimeout(9 bytes) error = %v, want ErrMalformed", err)
	}
}
