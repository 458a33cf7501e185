package rpc

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxPooledBuf is the largest buffer kept in bufPool; larger ones go to
// bigPool, which bounds what it keeps.
const maxPooledBuf = 64<<10 + 4096

// bufPool recycles frame buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// getBuf returns a buffer of length n.
func getBuf(n int) *[]byte {
	if n > maxPooledBuf {
		b := getBig(n)
		return &b
	}
	bp := bufPool.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, n, max(n, 4096))
	}
	*bp = (*bp)[:n]
	return bp
}

// putBuf returns bp to the pool. The caller must hold no reference to the
// buffer afterwards.
func putBuf(bp *[]byte) {
	if cap(*bp) > maxPooledBuf {
		putBig(*bp)
		*bp = nil
		return
	}
	*bp = (*bp)[:0]
	bufPool.Put(bp)
}

// Large buffers (encoded frames, reassembled and inflated payloads of
// chunked messages) are recycled through bigPool rather than left to the
// garbage collector: a fresh multi-MiB buffer costs page faults and
// zeroing on every message, and the collector hands it back to the OS
// soon after (madvise), which was 40 % of the CPU of a 1 MiB echo.
//
// Unlike a sync.Pool, bigPool bounds what it keeps: capacities fall in
// size classes of four steps per power of two (so a 1 MiB body plus its
// header takes 1.25 MiB, not 2), each class keeps at most bigPerClass
// buffers, all classes together at most bigMaxHeld bytes, and a buffer not
// reused for bigIdle is dropped. A pooled buffer holds no received bytes,
// so it is not charged to any connection's budget; a frameBuf taken from
// it is charged its whole capacity while it holds a payload (readbuf.go).
const (
	bigMinShift = 16 // the smallest class is 64 KiB
	bigOctaves  = 11 // up to 112 MiB
	bigSteps    = 4  // classes per octave
	bigClasses  = bigOctaves * bigSteps
	bigPerClass = 4
	bigMaxHeld  = 64 << 20
)

// bigIdle is how long a pooled large buffer may go unused before it is
// dropped (a variable for tests).
var bigIdle = 10 * time.Second

// bigPoolDebug, set by tests, fills every buffer put in the pool with
// bigPoison so that a buffer still read after its release shows up as
// corrupted data.
var bigPoolDebug atomic.Bool

const bigPoison = 0xA5

// bigClassCap returns the capacity of class k.
func bigClassCap(k int) int {
	return (1 << (bigMinShift + k/bigSteps)) / bigSteps * (bigSteps + k%bigSteps)
}

// bigClassFor returns the smallest class whose capacity is at least n, and
// that capacity; the class is -1 (and the capacity n) when n is above the
// largest class.
func bigClassFor(n int) (int, int) {
	if n <= 1<<bigMinShift {
		return 0, 1 << bigMinShift
	}
	for k := range bigClasses {
		if c := bigClassCap(k); c >= n {
			return k, c
		}
	}
	return -1, n
}

// bigClassOf returns the class whose capacity is exactly c, -1 when there
// is none: the pool takes back only buffers of its own capacities, so that
// a buffer's capacity tells what it costs (readbuf.go charges it).
func bigClassOf(c int) int {
	if k, cc := bigClassFor(c); cc == c {
		return k
	}
	return -1
}

// bigBuf is a pooled buffer and when it was put back.
type bigBuf struct {
	b  []byte
	at time.Time
}

// bigPoolT is the pool of large buffers.
type bigPoolT struct {
	mu    sync.Mutex
	free  [bigClasses][]bigBuf // most recently put last
	held  int                  // total capacity of the buffers in free
	sweep *time.Timer          // armed while free holds a buffer
	// gets and hits count requests and those served from the pool; puts
	// and drops buffers offered and those not kept (for tests).
	gets, hits, puts, drops int
}

var bigPool bigPoolT

// getBig returns a buffer of length n, from the pool when one of n's class
// is free.
func getBig(n int) []byte {
	k, c := bigClassFor(n)
	if k >= 0 {
		p := &bigPool
		p.mu.Lock()
		p.gets++
		if f := p.free[k]; len(f) > 0 {
			b := f[len(f)-1].b
			f[len(f)-1] = bigBuf{}
			p.free[k] = f[:len(f)-1]
			p.held -= cap(b)
			p.hits++
			p.mu.Unlock()
			return b[:n]
		}
		p.mu.Unlock()
	}
	return make([]byte, n, c)
}

// putBig offers b for reuse; the caller must hold no reference to it
// afterwards (nor to any slice of it).
func putBig(b []byte) {
	k := bigClassOf(cap(b))
	if k < 0 {
		return
	}
	if bigPoolDebug.Load() {
		b = b[:cap(b)]
		for i := range b {
			b[i] = bigPoison
		}
	}
	p := &bigPool
	p.mu.Lock()
	defer p.mu.Unlock()
	p.puts++
	if len(p.free[k]) >= bigPerClass || p.held+cap(b) > bigMaxHeld {
		p.drops++
		return
	}
	p.free[k] = append(p.free[k], bigBuf{b: b[:0], at: time.Now()})
	p.held += cap(b)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(bigIdle, p.dropIdle)
	}
}

// dropIdle drops the buffers not reused for bigIdle, and comes back later
// while any are left.
func (p *bigPoolT) dropIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	cutoff := time.Now().Add(-bigIdle)
	for k, f := range p.free {
		kept := f[:0]
		for _, e := range f {
			if e.at.After(cutoff) {
				kept = append(kept, e)
			} else {
				p.held -= cap(e.b)
			}
		}
		clear(f[len(kept):])
		p.free[k] = kept
	}
	if p.held > 0 {
		p.sweep.Reset(bigIdle)
	} else {
		p.sweep = nil
	}
}
