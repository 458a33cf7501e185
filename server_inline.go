package rpc

import (
	"sync"
	"sync/atomic"
	"time"
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
// runs the call differs. With more frames buffered the reader goes on
// reading them and their calls go to workers as before.

// inlineBound is how long a call may run on its connection's reading
// goroutine before the reading is handed to another goroutine.
const inlineBound = time.Millisecond

// guardLinger is how many ticks without any call running inline the
// guard waits before it exits.
const guardLinger = 200

// start runs a call dispatch admitted: on this goroutine when nothing else
// is buffered (readFrames then returns, and readLoop runs it), else on a
// worker.
func (c *serverConn) start(job servable) {
	if c.inline == nil && c.br.Buffered() == 0 {
		c.inline = job
		return
	}
	c.srv.workers.run(job)
}

// readLoop reads the connection and runs the calls readFrames leaves in
// c.inline, until the connection ends or the guard has taken the reading
// to another goroutine during a call. The goroutine whose reading ends with
// the connection closes it (cancelling the calls still running), releases
// the partial requests and closes readDone.
func (c *serverConn) readLoop() {
	for {
		c.readFrames()
		job := c.inline
		if job == nil {
			c.close()
			c.parts.releaseAll()
			close(c.readDone)
			return
		}
		c.inline = nil
		since := int64(monoNow())
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
