package rpc

import (
	"slices"
	"sync"
	"time"
)

// workerIdle is how long (up to twice) an idle handler goroutine waits for
// more work before it exits: long enough to carry a busy server from call to call,
// short enough that a quiet server (DefaultServer, which nobody closes)
// soon has no handler goroutines left.
const workerIdle = 250 * time.Millisecond

// workerPool runs server calls on reused goroutines. A fresh goroutine
// starts with a small stack that decoding and reflection grow on every
// call, at the cost of a stack copy each time; a reused one keeps its
// grown stack. Calls never wait for a worker: with none idle, a new
// goroutine starts and joins the pool when it is done.
//
// The pool hands work to the worker that went idle last (a stack, not a
// queue), so that it keeps about as many workers as calls run at once:
// the workers at the bottom of the stack get nothing and exit. Handed out
// in turn, as an unbuffered channel does, the jobs kept every worker a
// burst ever started alive: 255 idle goroutines on a server of 256
// callers whose handlers take microseconds, each a stack every garbage
// collection scanned and a timer firing four times a second
// (docs/BENCHMARKS.md, issue 15, sixth step).
type workerPool struct {
	quit chan struct{} // closed by stop
	wg   sync.WaitGroup
	once sync.Once

	mu sync.Mutex
	// idle holds the idle workers, the one idle longest first.
	idle []*worker
	// live counts the workers (for tests).
	live int
}

// worker is an idle worker's mailbox: run sends it one job after taking
// it off the idle stack.
type worker struct {
	job chan servable // buffered 1: a send never blocks
}

func (p *workerPool) init() {
	p.quit = make(chan struct{})
}

// run hands sc to the worker that went idle last, or starts a new one.
func (p *workerPool) run(sc servable) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.job <- sc
		return
	}
	p.live++
	p.mu.Unlock()
	p.wg.Add(1)
	go p.worker(sc)
}

// worker runs sc, then the jobs handed to it, until it has been idle for
// workerIdle to twice that. Its timer is not reset per job (a timer update
// on every call of a busy server): it fires every workerIdle, and the
// worker exits at a firing that finds it served nothing since the last.
func (p *workerPool) worker(sc servable) {
	defer p.wg.Done()
	w := &worker{job: make(chan servable, 1)}
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		sc.serve()
		worked := true
		p.mu.Lock()
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		for sc = nil; sc == nil; {
			select {
			case sc = <-w.job:
			case <-idle.C:
				if !worked && p.leave(w) {
					return
				}
				worked = false
				idle.Reset(workerIdle)
			case <-p.quit:
				p.mu.Lock()
				p.live--
				p.mu.Unlock()
				return
			}
		}
	}
}

// leave takes idle worker w off the stack so that it can exit; it reports
// false when run has taken it already, and a job is on its way.
func (p *workerPool) leave(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.Index(p.idle, w)
	if i < 0 {
		return false
	}
	p.idle = slices.Delete(p.idle, i, i+1)
	p.live--
	return true
}

// workers returns how many workers there are, idle or not.
func (p *workerPool) workers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.live
}

// stop ends idle workers and waits for all of them. Callers make sure no
// call is running or will be dispatched.
func (p *workerPool) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
