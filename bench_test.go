package rpc

import (
	"fmt"
	"testing"
)

// maxAllocsPerCall is a generous bound on the allocations of one sync call
// (client and server together, both in this process).
const maxAllocsPerCall = 40

func BenchmarkCall(b *testing.B) {
	cli, _, _ := newCalcPair(b, nil)
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		var sum int
		for i := 0; b.Loop(); i++ {
			if err := cli.Call("Calc.Add", Args{i, 1}, &sum); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var sum int
			for pb.Next() {
				if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	for _, size := range []int{1 << 10, 64 << 10} {
		payload := make([]byte, size)
		b.Run(fmt.Sprintf("payload=%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(2 * size))
			b.RunParallel(func(pb *testing.PB) {
				var out []byte
				for pb.Next() {
					if err := cli.Call("Calc.Echo", payload, &out); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkGo(b *testing.B) {
	cli, _, _ := newCalcPair(b, nil)
	b.ReportAllocs()
	done := make(chan *Call, 64)
	sums := make([]int, 64)
	inflight := 0
	for i := 0; b.Loop(); i++ {
		if inflight == cap(done) {
			if c := <-done; c.Error != nil {
				b.Fatal(c.Error)
			}
			inflight--
		}
		cli.Go("Calc.Add", Args{i, 1}, &sums[i%len(sums)], done)
		inflight++
	}
	for ; inflight > 0; inflight-- {
		<-done
	}
}

func TestCallAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("the race detector changes allocation counts")
	}
	if testing.Short() {
		t.Skip("allocation guard skipped in -short mode")
	}
	cli, _, _ := newCalcPair(t, nil)
	var sum int
	call := func() {
		if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // warm pools and connections
		call()
	}
	n := testing.AllocsPerRun(500, call)
	t.Logf("allocations per sync call (client + server): %.1f", n)
	if n > maxAllocsPerCall {
		t.Errorf("a sync call allocates %.1f times, want at most %d", n, maxAllocsPerCall)
	}
}
