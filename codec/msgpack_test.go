package codec

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
)

func TestMsgpackRoundTrip(t *testing.T) { testRoundTrip(t, Msgpack{}) }

func TestMsgpackUnmarshalAny(t *testing.T) {
	data, err := Msgpack{}.AppendMarshal(nil, map[string]any{"a": []any{"x", true, nil}})
	if err != nil {
		t.Fatalf("AppendMarshal error = %v", err)
	}
	var got any
	if err := (Msgpack{}).Unmarshal(data, &got); err != nil {
		t.Fatalf("Unmarshal(% x) error = %v", data, err)
	}
	m, ok := got.(map[string]any)
	if !ok || len(m) != 1 {
		t.Fatalf("Unmarshal(% x) = %#v, want a map with one key", data, got)
	}
}

// TestMsgpackWireFormat pins the default wire format: structs are maps
// keyed by field name, which other languages and other versions can read.
func TestMsgpackWireFormat(t *testing.T) {
	data, err := Msgpack{}.AppendMarshal(nil, inner{Name: "n"})
	if err != nil {
		t.Fatalf("AppendMarshal error = %v", err)
	}
	want := []byte{0x82, 0xa4, 'N', 'a', 'm', 'e', 0xa1, 'n', 0xa4, 'T', 'a', 'g', 's', 0xc0}
	if !bytes.Equal(data, want) {
		t.Errorf("AppendMarshal(inner) = % x, want % x", data, want)
	}
}

func TestMsgpackUnmarshalError(t *testing.T) {
	tests := []struct {
		name   string
		give   []byte
		target any
	}{
		{"empty", nil, new(any)},
		{"truncated", []byte{0xa5, 'a'}, new(string)},
		{"trailing", []byte{0x01, 0x02}, new(int)},
		{"wrong type", []byte{0xa1, 'a'}, new(int)},
		{"reserved code", []byte{0xc1}, new(any)},
		{"unknown ext", []byte{0xd4, 0x05, 0x00}, new(any)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Msgpack{}.Unmarshal(tt.give, tt.target)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Unmarshal(% x) error = %v, want %v", tt.give, err, ErrMalformed)
			}
		})
	}
}

// TestMsgpackPanicsAreErrors checks that types msgpack v5.4.1 panics on
// (it has no encoder or decoder for uintptr) give errors instead.
func TestMsgpackPanicsAreErrors(t *testing.T) {
	give := &struct{ P uintptr }{P: 1}
	got, err := Msgpack{}.AppendMarshal([]byte("hdr"), give)
	if err == nil || string(got) != "hdr" {
		t.Errorf("AppendMarshal(%T) = %q, %v; want \"hdr\" and an error", give, got, err)
	}
	body := []byte{0x81, 0xa1, 'P', 0x01} // {"P": 1}
	if err := (Msgpack{}).Unmarshal(body, give); !errors.Is(err, ErrMalformed) {
		t.Errorf("Unmarshal(% x, %T) error = %v, want %v", body, give, err, ErrMalformed)
	}
}

// TestMsgpackBombs feeds bodies that declare huge lengths. Unchecked,
// msgpack v5.4.1 allocates what they declare (the first kills the process);
// checked, each costs at most a small multiple of its size.
func TestMsgpackBombs(t *testing.T) {
	tests := []struct {
		name   string
		give   []byte
		target func() any
	}{
		{"array32 into slice", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, func() any { return new([]int) }},
		{"array32 into any", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, func() any { return new(any) }},
		{"array16 into any", []byte{0xdc, 0xff, 0xff, 0x01}, func() any { return new(any) }},
		{"bin32 into bytes", []byte{0xc6, 0xff, 0xff, 0xff, 0xff}, func() any { return new([]byte) }},
		{"str32 into string", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, func() any { return new(string) }},
		{"ext32 into any", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01}, func() any { return new(any) }},
		{"map32 into map", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, func() any { return new(map[string]int) }},
		{"map32 into any", append([]byte{0xdf, 0x7f, 0xff, 0xff, 0xff}, bytes.Repeat([]byte{0x01}, 1000)...), func() any { return new(any) }},
		{"map32 inside ext into map", []byte{0xc7, 0x05, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff}, func() any { return new(map[string]int) }},
		{"map32 inside ext into struct", []byte{0xc7, 0x05, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff}, func() any { return new(benchmarkMessage) }},
		{"array in array", []byte{0x91, 0xdd, 0xff, 0xff, 0xff, 0xff}, func() any { return new([][]int) }},
		{"array that leaves no room for its sibling", []byte{0x92, 0xdc, 0x00, 0x03, 0x01, 0x01, 0x01}, func() any { return new([][]int) }},
		{"deep nesting", bytes.Repeat([]byte{0x91}, 100000), func() any { return new(any) }},
		{"deep maps", bytes.Repeat([]byte{0x81, 0x01}, 100000), func() any { return new(any) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target()
			var err error
			alloc := allocatedBytes(func() { err = Msgpack{}.Unmarshal(tt.give, target) })
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Unmarshal(% .8x) error = %v, want %v", tt.give, err, ErrMalformed)
			}
			t.Logf("Unmarshal of %d bytes: %v; allocated %d bytes", len(tt.give), err, alloc)
			if limit := 4096 + 16*uint64(len(tt.give)); alloc > limit {
				t.Errorf("Unmarshal(% .8x) allocated %d bytes, want <= %d", tt.give, alloc, limit)
			}
		})
	}
}

// allocatedBytes returns how many bytes a call of f allocates on the heap,
// averaged over runs after a warm-up call that fills pools and caches.
func allocatedBytes(f func()) uint64 {
	const runs = 50
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

func TestMsgpackAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so allocation counts vary")
	}
	msg := newBenchmarkMessage()
	buf := make([]byte, 0, 2048)
	data, err := Msgpack{}.AppendMarshal(nil, msg)
	if err != nil {
		t.Fatalf("AppendMarshal error = %v", err)
	}
	tests := []struct {
		name string
		f    func()
		want float64
	}{
		{"marshal", func() { _, _ = Msgpack{}.AppendMarshal(buf[:0], msg) }, 0},
		// One allocation per string field; none for the struct or decoder.
		{"unmarshal into reused struct", func() {
			var m benchmarkMessage
			_ = Msgpack{}.Unmarshal(data, &m)
		}, 9},
		{"check", func() { _ = checkMsgpack(data) }, 0},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got > tt.want {
			t.Errorf("%s: AllocsPerRun = %v, want <= %v", tt.name, got, tt.want)
		}
	}
}

func BenchmarkMsgpack(b *testing.B) {
	msg := newBenchmarkMessage()
	data, err := Msgpack{}.AppendMarshal(nil, msg)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		buf := make([]byte, 0, 2048)
		for b.Loop() {
			if _, err := (Msgpack{}).AppendMarshal(buf[:0], msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			m := new(benchmarkMessage)
			if err := (Msgpack{}).Unmarshal(data, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal-reuse", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var m benchmarkMessage
		for b.Loop() {
			if err := (Msgpack{}).Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := checkMsgpack(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("roundtrip", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 2048)
		for b.Loop() {
			out, err := Msgpack{}.AppendMarshal(buf[:0], msg)
			if err != nil {
				b.Fatal(err)
			}
			m := new(benchmarkMessage)
			if err := (Msgpack{}).Unmarshal(out, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("roundtrip-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			buf := make([]byte, 0, 2048)
			for pb.Next() {
				out, err := Msgpack{}.AppendMarshal(buf[:0], msg)
				if err != nil {
					b.Error(err)
					return
				}
				m := new(benchmarkMessage)
				if err := (Msgpack{}).Unmarshal(out, m); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
