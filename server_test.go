package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seedrpc/rpc/codec"
	"github.com/seedrpc/rpc/internal/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// serve runs srv on lis in the background and returns Serve's result channel.
func serve(srv *Server, lis net.Listener) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	return errc
}

func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

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
	time.Sleep(50 * time.Millisecond) // let Shutdown close the listener and send draining frames

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
	time.Sleep(50 * time.Millisecond)
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

func TestServerWideCap(t *testing.T) {
	cli, calc, _ := newCalcPair(t, []ServerOption{WithMaxCalls(1, 0)})
	var r int
	first := cli.Go("Calc.Sleep", 500*time.Millisecond, &r, nil, WithTimeout(defaultTestTimeout))
	select {
	case <-calc.started:
	case <-time.After(defaultTestTimeout):
		t.Fatal("handler never started")
	}
	var sum int
	err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second))
	if !errors.Is(err, ErrOverloaded) {
		t.Errorf("second concurrent Call error = %v, want ErrOverloaded", err)
	}
	waitCall(t, first, defaultTestTimeout)
	if first.Error != nil {
		t.Errorf("first Call error = %v", first.Error)
	}
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil || sum != 3 {
		t.Errorf("Call after the first finished = %d, %v; want 3, nil", sum, err)
	}
}

func TestPerConnCap(t *testing.T) {
	cli, probe, _, _ := newProbePair(t, []ServerOption{WithMaxCalls(0, 2)}, WithPoolSize(1))
	const n = 10
	calls := make([]*Call, n)
	replies := make([]int, n)
	for i := range calls {
		calls[i] = cli.Go("Probe.Hold", 30*time.Millisecond, &replies[i], nil, WithTimeout(defaultTestTimeout))
	}
	for _, call := range calls {
		waitCall(t, call, defaultTestTimeout)
		if call.Error != nil {
			t.Fatalf("Go(Probe.Hold) error = %v", call.Error)
		}
	}
	if m := probe.maxRunning.Load(); m > 2 || m < 1 {
		t.Errorf("max concurrent handlers on one connection = %d, want 1..2", m)
	}
}

// TestPerConnCapKeepalive: while the reader waits at the per-connection cap
// it reads no pings either; the client must not take that for a dead peer.
func TestPerConnCapKeepalive(t *testing.T) {
	cli, _, _, _ := newProbePair(t, []ServerOption{WithMaxCalls(0, 1)}, WithPoolSize(1), WithKeepalive(100*time.Millisecond))
	var r1, r2 int
	c1 := cli.Go("Probe.Hold", 800*time.Millisecond, &r1, nil)
	c2 := cli.Go("Probe.Hold", 800*time.Millisecond, &r2, nil)
	waitCall(t, c1, defaultTestTimeout)
	waitCall(t, c2, defaultTestTimeout)
	if c1.Error != nil || c2.Error != nil {
		t.Errorf("calls queued at the per-connection cap failed: %v; %v", c1.Error, c2.Error)
	}
}

func TestServerDiesPendingFailFast(t *testing.T) {
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
	calls := make([]*Call, 5)
	for i := range calls {
		calls[i] = cli.Go("Calc.Sleep", 30*time.Second, new(int), nil, WithTimeout(20*time.Second))
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	srv.Close()
	for _, call := range calls {
		waitCall(t, call, 5*time.Second)
		if !errors.Is(call.Error, ErrShutdown) {
			t.Errorf("pending call after server Close error = %v, want ErrShutdown", call.Error)
		}
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("pending calls failed %v after the server closed, want at once", el)
	}
	recvErr(t, errc, "Serve")
}

func TestClientCloseShutdown(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	var r int
	pending := cli.Go("Calc.Sleep", 30*time.Second, &r, nil)
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := cli.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close() took %v", el)
	}
	waitCall(t, pending, time.Second)
	if !errors.Is(pending.Error, ErrShutdown) {
		t.Errorf("pending call after Close error = %v, want ErrShutdown", pending.Error)
	}
	if err := cli.Call("Calc.Add", Args{1, 2}, &r); !errors.Is(err, ErrShutdown) {
		t.Errorf("Call after Close error = %v, want ErrShutdown", err)
	}
	call := cli.Go("Calc.Add", Args{1, 2}, &r, nil)
	waitCall(t, call, time.Second)
	if !errors.Is(call.Error, ErrShutdown) {
		t.Errorf("Go after Close error = %v, want ErrShutdown", call.Error)
	}
	if err := cli.Oneway("Calc.Add", Args{1, 2}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Oneway after Close error = %v, want ErrShutdown", err)
	}
	if err := cli.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
}

func TestRedialAfterRestart(t *testing.T) {
	lis := listenLoopback(t)
	addr := lis.Addr().String()
	srv := NewServer()
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	errc := serve(srv, lis)
	cli, err := Dial("tcp", addr, WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil {
		t.Fatalf("Call before restart = %v", err)
	}
	pending := cli.Go("Calc.Sleep", 30*time.Second, new(int), nil)
	time.Sleep(20 * time.Millisecond)
	srv.Close()
	recvErr(t, errc, "Serve")
	waitCall(t, pending, 5*time.Second)
	if !errors.Is(pending.Error, ErrShutdown) {
		t.Errorf("pending call across restart error = %v, want ErrShutdown", pending.Error)
	}

	// Restart on the same port.
	var lis2 net.Listener
	waitFor(t, "the port to be free", func() bool {
		lis2, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv2 := NewServer()
	if err := srv2.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	errc2 := serve(srv2, lis2)
	defer func() {
		srv2.Close()
		recvErr(t, errc2, "Serve")
	}()
	if err := cli.Call("Calc.Add", Args{2, 3}, &sum, WithTimeout(5*time.Second)); err != nil || sum != 5 {
		t.Fatalf("Call after restart = %d, %v; want 5, nil", sum, err)
	}
}

// frame builds a raw frame.
func frame(typ wire.Type, seq uint64, method string, body []byte) []byte {
	b := make([]byte, wire.HeaderSize, wire.HeaderSize+len(method)+len(body))
	wire.PutHeader(b, &wire.Header{Type: typ, Codec: 1, Seq: seq, MethodLen: uint16(len(method)), BodyLen: uint32(len(body))})
	b = append(b, method...)
	return append(b, body...)
}

// expectClosed reads from nc until the server closes it, failing if that
// takes longer than a few seconds. It returns everything read.
func expectClosed(t *testing.T, nc net.Conn, what string) []byte {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := io.ReadAll(nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: server did not close the connection within 3s", what)
	} else if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("%s: read error = %v, want EOF or ECONNRESET", what, err)
	}
	return got
}

func TestGarbageConnections(t *testing.T) {
	var logs syncBuffer
	cli, _, _, addr := newProbePair(t, []ServerOption{WithLogger(newTextLogger(&logs))}, WithPoolSize(1))
	huge := frame(wire.TypeRequest, 1, "Calc.Add", nil)
	binary.BigEndian.PutUint32(huge[20:24], 0xffffffff)
	badVersion := frame(wire.TypeRequest, 1, "Calc.Add", nil)
	badVersion[2] = 9
	truncated := frame(wire.TypeRequest, 1, "Calc.Add", make([]byte, 100))[:wire.HeaderSize+20]
	response := frame(wire.TypeResponse, 1, "", []byte{0xc0})
	tests := []struct {
		name       string
		give       []byte
		closeWrite bool // half-close after sending (a truncated frame, then EOF)
	}{
		{name: "http", give: []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n")},
		{name: "short http", give: []byte("GET / HTTP/1.0\r\n\r\n")},
		{name: "0xff x 64", give: []byte(strings.Repeat("\xff", 64))},
		{name: "huge length", give: huge},
		{name: "bad version", give: badVersion},
		{name: "bad type", give: func() []byte { b := frame(wire.TypeRequest, 1, "", nil); b[3] = 99; return b }()},
		{name: "response from client", give: response},
		{name: "method on ping", give: func() []byte { b := frame(wire.TypeRequest, 1, "Calc.Add", nil); b[3] = byte(wire.TypePing); return b }()},
		{name: "truncated", give: truncated, closeWrite: true},
		{name: "bad metadata", give: func() []byte {
			b := frame(wire.TypeRequest, 1, "Calc.Add", nil)
			binary.BigEndian.PutUint32(b[16:20], 3)
			return append(b, 0, 1, 2)
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write(tt.give); err != nil {
				t.Fatalf("Write = %v", err)
			}
			if tt.closeWrite {
				nc.(*net.TCPConn).CloseWrite()
			}
			if got := expectClosed(t, nc, tt.name); len(got) > 0 {
				t.Errorf("server answered garbage with %d bytes % x", len(got), got[:min(len(got), 32)])
			}
			// Other connections keep working.
			var sum int
			if err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second)); err != nil || sum != 3 {
				t.Fatalf("Call(Calc.Add) after garbage = %d, %v; want 3, nil", sum, err)
			}
		})
	}
	if !strings.Contains(logs.String(), "bad frame") {
		t.Errorf("server log does not mention the bad frames:\n%s", logs.String())
	}
}

func TestAllocationBomb(t *testing.T) {
	cli, _, _, addr := newProbePair(t, nil)
	bomb := msgpack.RawMessage{0xdd, 0xff, 0xff, 0xff, 0xff} // array32 of 4G elements
	var n int
	err := cli.Call("Probe.Ints", bomb, &n, WithTimeout(5*time.Second))
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Call(Probe.Ints, bomb) error = %v, want ErrBadRequest", err)
	}
	for _, b := range [][]byte{
		{0xdc, 0xff, 0xff},                    // array16
		{0xdf, 0xff, 0xff, 0xff, 0xff},        // map32 into []int
		{0xdb, 0xff, 0xff, 0xff, 0xff},        // str32
		{0xc6, 0x7f, 0xff, 0xff, 0xff},        // bin32
		{0x91, 0x91, 0x91, 0x91, 0x91, 0x91},  // nested, truncated
		[]byte(strings.Repeat("\x91", 10000)), // deep nesting
	} {
		err := cli.Call("Probe.Ints", msgpack.RawMessage(b), &n, WithTimeout(5*time.Second))
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("Call(Probe.Ints, % x) error = %v, want ErrBadRequest", b[:min(len(b), 8)], err)
		}
	}
	if err := cli.Call("Probe.Ints", []int{1, 2, 3}, &n); err != nil || n != 3 {
		t.Fatalf("Call(Probe.Ints) after bombs = %d, %v; want 3, nil", n, err)
	}

	// The same bomb in a hand-made frame gets a bad-request response.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(frame(wire.TypeRequest, 7, "Probe.Ints", bomb)); err != nil {
		t.Fatal(err)
	}
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(nc, hb[:]); err != nil {
		t.Fatalf("reading the response header: %v", err)
	}
	h, err := wire.ParseHeader(hb[:], wire.DefaultMaxFrameSize)
	if err != nil {
		t.Fatalf("ParseHeader(response) = %v", err)
	}
	if h.Type != wire.TypeResponse || h.Seq != 7 || h.Status != wire.StatusBadRequest {
		t.Errorf("response = %+v, want a bad-request response to seq 7", h)
	}
}

func TestGoroutinesAfterLifecycles(t *testing.T) {
	waitGoroutines := func(limit int) int {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= limit || time.Now().After(deadline) {
				return n
			}
			time.Sleep(10 * time.Millisecond)
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
	srv.ServeConn(remote)
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
