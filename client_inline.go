package rpc

import "runtime"

// yieldToCaller lets the caller the reader has just woken run before the
// reader's next read when nothing more is buffered. That read most likely
// finds nothing and parks, a system call of a microsecond or two that the
// woken caller would otherwise wait behind (the reader → caller hand-off of
// docs/BENCHMARKS.md). With frames buffered the reader goes on at once:
// under load the callers it woke run on other threads or after the batch.
func (cc *clientConn) yieldToCaller() {
	if cc.br.Buffered() == 0 {
		runtime.Gosched()
	}
}

// othersPending reports whether calls other than the writer's own are
// pending on the connection: only then may their callers be about to write
// too, and the writer yields to let them join its write (wire.Writer.YieldWhen).
func (cc *clientConn) othersPending() bool { return cc.load.Load() > 1 }
