package compress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		give   []byte
		wantOK bool
	}{
		{"empty", nil, false},
		{"one byte", []byte{7}, false},
		{"short text", []byte("hello, hello, hello, hello, hello, hello"), true},
		{"msgpack 4KiB", compressibleBody(4 << 10), true},
		{"msgpack 1MiB", compressibleBody(1 << 20), true},
		{"msgpack 5MiB", compressibleBody(5 << 20), true}, // S2 encodes 4 MiB and up its own way
		{"random 1MiB", randomBody(1 << 20), false},
		{"zeros 1MiB", zeros(1 << 20), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("header")
			dst := append([]byte(nil), prefix...)
			out, ok := Compress(dst, tt.give)
			if ok != tt.wantOK {
				t.Fatalf("Compress(%d bytes) ok = %v, want %v (output %d bytes)", len(tt.give), ok, tt.wantOK, len(out)-len(prefix))
			}
			if !bytes.Equal(out[:len(prefix)], prefix) {
				t.Fatalf("Compress changed dst's prefix: %q", out[:len(prefix)])
			}
			if !ok {
				if len(out) != len(prefix) {
					t.Fatalf("Compress returned false with %d bytes appended, want none", len(out)-len(prefix))
				}
				return
			}
			comp := out[len(prefix):]
			if len(comp) > len(tt.give)-len(tt.give)/8 {
				t.Errorf("Compress returned true for %d -> %d bytes, want a saving of at least 1/8", len(tt.give), len(comp))
			}
			if n, err := DecodedLen(comp); err != nil || n != len(tt.give) {
				t.Errorf("DecodedLen = %d, %v, want %d, nil", n, err, len(tt.give))
			}
			got, err := Decompress(append([]byte(nil), prefix...), comp, len(tt.give))
			if err != nil {
				t.Fatalf("Decompress error = %v", err)
			}
			if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], tt.give) {
				t.Fatalf("Decompress(Compress(x)) differs from x (%d bytes, want %d)", len(got)-len(prefix), len(tt.give))
			}
		})
	}
}

// TestCompressRatio guards the point of the package: realistic payloads
// shrink a lot.
func TestCompressRatio(t *testing.T) {
	src := compressibleBody(1 << 20)
	out, ok := Compress(nil, src)
	if !ok {
		t.Fatal("Compress(msgpack 1MiB) ok = false, want true")
	}
	if r := float64(len(out)) / float64(len(src)); r > 0.4 {
		t.Errorf("Compress(msgpack 1MiB) ratio = %.3f, want <= 0.4", r)
	}
}

// bomb returns n zero bytes compressed.
func bomb(t testing.TB, n int) []byte {
	t.Helper()
	out, ok := Compress(nil, zeros(n))
	if !ok {
		t.Fatalf("Compress(%d zeros) ok = false", n)
	}
	return out
}

// allocated returns the bytes allocated on the heap while f runs.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecompressBomb: 15 MiB of zeros compressed into a few KiB is refused
// against a 1 MiB limit, and refusing it allocates next to nothing.
func TestDecompressBomb(t *testing.T) {
	const limit = 1 << 20
	b := bomb(t, 15<<20)
	if len(b) > 64<<10 {
		t.Fatalf("15 MiB of zeros compressed to %d bytes, want a bomb of at most 64 KiB", len(b))
	}
	t.Logf("15 MiB of zeros -> %d bytes", len(b))
	var err error
	const runs = 100
	n := allocated(func() {
		for range runs {
			_, err = Decompress(nil, b, limit)
		}
	})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decompress(bomb, limit %d) error = %v, want ErrTooLarge", limit, err)
	}
	if per := n / runs; per > 1024 {
		t.Errorf("Decompress(bomb) allocated %d bytes per call, want <= 1024", per)
	}
}

// TestDecompressLyingHeader: a body whose header claims a size within the
// limit but whose data inflates further fails as corrupt, having allocated
// no more than the claimed size.
func TestDecompressLyingHeader(t *testing.T) {
	const limit = 1 << 20
	b := bomb(t, 15<<20)
	_, hl := binary.Uvarint(b)
	lie := binary.AppendUvarint(nil, limit)
	lie = append(lie, b[hl:]...)

	var err error
	const runs = 10
	n := allocated(func() {
		for range runs {
			_, err = Decompress(nil, lie, limit)
		}
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Decompress(header says %d, data inflates to 15 MiB) error = %v, want ErrCorrupt", limit, err)
	}
	if per := n / runs; per > limit+4096 {
		t.Errorf("Decompress(lying header) allocated %d bytes per call, want <= %d", per, limit+4096)
	}

	// A header claiming 4 GiB is refused before anything is allocated.
	huge := binary.AppendUvarint(nil, 1<<32-1)
	huge = append(huge, b[hl:]...)
	n = allocated(func() { _, err = Decompress(nil, huge, limit) })
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decompress(header says 4 GiB) error = %v, want ErrTooLarge", err)
	}
	if n > 1024 {
		t.Errorf("Decompress(header says 4 GiB) allocated %d bytes, want <= 1024", n)
	}
}

func TestDecompressCorrupt(t *testing.T) {
	good, _ := Compress(nil, compressibleBody(64<<10))
	tests := []struct {
		name string
		give []byte
	}{
		{"empty", nil},
		{"bad varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"truncated", good[:len(good)/2]},
		{"trailing garbage", append(append([]byte(nil), good...), 1, 2, 3)},
		{"length but no data", binary.AppendUvarint(nil, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decompress(nil, tt.give, 1<<20)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("Decompress(%s) error = %v, want ErrCorrupt", tt.name, err)
			}
		})
	}
}

// TestNoAllocWithRoom: with room in dst, neither direction allocates.
func TestNoAllocWithRoom(t *testing.T) {
	src := compressibleBody(256 << 10)
	comp, _ := Compress(nil, src)
	cbuf := make([]byte, 0, 2*len(src))
	dbuf := make([]byte, 0, len(src))
	if n := testing.AllocsPerRun(20, func() { Compress(cbuf, src) }); n != 0 {
		t.Errorf("Compress with room: %v allocs per run, want 0", n)
	}
	if n := testing.AllocsPerRun(20, func() { Decompress(dbuf, comp, len(src)) }); n != 0 {
		t.Errorf("Decompress with room: %v allocs per run, want 0", n)
	}
}

func TestDecompressLimitBoundary(t *testing.T) {
	src := compressibleBody(10000)
	comp, _ := Compress(nil, src)
	if _, err := Decompress(nil, comp, len(src)); err != nil {
		t.Errorf("Decompress(limit = size) error = %v, want nil", err)
	}
	if _, err := Decompress(nil, comp, len(src)-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Decompress(limit = size-1) error = %v, want ErrTooLarge", err)
	}
	if _, err := Decompress(nil, comp, 0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Decompress(limit = 0) error = %v, want ErrTooLarge", err)
	}
}

// TestConcurrent runs round trips from several goroutines (for -race).
func TestConcurrent(t *testing.T) {
	src := compressibleBody(64 << 10)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cbuf, dbuf []byte
			for range 50 {
				var ok bool
				cbuf, ok = Compress(cbuf[:0], src)
				if !ok {
					errs <- errors.New("Compress ok = false")
					return
				}
				var err error
				if dbuf, err = Decompress(dbuf[:0], cbuf, len(src)); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(dbuf, src) {
					errs <- errors.New("round trip differs")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzDecompress: arbitrary input never panics, fails only with the
// package's sentinels, and never returns (or allocates) more than the limit.
func FuzzDecompress(f *testing.F) {
	for _, n := range []int{1, 100, 5000} {
		c, _ := Compress(nil, compressibleBody(n))
		f.Add(c, 1<<20)
		f.Add(c, n-1)
	}
	z, _ := Compress(nil, zeros(4<<20))
	f.Add(z, 1<<20)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 1<<20)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, src []byte, limit int) {
		limit = min(max(limit, -1), 4<<20) // keep the fuzzer's allocations sane
		out, err := Decompress(nil, src, limit)
		if err != nil {
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decompress error = %v, want ErrTooLarge or ErrCorrupt", err)
			}
			return
		}
		if len(out) > limit || cap(out) > max(limit, 0) {
			t.Fatalf("Decompress returned %d bytes (cap %d) over limit %d", len(out), cap(out), limit)
		}
		if n, _ := DecodedLen(src); n != len(out) {
			t.Fatalf("DecodedLen = %d, Decompress gave %d bytes", n, len(out))
		}
	})
}

// FuzzRoundTrip: whatever Compress accepts, Decompress restores.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("hello, hello, hello, hello, hello, hello"))
	f.Add(compressibleBody(3000))
	f.Add(randomBody(100))
	f.Fuzz(func(t *testing.T, src []byte) {
		comp, ok := Compress(nil, src)
		if !ok {
			return
		}
		got, err := Decompress(nil, comp, len(src))
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("Decompress(Compress(%d bytes)) = %d bytes, %v", len(src), len(got), err)
		}
	})
}
