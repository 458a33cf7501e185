package codec

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkMsgpackOptions measures the msgpack options the codec could use
// on the benchmark message, so the choice of defaults can be revisited:
// encode+decode into a fresh struct, without the validator.
func BenchmarkMsgpackOptions(b *testing.B) {
	msg := newBenchmarkMessage()
	tests := []struct {
		name   string
		encode func(*msgpack.Encoder)
		decode func(*msgpack.Decoder)
	}{
		{"default", nil, nil},
		{"compact-ints", func(e *msgpack.Encoder) { e.UseCompactInts(true) }, nil},
		{"array-structs", func(e *msgpack.Encoder) { e.UseArrayEncodedStructs(true) }, nil},
		{"array-structs+compact-ints", func(e *msgpack.Encoder) {
			e.UseArrayEncodedStructs(true)
			e.UseCompactInts(true)
		}, nil},
		{"no-alloc-limit", nil, func(d *msgpack.Decoder) { d.DisableAllocLimit(true) }},
	}
	for _, tt := range tests {
		var w appendWriter
		enc := msgpack.NewEncoder(&w)
		if tt.encode != nil {
			tt.encode(enc)
		}
		var r bytes.Reader
		dec := msgpack.NewDecoder(&r)
		if tt.decode != nil {
			tt.decode(dec)
		}
		if err := enc.Encode(msg); err != nil {
			b.Fatal(err)
		}
		data := bytes.Clone(w.b)
		b.Run(tt.name+"/marshal", func(b *testing.B) {
			b.ReportAllocs()
			b.ReportMetric(float64(len(data)), "body-bytes")
			for b.Loop() {
				w.b = w.b[:0]
				if err := enc.Encode(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tt.name+"/unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(data)
				m := new(benchmarkMessage)
				if err := dec.Decode(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("library-functions/marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := msgpack.Marshal(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Not msgpack.Unmarshal: it turns on UsePreallocateValues, which starts
	// a goroutine per decoded type that never exits.
	data, err := msgpack.Marshal(msg)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("library-functions/unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := new(benchmarkMessage)
			if err := msgpack.NewDecoder(bytes.NewReader(data)).Decode(m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
