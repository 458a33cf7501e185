package rpc

import (
	"sync"
	"testing"
	"time"
)

// jobFunc is a servable made of a function.
type jobFunc func()

func (f jobFunc) serve() { f() }

// TestWorkerPoolIdleExit: workers serve the jobs handed to them while
// busy, stay for the next job a while, and exit on their own after
// workerIdle to twice that without work.
func TestWorkerPoolIdleExit(t *testing.T) {
	var p workerPool
	p.init()
	defer p.stop()
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 3 {
		wg.Add(1)
		p.run(jobFunc(func() { defer wg.Done(); <-release }))
	}
	close(release)
	wg.Wait()
	// Busy: jobs keep coming for longer than workerIdle; no worker exits
	// while it serves them.
	start := time.Now()
	for time.Since(start) < 3*workerIdle {
		wg.Add(1)
		p.run(jobFunc(wg.Done))
		wg.Wait()
		time.Sleep(workerIdle / 10)
	}
	idleFrom := time.Now()
	exited := make(chan struct{})
	go func() { p.wg.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(2*workerIdle + 5*time.Second):
		t.Fatal("idle workers did not exit")
	}
	// The last job came a tenth of workerIdle before idleFrom, and a
	// worker exits at the second firing after it.
	if d := time.Since(idleFrom); d < workerIdle/2 {
		t.Errorf("idle workers exited %v after the last job, want about workerIdle (%v) or more", d, workerIdle)
	}
}

// TestWorkerPoolShrinksUnderSteadyLoad: after a burst started many
// workers, a steady stream of calls, one at a time, keeps one of them
// busy and lets the others exit. Handed out in turn, the stream kept every
// worker of the burst alive (each got a job every few milliseconds).
func TestWorkerPoolShrinksUnderSteadyLoad(t *testing.T) {
	var p workerPool
	p.init()
	defer p.stop()
	const burst = 20
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range burst {
		wg.Add(1)
		p.run(jobFunc(func() { defer wg.Done(); <-release }))
	}
	if n := p.workers(); n != burst {
		t.Fatalf("%d workers after a burst of %d blocked jobs, want %d", n, burst, burst)
	}
	close(release)
	wg.Wait()
	deadline := time.Now().Add(2*workerIdle + 5*time.Second)
	for p.workers() > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still alive %v into a stream of one call at a time, want at most 2", p.workers(), 2*workerIdle+5*time.Second)
		}
		wg.Add(1)
		p.run(jobFunc(wg.Done))
		wg.Wait()
		time.Sleep(time.Millisecond)
	}
}
