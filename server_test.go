package rpc

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/seedrpc/rpc/codec"
	"github.com/seedrpc/rpc/internal/wire"
)

func TestShutdownDrains(t *testing.T) {
	srv := NewServer()
	calc := &Calc{started: make(chan struct{}, 1)}
	if err := srv.Register(calc); err != nil {
		t.Fatal(err)
	}
	lis := listenLoopback(t)
	errc := serve(srv, lis)
	cli, err := Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	var r int
	inflight := cli.Go("Calc.Sleep", 300*time.Millisecond, &r, nil, WithTimeout(defaultTestTimeout))
	select {
	case <-calc.started:
	case <-time.After(defaultTestTimeout):
		t.Fatal("handler never started")
	}
	shut := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	waitFor(t, "the client to be told to drain", func() bool { return usableConns(cli.staticPool) == 0 })

	// New calls are refused, and quickly.
	callStart := time.Now()
	var sum int
	err = cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second))
	if err == nil {
		t.Errorf("Call(Calc.Add) during Shutdown = nil error, want a refusal")
	}
	if errors.Is(err, ErrTimeout) || time.Since(callStart) > 2*time.Second {
		t.Errorf("Call(Calc.Add) during Shutdown took %v (err %v), want a quick refusal", time.Since(callStart), err)
	}

	waitCall(t, inflight, defaultTestTimeout)
	if inflight.Error != nil || r != 1 {
		t.Fatalf("in-flight Call(Calc.Sleep) during Shutdown = %d, %v; want 1, nil", r, inflight.Error)
	}
	if err := recvErr(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown() = %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Shutdown took %v with one 300ms call in flight", el)
	}
	if err := recvErr(t, errc, "Serve"); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve() after Shutdown = %v, want ErrServerClosed", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown() = %v, want nil", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close() after Shutdown = %v, want nil", err)
	}
	if err := srv.Serve(listenLoopback(t)); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve() on a shut down server = %v, want ErrServerClosed", err)
	}
}

func TestShutdownCtxExpires(t *testing.T) {
	srv := NewServer()
	probe := newProbe()
	if err := srv.Register(probe); err != nil {
		t.Fatal(err)
	}
	lis := listenLoopback(t)
	errc := serve(srv, lis)
	cli, err := Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var r int
	call := cli.Go("Probe.Wait", time.Minute, &r, nil)
	waitFor(t, "the handler to start", func() bool { return probe.waiting.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown(expiring ctx) = %v, want context.DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Shutdown(100ms ctx) took %v", el)
	}
	if err := recvErr(t, probe.ctxErr, "handler ctx end"); !errors.Is(err, context.Canceled) {
		t.Errorf("handler ctx error = %v, want context.Canceled", err)
	}
	waitCall(t, call, defaultTestTimeout)
	if !errors.Is(call.Error, ErrShutdown) {
		t.Errorf("pending call after forced Shutdown error = %v, want ErrShutdown", call.Error)
	}
	if err := recvErr(t, errc, "Serve"); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve() = %v, want ErrServerClosed", err)
	}
}

func TestServeReturnsAfterClose(t *testing.T) {
	srv := NewServer()
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	lis := listenLoopback(t)
	errc := serve(srv, lis)
	cli, err := Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := srv.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := recvErr(t, errc, "Serve"); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve() after Close = %v, want ErrServerClosed", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown() after Close = %v, want nil", err)
	}
	if err := srv.Serve(listenLoopback(t)); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve() on a closed server = %v, want ErrServerClosed", err)
	}
}

func TestGoroutinesAfterLifecycles(t *testing.T) {
	waitGoroutines := func(limit int) int {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= limit {
				return n
			}
			select {
			case <-tick.C:
			case <-deadline:
				return n
			}
		}
	}
	base := runtime.NumGoroutine()
	for i := range 20 {
		srv := NewServer()
		if err := srv.Register(&Calc{}); err != nil {
			t.Fatal(err)
		}
		lis := listenLoopback(t)
		errc := serve(srv, lis)
		cli, err := Dial("tcp", lis.Addr().String(), WithKeepalive(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for j := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var sum int
				if err := cli.Call("Calc.Add", Args{i, j}, &sum); err != nil {
					t.Errorf("Call(Calc.Add) = %v", err)
				}
			}()
		}
		wg.Wait()
		cli.Go("Calc.Sleep", time.Minute, new(int), nil) // pending at Close
		cli.Callback("Calc.Add", Args{1, 1}, new(int), func(*Call) {})
		if i%2 == 0 {
			cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			srv.Shutdown(ctx)
			cancel()
		} else {
			srv.Close()
			cli.Close()
		}
		recvErr(t, errc, "Serve")
	}
	if n := waitGoroutines(base); n > base {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("after 20 lifecycles: %d goroutines, baseline %d\n%s", n, base, buf)
	}
}

// TestShutdownServesLateConnectionsDraining: a connection that arrives while
// Shutdown is under way (it was dialled just before the listener closed) is
// told to drain and has its request refused unrun, never dropped, so the
// client can retry it elsewhere.
func TestShutdownServesLateConnectionsDraining(t *testing.T) {
	cli, calc, srv := newCalcPair(t, nil)
	long := cli.Go("Calc.Sleep", 300*time.Millisecond, new(int), nil, WithTimeout(defaultTestTimeout))
	select {
	case <-calc.started:
	case <-time.After(defaultTestTimeout):
		t.Fatal("the long call never started")
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	waitFor(t, "Shutdown to begin", func() bool { return srv.shuttingDown.Load() })

	local, remote := net.Pipe()
	defer local.Close()
	go srv.ServeConn(remote) // returns when Shutdown closes it
	body, _ := codec.Msgpack{}.AppendMarshal(nil, Args{1, 2})
	frame := make([]byte, wire.HeaderSize, wire.HeaderSize+len("Calc.Add")+len(body))
	frame = append(append(frame, "Calc.Add"...), body...)
	hdr := wire.Header{Type: wire.TypeRequest, Codec: 1, Seq: 7, MethodLen: uint16(len("Calc.Add")), BodyLen: uint32(len(body))}
	wire.PutHeader(frame, &hdr)
	local.SetDeadline(time.Now().Add(defaultTestTimeout))
	go local.Write(frame) // net.Pipe: the write completes as the server reads

	var sawDrain, sawRefusal bool
	for !(sawDrain && sawRefusal) {
		var hb [wire.HeaderSize]byte
		if _, err := io.ReadFull(local, hb[:]); err != nil {
			t.Fatalf("reading from the late connection: %v (draining frame %v, refusal %v)", err, sawDrain, sawRefusal)
		}
		h, err := wire.ParseHeader(hb[:], wire.DefaultMaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, local, int64(h.PayloadLen())); err != nil {
			t.Fatal(err)
		}
		switch {
		case h.Type == wire.TypeDraining:
			sawDrain = true
		case h.Type == wire.TypeResponse && h.Seq == 7:
			if h.Status != wire.StatusShuttingDown {
				t.Fatalf("late request answered with status %d, want %d (shutting down)", h.Status, wire.StatusShuttingDown)
			}
			sawRefusal = true
		}
	}
	waitCall(t, long, defaultTestTimeout)
	if long.Error != nil {
		t.Errorf("call in flight during Shutdown failed: %v", long.Error)
	}
	local.Close()
	if err := recvErr(t, shut, "Shutdown"); err != nil {
		t.Errorf("Shutdown() = %v", err)
	}
}
