package codec

import (
	"encoding/json"
	"testing"
)

// BenchmarkJSONStdlib is BenchmarkJSON through encoding/json alone: what
// the JSON codec cost before its fast path, for comparison.
func BenchmarkJSONStdlib(b *testing.B) {
	msg := newBenchmarkMessage()
	data, err := json.Marshal(msg)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		buf := make([]byte, 0, 2048)
		for b.Loop() {
			out, err := json.Marshal(msg)
			if err != nil {
				b.Fatal(err)
			}
			buf = append(buf[:0], out...)
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var m benchmarkMessage
			if err := json.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
