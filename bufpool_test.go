package rpc

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// resetBigPool empties bigPool, so that a test starts from a known state,
// and returns its counters as they were.
func resetBigPool() (gets, hits int) {
	p := &bigPool
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	for k := range p.free {
		clear(p.free[k])
		p.free[k] = nil
	}
	gets, hits = p.gets, p.hits
	p.held, p.gets, p.hits, p.puts, p.drops = 0, 0, 0, 0, 0
	return gets, hits
}

func bigPoolState() (held, kept, hits int) {
	p := &bigPool
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.free {
		kept += len(f)
	}
	return p.held, kept, p.hits
}

// TestBigPoolClasses: a class holds what is asked for and wastes at most a
// quarter; the pool takes back only buffers of its own capacities.
func TestBigPoolClasses(t *testing.T) {
	for _, n := range []int{1, 64 << 10, 64<<10 + 1, 1 << 20, 1<<20 + 40, 3<<20 + 7, 8<<20 + 30, 16 << 20, 100 << 20} {
		k, c := bigClassFor(n)
		if k < 0 || c < n || n > 64<<10 && c > n+n/4 {
			t.Errorf("bigClassFor(%d) = %d, %d: want a class of at least %[1]d and at most 1.25 times it", n, k, c)
		}
		if bigClassOf(c) != k {
			t.Errorf("bigClassOf(%d) = %d, want %d", c, bigClassOf(c), k)
		}
	}
	if k, c := bigClassFor(bigClassCap(bigClasses-1) + 1); k != -1 || c != bigClassCap(bigClasses-1)+1 {
		t.Errorf("above the largest class: %d, %d", k, c)
	}
	if k := bigClassOf(1<<20 + 1); k != -1 {
		t.Errorf("bigClassOf of a capacity between classes = %d, want -1", k)
	}
}

// TestBigPoolBounds: the pool keeps at most bigPerClass buffers per class
// and bigMaxHeld bytes in all, hands a kept buffer out once, and drops
// buffers of foreign capacities.
func TestBigPoolBounds(t *testing.T) {
	resetBigPool()
	t.Cleanup(func() { resetBigPool() })
	const n = 1 << 20
	var bufs [][]byte
	for range bigPerClass + 3 {
		bufs = append(bufs, getBig(n))
	}
	for _, b := range bufs {
		putBig(b)
	}
	held, kept, _ := bigPoolState()
	if kept != bigPerClass || held != bigPerClass*cap(bufs[0]) {
		t.Fatalf("after %d puts of one class: %d kept, %d bytes held; want %d kept", len(bufs), kept, held, bigPerClass)
	}
	// Each kept buffer is handed out once, then buffers are new.
	seen := map[*byte]bool{}
	for i := range bigPerClass + 1 {
		b := getBig(n - i)
		if len(b) != n-i || cap(b) < n {
			t.Fatalf("getBig(%d): len %d cap %d", n-i, len(b), cap(b))
		}
		p := &b[:1][0]
		if seen[p] {
			t.Fatal("getBig handed out the same buffer twice")
		}
		seen[p] = true
	}
	if _, _, hits := bigPoolState(); hits != bigPerClass {
		t.Fatalf("%d hits, want %d", hits, bigPerClass)
	}
	// Total bound, over many classes.
	resetBigPool()
	for size := 64 << 10; size <= 64<<20; size = size * 5 / 4 {
		for range bigPerClass {
			putBig(getBig(size))
		}
	}
	if held, _, _ := bigPoolState(); held > bigMaxHeld || held < bigMaxHeld/2 {
		t.Fatalf("held %d bytes, want at most %d (and most of it used)", held, bigMaxHeld)
	}
	resetBigPool()
	putBig(make([]byte, 1<<20+1))
	putBig(make([]byte, 10))
	if _, kept, _ := bigPoolState(); kept != 0 {
		t.Fatalf("kept %d buffers of capacities that are not classes", kept)
	}
}

// TestBigPoolIdleRelease: buffers not reused for bigIdle are dropped.
func TestBigPoolIdleRelease(t *testing.T) {
	resetBigPool()
	old := bigIdle
	bigIdle = 30 * time.Millisecond
	t.Cleanup(func() { resetBigPool(); bigIdle = old })
	putBig(getBig(2 << 20))
	putBig(getBig(300 << 10))
	if held, _, _ := bigPoolState(); held == 0 {
		t.Fatal("nothing kept")
	}
	waitFor(t, "idle buffers to be dropped", func() bool {
		held, kept, _ := bigPoolState()
		return held == 0 && kept == 0
	})
	bigPool.mu.Lock()
	armed := bigPool.sweep != nil
	bigPool.mu.Unlock()
	if armed {
		t.Fatal("the sweep timer stays armed with nothing left to drop")
	}
}

// TestFrameBufBigCharged: a payload above the largest frame class is read
// into a bigPool buffer charged its whole capacity while held, nothing once
// released, and the next one reuses it.
func TestFrameBufBigCharged(t *testing.T) {
	resetBigPool()
	t.Cleanup(func() { resetBigPool() })
	b := newMemBudget(64 << 20)
	read := func(fill byte) *frameBuf {
		const n = 3<<20 + 5
		fr := newTestFrameReader(bytes.NewReader(append(claimFrame(1, "", n), bytes.Repeat([]byte{fill}, n)...)), 16<<20, b)
		if _, err := fr.next(); err != nil {
			t.Fatal(err)
		}
		fb, err := fr.payload(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(fb.b) != n || fb.b[0] != fill || fb.b[n-1] != fill {
			t.Fatalf("payload of %d bytes read wrong", len(fb.b))
		}
		if got, want := b.inUse(), charge(cap(fb.b)); got != want {
			t.Fatalf("budget in use %d while a %d-byte buffer is held, want %d", got, cap(fb.b), want)
		}
		return fb
	}
	fb := read(1)
	first := &fb.b[0]
	fb.release()
	if b.inUse() != 0 {
		t.Fatalf("budget in use %d after release", b.inUse())
	}
	fb = read(2)
	if &fb.b[0] != first {
		t.Fatal("the second payload did not reuse the pooled buffer")
	}
	fb.release()
}

// TestLargeBuffersNotReusedWhileReferenced: concurrent large echoes, each
// of its own random bytes, chunked and compressed, come back intact while
// every buffer put back in bigPool is overwritten at once: a buffer
// released while still read (a payload released before it was decoded, an
// encoded frame reused before it was written) would corrupt a reply, or
// show as a race under -race.
func TestLargeBuffersNotReusedWhileReferenced(t *testing.T) {
	resetBigPool()
	bigPoolDebug.Store(true)
	t.Cleanup(func() { bigPoolDebug.Store(false); resetBigPool() })
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compression=%v", compress), func(t *testing.T) {
			var sopts []ServerOption
			var copts []ClientOption
			if compress {
				sopts = append(sopts, WithCompression(4096))
				copts = append(copts, WithCompression(4096))
			}
			cli, _, _ := newCalcPair(t, sopts, copts...)
			resetBigPool()
			var wg sync.WaitGroup
			errs := make(chan error, 64)
			for g := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 7))
					for i := range 6 {
						size := 64<<10 + rng.IntN(3<<20)
						body := make([]byte, size)
						for j := range body {
							body[j] = byte(rng.Uint32())
						}
						if compress && i%2 == 0 {
							body = bytes.Repeat([]byte(fmt.Sprintf("call %d of %d, ", i, g)), size/16)
						}
						ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
						var out []byte
						err := cli.CallContext(ctx, "Calc.Echo", body, &out)
						cancel()
						if err != nil {
							errs <- err
							return
						}
						if !bytes.Equal(out, body) {
							errs <- fmt.Errorf("caller %d call %d: reply of %d bytes differs from its request of %d", g, i, len(out), len(body))
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
			if _, _, hits := bigPoolState(); hits == 0 {
				t.Error("no large buffer was reused: the test proves nothing")
			}
		})
	}
}
