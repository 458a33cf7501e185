package rpc

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

func TestKeepaliveBlackhole(t *testing.T) {
	cli, calc, proxy := proxiedCalc(t, WithKeepalive(100*time.Millisecond), WithPoolSize(1))
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil {
		t.Fatalf("Call through the proxy = %v", err)
	}
	// Idle for a few keepalive intervals: pings keep a healthy connection up.
	conn := cli.staticPool.ready()
	up := proxy.up.Load()
	waitFor(t, "three pings", func() bool { return proxy.up.Load()-up >= 3*wire.HeaderSize })
	if got := cli.staticPool.ready(); got != conn {
		t.Errorf("the connection was replaced while idle with keepalive pings answered")
	}
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second)); err != nil {
		t.Fatalf("Call after idling with keepalive = %v", err)
	}

	pending := cli.Go("Calc.Sleep", time.Minute, new(int), nil) // no timeout
	waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() == 1 })
	proxy.frozen.Store(true)
	frozeAt := time.Now()
	waitCall(t, pending, 5*time.Second)
	if !errors.Is(pending.Error, ErrShutdown) {
		t.Errorf("pending call on a blackholed connection error = %v, want ErrShutdown", pending.Error)
	}
	if el := time.Since(frozeAt); el > 1200*time.Millisecond {
		t.Errorf("blackhole detected after %v, want within about 1s with a 100ms keepalive", el)
	} else {
		t.Logf("blackhole detected after %v", el)
	}

	// After the partition heals, the next call re-dials.
	proxy.frozen.Store(false)
	if err := cli.Call("Calc.Add", Args{2, 3}, &sum, WithTimeout(5*time.Second)); err != nil || sum != 5 {
		t.Fatalf("Call after the partition healed = %d, %v; want 5, nil", sum, err)
	}

	// A call on a connection that blackholes later: a new proxy is a new
	// path; the client re-dials there too.
	proxy.frozen.Store(true)
	call := cli.Go("Calc.Add", Args{1, 1}, &sum, nil)
	waitCall(t, call, 5*time.Second)
	if !errors.Is(call.Error, ErrShutdown) {
		t.Errorf("call sent into a blackhole error = %v, want ErrShutdown", call.Error)
	}
	proxy.frozen.Store(false)
}

// TestWriteStallHonoursTimeout: a peer that stops reading fills the socket
// buffers; a call or oneway with a timeout must still return by its deadline
// instead of blocking in the socket write until keepalive kills the
// connection.
func TestWriteStallHonoursTimeout(t *testing.T) {
	srv := NewServer()
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv)
	payload := make([]byte, 4<<20)
	const timeout = 200 * time.Millisecond
	stalled := func(t *testing.T) *Client {
		proxy := newFreezeProxy(t, addr)
		cli, err := Dial("tcp", proxy.addr(), WithPoolSize(1), WithKeepalive(3*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		proxy.frozen.Store(true)
		return cli
	}
	t.Run("oneway", func(t *testing.T) {
		cli := stalled(t)
		for i := range 8 { // 32 MiB: far more than the loopback socket buffers hold
			start := time.Now()
			err := cli.Oneway("Calc.Echo", payload, WithTimeout(timeout))
			el := time.Since(start)
			if el > timeout+time.Second {
				t.Fatalf("Oneway #%d into a stalled connection took %v with a %v timeout (err %v)", i, el, timeout, err)
			}
			if err != nil {
				if !errors.Is(err, ErrTimeout) {
					t.Errorf("Oneway #%d error = %v, want ErrTimeout", i, err)
				}
				return
			}
		}
	})
	t.Run("call", func(t *testing.T) {
		cli := stalled(t)
		for i := range 8 {
			start := time.Now()
			var out []byte
			err := cli.Call("Calc.Echo", payload, &out, WithTimeout(timeout))
			if el := time.Since(start); el > timeout+time.Second {
				t.Fatalf("Call #%d into a stalled connection took %v with a %v timeout (err %v)", i, el, timeout, err)
			}
			if !errors.Is(err, ErrTimeout) {
				t.Errorf("Call #%d into a stalled connection error = %v, want ErrTimeout", i, err)
			}
		}
	})
}

// TestCallRightAfterConnLoss: a call made the moment a connection was lost
// (here: from the callback of a call that failed with it) must re-dial, not
// fail on the dead connection that is still in the pool.
func TestCallRightAfterConnLoss(t *testing.T) {
	cli, calc, proxy := proxiedCalc(t, WithPoolSize(1))
	for round := range 10 {
		var sum int
		if err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second)); err != nil {
			t.Fatalf("round %d: Call before the cut = %v", round, err)
		}
		after := make(chan error, 1)
		var once sync.Once
		for range 50 {
			cli.Callback("Calc.Sleep", time.Minute, new(int), func(c *Call) {
				once.Do(func() {
					var r int
					after <- cli.Call("Calc.Add", Args{2, 3}, &r, WithTimeout(5*time.Second))
				})
			})
		}
		waitFor(t, "the handlers to start", func() bool { return calc.sleeping.Load() == int32(50*(round+1)) })
		proxy.cut()
		if err := recvErr(t, after, "the call after the cut"); err != nil {
			t.Fatalf("round %d: Call right after the connection was lost = %v, want nil (a re-dial)", round, err)
		}
	}
}

func TestServerDiesPendingFailFast(t *testing.T) {
	srv := NewServer()
	calc := &Calc{}
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
	calls := make([]*Call, 5)
	for i := range calls {
		calls[i] = cli.Go("Calc.Sleep", 30*time.Second, new(int), nil, WithTimeout(20*time.Second))
	}
	waitFor(t, "the handlers to start", func() bool { return calc.sleeping.Load() == int32(len(calls)) })
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
