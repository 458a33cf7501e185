package rpc

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/lb"
)

// TestAttemptReportOnce: the balancer hears of an attempt exactly once,
// however many paths (reader, timer, hedge winner) report it.
func TestAttemptReportOnce(t *testing.T) {
	var n atomic.Int32
	a := &attempt{lbDone: func(lb.DoneInfo) { n.Add(1) }}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.report(nil, nil)
		}()
	}
	wg.Wait()
	if got := n.Load(); got != 1 {
		t.Fatalf("lbDone called %d times, want 1", got)
	}
}

// TestCallErrorText: every way a call fails gives an error that names the
// call, carries the "rpc: " prefix once, and matches its sentinel.
func TestCallErrorText(t *testing.T) {
	cli, calc, srv := newCalcPair(t, nil, WithMaxFrameSize(1<<10))
	mem := newMemoryRegistry(t)
	registerFake(t, mem, "Dead", deadAddr(t))
	disc := newFleetClient(t, mem)
	closed, _ := serveAndDial(t, NewServer())
	closed.Close()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name     string
		call     func() error
		wantErr  error
		wantText string
	}{
		{"timeout", func() error {
			return cli.Call("Calc.Sleep", time.Minute, new(int), WithTimeout(20*time.Millisecond))
		}, ErrTimeout, "rpc: call Calc.Sleep to "},
		{"ctx cancelled", func() error {
			return cli.CallContext(cancelled, "Calc.Add", Args{}, new(int))
		}, context.Canceled, "rpc: call Calc.Add: "},
		{"closed client", func() error {
			return closed.Call("Calc.Add", Args{}, new(int))
		}, ErrShutdown, "rpc: connection is shut down"},
		{"request over the frame limit", func() error {
			return cli.Call("Calc.Echo", make([]byte, 2<<10), new([]byte))
		}, ErrTooLarge, "rpc: call Calc.Echo: request of "},
		{"reply that does not decode", func() error {
			return cli.Call("Calc.Add", Args{1, 2}, new(string))
		}, nil, "rpc: call Calc.Add to "},
		{"unknown method", func() error {
			return cli.Call("Calc.Nope", Args{}, new(int))
		}, ErrNoMethod, "rpc: can't find method Calc.Nope"},
		{"no instances", func() error {
			return disc.Call("Nope.Add", Args{}, new(int))
		}, ErrNoInstances, "rpc: call Nope.Add: no instances of service Nope"},
		{"refused dial", func() error {
			return disc.Call("Dead.Add", Args{}, new(int), WithTimeout(5*time.Second))
		}, nil, "rpc: call Dead.Add to "},
		{"connection lost", func() error {
			call := cli.Go("Calc.Sleep", time.Minute, new(int), nil)
			waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() > 0 })
			srv.Close()
			waitCall(t, call, defaultTestTimeout)
			return call.Error
		}, ErrShutdown, "rpc: connection is shut down"},
	}
	for _, tt := range tests {
		err := tt.call()
		t.Logf("%s: %v", tt.name, err)
		if err == nil {
			t.Errorf("%s: error = nil", tt.name)
			continue
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.wantErr)
		}
		if !strings.HasPrefix(err.Error(), tt.wantText) {
			t.Errorf("%s: error = %q, want it to start with %q", tt.name, err, tt.wantText)
		}
		if errors.Is(err, ErrTimeout) && !strings.Contains(err.Error(), "timed out") {
			t.Errorf("%s: error %q does not say it timed out", tt.name, err)
		}
		if n := strings.Count(err.Error(), "rpc:"); n != 1 {
			t.Errorf("%s: error %q has %d \"rpc:\" prefixes, want 1", tt.name, err, n)
		}
	}
}

// TestHedgeTimerAfterClose: a hedge timer that fires after Close starts no
// goroutine and no attempt.
func TestHedgeTimerAfterClose(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	call := cli.newCall("Calc.Add", Args{1, 2}, new(int), make(chan *Call, 1), []CallOption{WithHedge(time.Hour)})
	call.st.service = "Calc"
	cli.Close()
	call.st.hedge() // what the timer runs
	cli.wg.mu.Lock()
	n := cli.wg.n
	cli.wg.mu.Unlock()
	if n != 0 || len(call.st.tried) != 0 {
		t.Errorf("a hedge after Close: %d goroutines, %d attempts; want none", n, len(call.st.tried))
	}
}

func TestGoGroup(t *testing.T) {
	var g goGroup
	release := make(chan struct{})
	ran := make(chan struct{}, 2)
	if !g.Go(func() { <-release; ran <- struct{}{} }) {
		t.Fatal("Go() on an open group = false")
	}
	g.close()
	if g.Go(func() { ran <- struct{}{} }) {
		t.Error("Go() on a closed group = true")
	}
	waited := make(chan struct{})
	go func() {
		g.Wait()
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("Wait() returned while a goroutine ran")
	default:
	}
	close(release)
	select {
	case <-waited:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Wait() did not return")
	}
	if len(ran) != 1 {
		t.Errorf("%d functions ran, want 1 (none after close)", len(ran))
	}
}
