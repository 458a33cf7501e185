package compress

import (
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Test bodies. They are built once per test binary, deterministically except
// for the random one.

// record is a realistic RPC payload row: ids and counters that vary, strings
// drawn from small vocabularies, a free-text field.
type record struct {
	ID       int64
	Account  string
	Email    string
	Country  string
	Status   string
	Tags     []string
	Score    float64
	Created  int64
	Count    int32
	Active   bool
	Comment  string
	Children []int64
}

// benchMessage mirrors bench/message.go's BenchmarkMessage filled by the
// rule of shared/BENCHMARK_MESSAGE.md (every string the same 54 bytes, every
// integer 100000, every bool true).
type benchMessage struct {
	Field1, Field9, Field18                        string
	Field80, Field81                               bool
	Field2, Field3, Field280, Field6               int32
	Field22                                        int64
	Field4                                         string
	Field5                                         []uint64
	Field59                                        bool
	Field7                                         string
	Field16, Field130                              int32
	Field12, Field17, Field13, Field14             bool
	Field104, Field100, Field101                   int32
	Field102, Field103                             string
	Field29                                        int32
	Field30                                        bool
	Field60, Field271, Field272, Field150, Field23 int32
	Field25                                        int32
	Field24, Field78                               bool
	Field67, Field68, Field128                     int32
	Field129                                       string
	Field131                                       int32
}

var words = strings.Fields(`the quick brown fox jumps over a lazy dog while
seedrpc serves calls between services across the fleet latency throughput
connection request response error timeout retry balancer registry instance
order payment invoice customer shipment warehouse product price discount`)

// compressibleBody returns n bytes of msgpack: a realistic mix of records
// (three quarters), BenchmarkMessages and English-like text.
func compressibleBody(n int) []byte {
	r := mrand.New(mrand.NewPCG(1, 2))
	pick := func(vs []string) string { return vs[r.IntN(len(vs))] }
	countries := []string{"DE", "FR", "US", "CN", "JP", "BR", "IN", "GB"}
	statuses := []string{"active", "suspended", "pending", "closed"}
	sentence := func(k int) string {
		var b strings.Builder
		for i := range k {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(pick(words))
		}
		return b.String()
	}
	const fill = "许多往事在眼前一幕一幕，变的那麼模糊"
	bm := benchMessage{Field1: fill, Field9: fill, Field18: fill, Field80: true, Field81: true,
		Field2: 100000, Field3: 100000, Field22: 100000, Field4: fill, Field7: fill,
		Field102: fill, Field103: fill, Field129: fill, Field131: 100000}
	var out []byte
	for i := 0; len(out) < n; i++ {
		var v any
		switch i % 8 {
		case 0:
			v = &bm
		case 1:
			v = sentence(20 + r.IntN(40))
		default:
			id := int64(1_000_000 + i)
			v = &record{
				ID: id, Account: fmt.Sprintf("acct-%06d", r.IntN(5000)),
				Email:   fmt.Sprintf("user%d@example.com", r.IntN(100000)),
				Country: pick(countries), Status: pick(statuses),
				Tags:  []string{pick(words), pick(words)},
				Score: r.Float64() * 100, Created: 1_700_000_000 + int64(i)*37,
				Count: int32(r.IntN(1000)), Active: r.IntN(2) == 0,
				Comment:  sentence(3 + r.IntN(6)),
				Children: []int64{id*10 + 1, id*10 + 2},
			}
		}
		b, err := msgpack.Marshal(v)
		if err != nil {
			panic(err)
		}
		out = append(out, b...)
	}
	return out[:n]
}

// randomBody returns n bytes from crypto/rand: incompressible.
func randomBody(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// zeros returns n zero bytes: the material of a compression bomb.
func zeros(n int) []byte { return make([]byte, n) }

type body struct {
	name string
	data []byte
}

// bodies are the benchmark inputs.
func bodies(tb testing.TB) []body {
	tb.Helper()
	return []body{
		{"msgpack-1MiB", compressibleBody(1 << 20)},
		{"random-1MiB", randomBody(1 << 20)},
		{"msgpack-4KiB", compressibleBody(4 << 10)},
	}
}
