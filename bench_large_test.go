package rpc

import (
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLargeEcho echoes large bodies through client and server in this
// process, one caller and two, for CPU profiles and traces of the large
// message path (chunks, reassembly, buffers). Throughput against raw TCP is
// measured by bench/ (-throughput).
func BenchmarkLargeEcho(b *testing.B) {
	cli, _, _ := newCalcPair(b, nil)
	for _, size := range []int{1 << 20, 8 << 20} {
		body := make([]byte, size)
		rand.Read(body)
		for _, callers := range []int{1, 2} {
			b.Run(fmt.Sprintf("size=%dMiB/callers=%d", size>>20, callers), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				var next atomic.Int64
				var mu sync.Mutex
				var lat []time.Duration
				var wg sync.WaitGroup
				for range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var out []byte
						for next.Add(1) <= int64(b.N) {
							t0 := time.Now()
							if err := cli.Call("Calc.Echo", body, &out); err != nil {
								b.Error(err)
								return
							}
							mu.Lock()
							lat = append(lat, time.Since(t0))
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				slices.Sort(lat)
				if len(lat) > 0 {
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
					b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
				}
			})
		}
	}
}
