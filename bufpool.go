package rpc

import "sync"

// maxPooledBuf is the largest buffer kept for reuse; larger ones (big
// payloads are rare) go to the garbage collector so the pool cannot pin
// memory.
const maxPooledBuf = 64<<10 + 4096

// bufPool recycles frame buffers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// getBuf returns a buffer of length n.
func getBuf(n int) *[]byte {
	if n > maxPooledBuf {
		b := make([]byte, n)
		return &b
	}
	bp := bufPool.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, n, max(n, 4096))
	}
	*bp = (*bp)[:n]
	return bp
}

// putBuf returns bp to the pool.
func putBuf(bp *[]byte) {
	if cap(*bp) > maxPooledBuf {
		return
	}
	*bp = (*bp)[:0]
	bufPool.Put(bp)
}
