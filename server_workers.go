package rpc

import (
	"sync"
	"time"
)

// workerIdle is how long an idle handler goroutine waits for more work
// before it exits: long enough to carry a busy server from call to call,
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

func (p *workerPool) worker(sc servable) {
	defer p.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		sc.serve()
		sc = nil
		idle.Reset(workerIdle)
		select {
		case sc = <-p.work:
		case <-idle.C:
			return
		case <-p.quit:
			return
		}
	}
}

// stop ends idle workers and waits for all of them. Callers make sure no
// call is running or will be dispatched.
func (p *workerPool) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
