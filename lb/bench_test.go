package lb

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkPick(b *testing.B) {
	keys := hashKeys(1024)
	for _, bal := range allBalancers() {
		for _, n := range []int{4, 64} {
			b.Run(fmt.Sprintf("%s/endpoints=%d", bal.Name(), n), func(b *testing.B) {
				p := bal.Build(endpoints(n))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						i++
						res, err := p.Pick(PickInfo{Key: keys[i%len(keys)]})
						if err != nil {
							b.Errorf("Pick() error = %v, want nil", err)
							return
						}
						if res.Done != nil {
							res.Done(DoneInfo{Latency: time.Millisecond})
						}
					}
				})
			})
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, bal := range allBalancers() {
		for _, n := range []int{4, 64} {
			b.Run(fmt.Sprintf("%s/endpoints=%d", bal.Name(), n), func(b *testing.B) {
				eps := endpoints(n)
				for i := range eps {
					eps[i].Weight = 1 + i%5
				}
				b.ReportAllocs()
				for b.Loop() {
					bal.Build(eps)
				}
			})
		}
	}
}
