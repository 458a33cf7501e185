package rpc

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// Running a call on the goroutine that read it.
//
// A request read while nothing else waits in the connection's buffer is
// usually the only one in flight: a lone caller's. Handed to a worker, it
// would wait for that worker to be woken, behind this goroutine's next
// read, which finds nothing and parks (2–4 µs a call in the trace of
// docs/BENCHMARKS.md); and every such wake-up of a goroutine on an idle
// machine also wakes a thread, which spins looking for work before it
// sleeps again: tens of µs of CPU per call at one caller. So the goroutine
// that read the request runs the call itself, then goes on reading, as a
// hand-written TCP server would.
//
// While it runs the call the connection is not read. A call that has not
// returned within inlineBound gets the reading taken from it: the server's
// inline guard (one goroutine per server, ticking only while calls run
// inline) hands the reading to a worker, and the call's goroutine ends
// when the call does. So a slow handler delays the frames behind it (the
// next call, a cancel frame, the client's hang-up) by at most about
// inlineBound plus one tick, and never blocks the connection.
//
// Every bound dispatch applies (the per-connection and server-wide caps,
// the limiter, the read budget and timeout, tracking for cancel frames,
// Shutdown and connection loss) holds unchanged: only the goroutine that
// runs the call differs.
//
// A method known to be slow (methodStats.quick) runs on a worker, so that
// the calls of other callers sharing the connection are read and started
// meanwhile; its runs there, and one lone call in 16 still run inline,
// keep its average current, so that it comes back once it is quick again.
//
// With more requests buffered behind it (a busy connection), a call goes
// to a worker, so that the calls run in parallel, unless that parallelism
// buys nothing: when the server already runs at least GOMAXPROCS calls
// (every core has one) and the method is quick (methodStats.quick: its
// handler averaged under batchQuick when it ran inline), the call runs
// inline too, and the requests behind it are run in turn by the same
// goroutine, each without a hand-off to a worker (up to a fifth of a busy
// server's CPU went to those, profiled at 256 callers). While it runs
// such a batch, the reading goroutine holds the connection's writer
// (wire.Writer.Hold): the responses, its own and the workers', wait in
// the writer and leave in one write once no whole request is left in the
// buffer (or once they have waited maxHold), instead of a write each.
// The hold is let go before anything that may wait: a read that would
// block, a full per-connection cap, the read budget, the batch's last
// call when its method is not quick; and when the guard takes the reading
// away from a call that turned out slow, the goroutine it hands the
// reading to lets it go first. That call's run also pushes its method's
// average up, so that its next calls go to workers.

// inlineBound is how long a call may run on its connection's reading
// goroutine before the reading is handed to another goroutine.
const inlineBound = time.Millisecond

// maxHold bounds how long a batch holds its responses: once it has held
// them this long, they are written before the batch's next call runs. As
// inlineBound, it bounds what running calls inline adds to the latency of
// the others; shorter, it splits the batches of a busy server, whose
// wall-clock time includes waiting for a core (measured: 200µs cost
// a few percent of calls/s at 256 callers).
var maxHold = inlineBound // tests change it

// guardLinger is how many ticks without any call running inline the
// guard waits before it exits.
const guardLinger = 200

// start runs a call dispatch admitted: on this goroutine when its method
// is quick and nothing else is buffered, or inBatch allows it (readFrames
// then returns, and readLoop runs it), else on a worker.
func (c *serverConn) start(sc *serverCall, job servable) {
	c.lookup(sc) // for its method's stats, and so that invoke need not
	if c.inline == nil && (c.br.Buffered() == 0 && c.lone(sc) || c.inBatch(sc)) {
		c.inline, c.inlineCall = job, sc
		return
	}
	sc.onWorker = true
	if c.holding && !c.nextWhole() {
		// The batch ends with this call, on a worker: what is held goes
		// now rather than join its response.
		c.releaseHold()
	}
	c.srv.workers.run(job)
}

// lone reports whether sc, read with nothing buffered behind it, runs on
// the reading goroutine: unless its method is known to be slow (but for
// a probe now and then, methodStats.probeInline). A slow call run there
// would keep the connection unread, so that the next call of another
// caller sharing the connection (the pool packs them, client_pool.go)
// waited for it, up to inlineBound; on a worker it costs a goroutine
// wake-up, little next to its own time. A request for no method is
// answered at once.
func (c *serverConn) lone(sc *serverCall) bool {
	st := sc.stats()
	return st == nil || st.quick() || st.probeInline()
}

// lookup sets sc.m, the call's method, if there is one, once (start):
// invoke then does not look it up again.
func (c *serverConn) lookup(sc *serverCall) {
	if sc.m == nil {
		sc.m, _ = c.srv.lookup(sc.method)
	}
}

// inBatch reports whether sc, read with more frames buffered behind it,
// runs on the reading goroutine: every core already runs a call and its
// method is quick.
func (c *serverConn) inBatch(sc *serverCall) bool {
	return c.srv.running.Load() >= c.procs && sc.stats().quick()
}

// nextWhole reports whether a whole frame waits in the read buffer, so
// that reading it does not block.
func (c *serverConn) nextWhole() bool {
	n := c.br.Buffered()
	if n < wire.HeaderSize {
		return false
	}
	b, _ := c.br.Peek(wire.HeaderSize)
	h, err := wire.ParseHeader(b, hardLimit(c.srv.opts.maxFrame))
	return err == nil && wire.HeaderSize+h.PayloadLen() <= n
}

// releaseHold writes the responses held while the reading ran a batch.
func (c *serverConn) releaseHold() {
	if c.holding {
		c.holding = false
		_ = c.w.Release() // a failed write closes the connection
	}
}

// readLoop reads the connection and runs the calls readFrames leaves in
// c.inline, until the connection ends or the guard has taken the reading
// to another goroutine during a call. The goroutine whose reading ends with
// the connection closes it (cancelling the calls still running), releases
// the partial requests and closes readDone.
func (c *serverConn) readLoop() {
	c.releaseHold() // held by a goroutine the guard took the reading from
	for {
		c.readFrames()
		job := c.inline
		if job == nil {
			c.releaseHold()
			c.close()
			c.parts.releaseAll()
			close(c.readDone)
			return
		}
		c.inline = nil
		sc := c.inlineCall
		c.inlineCall = nil
		st := sc.stats()
		now := monoNow() // one reading for the hold and the guard
		if c.holding && (now-c.holdSince >= maxHold || !c.nextWhole() && !st.quick()) {
			// Held long enough; or the batch's last call, which may be
			// slow: what is held goes before it runs.
			c.releaseHold()
		}
		if !c.holding && c.nextWhole() {
			// A batch: its responses leave together.
			if c.holding = c.w.Hold(); c.holding {
				c.holdSince = now
			}
		}
		since := int64(now)
		c.inlineSince.Store(since)
		c.srv.guard.add(c.srv, c)
		job.serve()
		if !c.inlineSince.CompareAndSwap(since, 0) {
			return // the guard handed the reading to a worker meanwhile
		}
	}
}

// connReader is the reading of a connection as a worker's job.
type connReader serverConn

func (r *connReader) serve() { (*serverConn)(r).readLoop() }

// othersRunning reports whether handlers other than the writer's own are
// running on the connection: only then may they be about to write too, and
// the writer yields to let them join its write (wire.Writer.YieldWhen).
func (c *serverConn) othersRunning() bool { return c.running.Load() > 1 }

// inlineGuard takes the reading away from calls that run inline for longer
// than inlineBound. Its goroutine runs while calls run inline and exits
// after guardLinger idle ticks or when the server closes. It looks only at
// the connections that started a call inline since its last tick, or
// still run one: each registers at most once a tick.
type inlineGuard struct {
	on    atomic.Bool   // the goroutine runs
	epoch atomic.Uint64 // counts ticks; see serverConn.guardSeen
	wg    sync.WaitGroup

	mu sync.Mutex // guards watch, spare
	// watch are the connections to look at on the next tick; spare is a
	// buffer for it.
	watch, spare []*serverConn
}

// add puts c, about to run a call inline, under watch (once a tick), and
// starts the guard's goroutine unless it runs.
func (g *inlineGuard) add(s *Server, c *serverConn) {
	if e := g.epoch.Load() + 1; c.guardSeen.Load() != e {
		c.guardSeen.Store(e)
		g.mu.Lock()
		g.watch = append(g.watch, c)
		g.mu.Unlock()
	}
	if g.on.Load() || !g.on.CompareAndSwap(false, true) {
		return
	}
	g.wg.Add(1)
	go g.loop(s)
}

// wait waits for the guard's goroutine; the server is closed and serves no
// connection any more.
func (g *inlineGuard) wait() { g.wg.Wait() }

func (g *inlineGuard) loop(s *Server) {
	defer g.wg.Done()
	tick := time.NewTicker(inlineBound)
	defer tick.Stop()
	idle := 0
	for {
		select {
		case <-tick.C:
		case <-s.baseCtx.Done():
			g.on.Store(false)
			g.mu.Lock()
			g.watch, g.spare = nil, nil
			g.mu.Unlock()
			return
		}
		if g.check(s) {
			idle = 0
			continue
		}
		if idle++; idle < guardLinger {
			continue
		}
		// Exit, unless a call started inline while on was still set (its
		// goroutine did not start a guard).
		g.on.Store(false)
		if !g.check(s) || !g.on.CompareAndSwap(false, true) {
			return
		}
		idle = 0
	}
}

// check hands the reading of every watched connection whose call has run
// inline for inlineBound to a worker, and keeps watching those whose call
// runs still; it reports whether any call runs inline.
func (g *inlineGuard) check(s *Server) bool {
	g.mu.Lock()
	list := g.watch
	g.watch, g.spare = g.spare, nil
	e := g.epoch.Add(1) + 1 // a connection registered for this tick has guardSeen e
	g.mu.Unlock()

	now := int64(monoNow())
	keep := list[:0]
	for _, c := range list {
		since := c.inlineSince.Load()
		if since == 0 {
			continue
		}
		if now-since >= int64(inlineBound) && c.inlineSince.CompareAndSwap(since, 0) {
			s.workers.run((*connReader)(c))
			continue
		}
		c.guardSeen.Store(e)
		keep = append(keep, c)
	}
	g.mu.Lock()
	g.watch = append(g.watch, keep...)
	clear(list[:cap(list)])
	g.spare = list[:0]
	g.mu.Unlock()
	return len(keep) > 0
}
