package rpc

import (
	"context"
	"fmt"
	"testing"
)

// maxAllocsPerCall bounds the allocations of one sync call of small args
// (client and server together, both in this process): 5 measured (the
// Call, the server's call state, its args and reply, and two in
// reflect.Value.Call for a method taking args by value).
const maxAllocsPerCall = 7

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

// BenchmarkTyped is BenchmarkCall's sequential and parallel cases through
// a typed Method: the same call machinery, the schema check once.
func BenchmarkTyped(b *testing.B) {
	cli, _, _ := newCalcPair(b, nil)
	add := NewMethod[Args, int](cli, "Calc.Add")
	ctx := context.Background()
	b.Run("sequential", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := add.Call(ctx, Args{i, 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := add.Call(ctx, Args{1, 2}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("go", func(b *testing.B) {
		b.ReportAllocs()
		futures := make([]*Future[int], 0, 64)
		for i := 0; b.Loop(); i++ {
			if len(futures) == cap(futures) {
				for _, f := range futures {
					if _, err := f.Result(); err != nil {
						b.Fatal(err)
					}
				}
				futures = futures[:0]
			}
			futures = append(futures, add.Go(ctx, Args{i, 1}))
		}
		for _, f := range futures {
			f.Result()
		}
	})
}

// TestTypedAllocs guards the promise that a typed call allocates no more
// than the untyped call it replaces, for sync calls and for Go.
func TestTypedAllocs(t *testing.T) {
	if raceEnabled() {
		t.Skip("the race detector changes allocation counts")
	}
	if testing.Short() {
		t.Skip("allocation guard skipped in -short mode")
	}
	cli, _, _ := newCalcPair(t, nil)
	add := NewMethod[Args, int](cli, "Calc.Add")
	ctx := context.Background()
	var sum int
	untyped := func() {
		if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil {
			t.Fatal(err)
		}
	}
	typed := func() {
		if _, err := add.Call(ctx, Args{1, 2}); err != nil {
			t.Fatal(err)
		}
	}
	untypedGo := func() {
		c := cli.Go("Calc.Add", Args{1, 2}, &sum, nil)
		if c = <-c.Done; c.Error != nil {
			t.Fatal(c.Error)
		}
	}
	typedGo := func() {
		if _, err := add.Go(ctx, Args{1, 2}).Result(); err != nil {
			t.Fatal(err)
		}
	}
	for range 100 { // warm pools, connections and the schema verdict
		untyped()
		typed()
	}
	for _, tt := range []struct {
		name           string
		untyped, typed func()
	}{
		{"Call", untyped, typed},
		{"Go", untypedGo, typedGo},
	} {
		// Allocation counts of calls that cross goroutines wobble by a
		// fraction: compare the mean of several runs.
		u := testing.AllocsPerRun(500, tt.untyped)
		ty := testing.AllocsPerRun(500, tt.typed)
		t.Logf("%s: allocations per call (client + server): untyped %.1f, typed %.1f", tt.name, u, ty)
		if ty > u {
			t.Errorf("typed %s allocates %.1f times, more than the untyped %.1f", tt.name, ty, u)
		}
	}
}
