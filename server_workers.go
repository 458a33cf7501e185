package rpc

import (
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
type workerPool struct {
	work chan servable // unbuffered: a send succeeds only to an idle worker
	quit chan struct{} // closed by stop
	wg   sync.WaitGroup
	once sync.Once
}

func (p *workerPool) init() {
	p.work = make(chan servable)
	p.quit = make(chan struct{})
}

// run hands sc to an idle worker or starts a new one.
func (p *workerPool) run(sc servable) {
	select {
	case p.work <- sc:
	default:
		p.wg.Add(1)
		go p.worker(sc)
	}
}

// worker runs sc, then the jobs handed to it, until it has been idle for
// workerIdle to twice that. Its timer is not reset per job (a timer update
// on every call of a busy server): it fires every workerIdle, and the
// worker exits at a firing that finds it served nothing since the last.
func (p *workerPool) worker(sc servable) {
	defer p.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		sc.serve()
		worked := true
		for sc = nil; sc == nil; {
			select {
			case sc = <-p.work:
			case <-idle.C:
				if !worked {
					return
				}
				worked = false
				idle.Reset(workerIdle)
			case <-p.quit:
				return
			}
		}
	}
}

// stop ends idle workers and waits for all of them. Callers make sure no
// call is running or will be dispatched.
func (p *workerPool) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
