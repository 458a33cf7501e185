package compress

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"io"
	"sync"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// The candidates the package's algorithm was chosen from, each used the way
// a wire layer would: pooled state, whole-buffer in and out. Kept so that
// the choice can be re-measured:
//
//	go test -run '^$' -bench 'Compress' -benchmem ./internal/compress

type algo struct {
	name       string
	compress   func(dst, src []byte) []byte
	decompress func(dst, src []byte) ([]byte, error)
}

func stdlibAlgo(name string, level int, gz bool) algo {
	type writer interface {
		io.WriteCloser
		Reset(io.Writer)
	}
	wp := sync.Pool{New: func() any {
		if gz {
			w, _ := gzip.NewWriterLevel(nil, level)
			return writer(w)
		}
		w, _ := flate.NewWriter(nil, level)
		return writer(w)
	}}
	var gzr sync.Pool
	var flr sync.Pool
	return algo{
		name: name,
		compress: func(dst, src []byte) []byte {
			buf := bytes.NewBuffer(dst[:0])
			w := wp.Get().(writer)
			w.Reset(buf)
			w.Write(src)
			w.Close()
			wp.Put(w)
			return buf.Bytes()
		},
		decompress: func(dst, src []byte) ([]byte, error) {
			var r io.ReadCloser
			if gz {
				zr, _ := gzr.Get().(*gzip.Reader)
				if zr == nil {
					var err error
					if zr, err = gzip.NewReader(bytes.NewReader(src)); err != nil {
						return nil, err
					}
				} else if err := zr.Reset(bytes.NewReader(src)); err != nil {
					return nil, err
				}
				defer gzr.Put(zr)
				r = zr
			} else {
				fr, _ := flr.Get().(io.ReadCloser)
				if fr == nil {
					fr = flate.NewReader(bytes.NewReader(src))
				} else {
					fr.(flate.Resetter).Reset(bytes.NewReader(src), nil)
				}
				defer flr.Put(fr)
				r = fr
			}
			buf := bytes.NewBuffer(dst[:0])
			_, err := buf.ReadFrom(r)
			return buf.Bytes(), err
		},
	}
}

func zstdAlgo(name string, level zstd.EncoderLevel) algo {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		panic(err)
	}
	return algo{
		name:       name,
		compress:   func(dst, src []byte) []byte { return enc.EncodeAll(src, dst[:0]) },
		decompress: func(dst, src []byte) ([]byte, error) { return dec.DecodeAll(src, dst[:0]) },
	}
}

func algos() []algo {
	return []algo{
		{"s2", s2.Encode, s2.Decode},
		{"s2-better", s2.EncodeBetter, s2.Decode},
		{"snappy", s2.EncodeSnappy, s2.Decode},
		zstdAlgo("zstd-fastest", zstd.SpeedFastest),
		zstdAlgo("zstd-default", zstd.SpeedDefault),
		stdlibAlgo("gzip-1", gzip.BestSpeed, true),
		stdlibAlgo("gzip-6", gzip.DefaultCompression, true),
		stdlibAlgo("flate-1", flate.BestSpeed, false),
		stdlibAlgo("flate-huffman", flate.HuffmanOnly, false),
		{"package", func(dst, src []byte) []byte { out, _ := Compress(dst, src); return out }, func(dst, src []byte) ([]byte, error) { return Decompress(dst, src, 64<<20) }},
	}
}

// BenchmarkCompress compresses each body with each candidate, reporting the
// compressed size as a fraction of the original (ratio, lower is better)
// and input MB/s.
func BenchmarkCompress(b *testing.B) {
	bs := bodies(b)
	for _, a := range algos() {
		for _, bd := range bs {
			b.Run("algo="+a.name+",body="+bd.name, func(b *testing.B) {
				dst := a.compress(nil, bd.data)
				ratio := float64(len(dst)) / float64(len(bd.data))
				if a.name == "package" && len(dst) == 0 {
					ratio = 1 // sent raw
				}
				b.SetBytes(int64(len(bd.data)))
				b.ReportAllocs()
				for b.Loop() {
					dst = a.compress(dst[:0], bd.data)
				}
				b.ReportMetric(ratio, "ratio")
			})
		}
	}
}

// BenchmarkDecompress decompresses each body's compressed form, reporting
// output MB/s.
func BenchmarkDecompress(b *testing.B) {
	bs := bodies(b)
	for _, a := range algos() {
		for _, bd := range bs {
			b.Run("algo="+a.name+",body="+bd.name, func(b *testing.B) {
				comp := a.compress(nil, bd.data)
				if len(comp) == 0 { // the package sends it raw: nothing to decode
					b.Skip("sent raw")
				}
				out, err := a.decompress(nil, comp)
				if err != nil || !bytes.Equal(out, bd.data) {
					b.Fatalf("round trip: err = %v, equal = %v", err, bytes.Equal(out, bd.data))
				}
				b.SetBytes(int64(len(bd.data)))
				b.ReportAllocs()
				for b.Loop() {
					if out, err = a.decompress(out[:0], comp); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
