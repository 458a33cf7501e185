package rpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// loneConn returns the one connection of a client of one server made with
// WithPoolSize(1), once it exists.
func loneConn(t *testing.T, cli *Client) *clientConn {
	t.Helper()
	var cc *clientConn
	waitFor(t, "the client's connection", func() bool {
		p := cli.staticPool
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.conns) == 1 {
			cc = p.conns[0]
		}
		return cc != nil
	})
	return cc
}

// selfReadWarm makes calls until one was read by its own caller: the first
// call's response is read by the reader, which then lends the role.
func selfReadWarm(t *testing.T, cli *Client, cc *clientConn) {
	t.Helper()
	before := cc.sr.taken.Load()
	for i := 0; i < 50 && cc.sr.taken.Load() == before; i++ {
		var sum int
		if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil || sum != 3 {
			t.Fatalf("Calc.Add = %d, %v", sum, err)
		}
	}
	if cc.sr.taken.Load() == before {
		t.Fatal("no call of a lone caller read its own response")
	}
}

// TestSelfReadLoneCaller: sequential calls of one caller are read by the
// caller itself, and the role stays lent between them; also with a ctx
// that can be cancelled, whose cancel after the call (as every
// context.WithTimeout's defer does) must not reach the reader's reads.
func TestSelfReadLoneCaller(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil, WithPoolSize(1))
	cc := loneConn(t, cli)
	selfReadWarm(t, cli, cc)
	for _, withCtx := range []bool{false, true} {
		before := cc.sr.taken.Load()
		for i := range 20 {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if withCtx {
				ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
			}
			var sum int
			err := cli.CallContext(ctx, "Calc.Add", Args{i, 1}, &sum)
			cancel()
			if err != nil || sum != i+1 {
				t.Fatalf("Calc.Add(%d, 1) (cancellable ctx: %v) = %d, %v", i, withCtx, sum, err)
			}
		}
		// The reader may take the role back at its idle look (every 2 ms)
		// if the test was descheduled that long: most calls read their own.
		if n := cc.sr.taken.Load() - before; n < 10 {
			t.Errorf("%d of 20 sequential calls (cancellable ctx: %v) read their own response, want most", n, withCtx)
		}
	}
}

// TestSelfReadCompletesOtherCalls: a response for another call that
// arrives while a lone caller reads is completed by that caller at once.
func TestSelfReadCompletesOtherCalls(t *testing.T) {
	cli, calc, _ := newCalcPair(t, nil, WithPoolSize(1))
	cc := loneConn(t, cli)
	selfReadWarm(t, cli, cc)
	before := cc.sr.taken.Load()
	slow := make(chan error, 1)
	go func() {
		var r int
		slow <- cli.Call("Calc.Sleep", 2*time.Second, &r)
	}()
	waitFor(t, "the slow call's caller to read", func() bool {
		return cc.sr.taken.Load() > before && cc.sr.state.Load() == roleCaller && calc.sleeping.Load() == 1
	})
	for i := range 5 {
		call := cli.Go("Calc.Add", Args{i, 10}, new(int), nil)
		start := time.Now()
		waitCall(t, call, time.Second)
		if call.Error != nil || *call.Reply.(*int) != i+10 {
			t.Fatalf("Go(Calc.Add) while a caller reads = %v, %v", *call.Reply.(*int), call.Error)
		}
		if el := time.Since(start); el > 500*time.Millisecond {
			t.Errorf("Go(Calc.Add) while a caller reads took %v", el)
		}
		var sum int
		if err := cli.Call("Calc.Add", Args{i, 20}, &sum); err != nil || sum != i+20 {
			t.Fatalf("Call(Calc.Add) while a caller reads = %d, %v", sum, err)
		}
	}
	if st := cc.sr.state.Load(); st != roleCaller {
		t.Errorf("read role = %d while the slow call runs, want the caller's (%d)", st, roleCaller)
	}
	if err := recvErr(t, slow, "the slow call"); err != nil {
		t.Fatalf("slow call = %v", err)
	}
}

// TestSelfReadDeadline: a caller reading its own response stops at its
// deadline without harming the stream: its late response is dropped and
// the next calls on the connection work.
func TestSelfReadDeadline(t *testing.T) {
	cli, calc, _ := newCalcPair(t, nil, WithPoolSize(1))
	cc := loneConn(t, cli)
	selfReadWarm(t, cli, cc)
	before := cc.sr.taken.Load()
	start := time.Now()
	var r int
	err := cli.Call("Calc.Sleep", 300*time.Millisecond, &r, WithTimeout(50*time.Millisecond))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Call past its deadline = %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el > 250*time.Millisecond {
		t.Errorf("Call with a 50ms timeout returned after %v", el)
	}
	if cc.sr.taken.Load() == before {
		t.Fatal("the timed-out call did not read its own response: the test proves nothing")
	}
	waitFor(t, "the slow handler to end", func() bool { return calc.cancelled.Load() == 1 || calc.sleeping.Load() == 1 })
	time.Sleep(350 * time.Millisecond) // its response (or cancellation) has come and gone
	expectConnKept(t, cli, cc, "a deadline")
}

// expectConnKept checks that calls work after a caller's read of its own
// response was cut short by why, on the same connection, still usable.
func expectConnKept(t *testing.T, cli *Client, cc *clientConn, why string) {
	t.Helper()
	for i := range 5 {
		var sum int
		if err := cli.Call("Calc.Add", Args{i, 2}, &sum); err != nil || sum != i+2 {
			t.Fatalf("Call after %s during a self-read = %d, %v", why, sum, err)
		}
	}
	if got := loneConn(t, cli); got != cc || !cc.usable() {
		t.Errorf("the connection was replaced or broken by %s during a caller's read", why)
	}
}

// TestSelfReadIdleDrainNoticed: while the role is lent the connection is
// still read: the server's idle draining frame is seen and the connection
// closed before the next call, which then goes to a new one and succeeds.
func TestSelfReadIdleDrainNoticed(t *testing.T) {
	cli, _, _ := newCalcPair(t, []ServerOption{WithIdleTimeout(100 * time.Millisecond)}, WithPoolSize(1))
	cc := loneConn(t, cli)
	selfReadWarm(t, cli, cc)
	poll(t, 3*time.Second, "the client to see the server's draining frame", func() bool { return cc.dead.Load() })
	if !cc.draining.Load() {
		t.Error("the idle connection closed without its draining frame being read")
	}
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 1}, &sum); err != nil || sum != 2 {
		t.Fatalf("Call after the idle drain = %d, %v", sum, err)
	}
}

// TestSelfReadServerCloseNoticed: the server closing a connection whose
// role is lent is noticed without a call.
func TestSelfReadServerCloseNoticed(t *testing.T) {
	cli, _, proxy := proxiedCalc(t, WithPoolSize(1))
	cc := loneConn(t, cli)
	selfReadWarm(t, cli, cc)
	proxy.cut()
	poll(t, time.Second, "the client to see the closed connection", func() bool { return cc.dead.Load() })
	var sum int
	if err := cli.Call("Calc.Add", Args{2, 2}, &sum); err != nil || sum != 4 {
		t.Fatalf("Call after the server closed the idle connection = %d, %v", sum, err)
	}
}

// TestSelfReadConnLost: the connection breaking while a caller reads its
// own response fails that call with ErrShutdown at once, and the
// connection is replaced for the next call.
func TestSelfReadConnLost(t *testing.T) {
	cli, calc, proxy := proxiedCalc(t, WithPoolSize(1))
	cc := loneConn(t, cli)
	selfReadWarm(t, cli, cc)
	before := cc.sr.taken.Load()
	res := make(chan error, 1)
	go func() {
		var r int
		res <- cli.Call("Calc.Sleep", 5*time.Second, &r, WithTimeout(8*time.Second))
	}()
	waitFor(t, "the caller to read", func() bool {
		return cc.sr.taken.Load() > before && cc.sr.state.Load() == roleCaller && calc.sleeping.Load() == 1
	})
	start := time.Now()
	proxy.cut()
	if err := recvErr(t, res, "the call on the lost connection"); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Call whose connection was lost while its caller read = %v, want ErrShutdown", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("the call failed %v after its connection was lost, want at once", el)
	}
	var sum int
	if err := cli.Call("Calc.Add", Args{3, 3}, &sum, WithTimeout(5*time.Second)); err != nil || sum != 6 {
		t.Fatalf("Call after the loss = %d, %v", sum, err)
	}
}

// TestSelfReadNotForAsync: a call whose caller does not read its response
// (Go, Callback, an interceptor chain) on a
// connection whose role is lent takes the role back for the reader, so
// its response is read at once, not at the reader's next idle look (made
// 1 minute here: without the hand-back these calls would hang).
func TestSelfReadNotForAsync(t *testing.T) {
	old := selfReadIdle.Swap(int64(time.Minute))
	defer selfReadIdle.Store(old)
	cli, _, _ := newCalcPair(t, nil, WithPoolSize(1))
	cc := loneConn(t, cli)
	modes := []struct {
		name string
		call func(i int) (int, error)
	}{
		{"Go", func(i int) (int, error) {
			call := cli.Go("Calc.Add", Args{i, 1}, new(int), nil)
			select {
			case <-call.Done:
			case <-time.After(2 * time.Second):
				return 0, errors.New("no reply within 2s")
			}
			return *call.Reply.(*int), call.Error
		}},
		{"Callback", func(i int) (int, error) {
			done := make(chan *Call, 1)
			cli.Callback("Calc.Add", Args{i, 1}, new(int), func(c *Call) { done <- c })
			select {
			case call := <-done:
				return *call.Reply.(*int), call.Error
			case <-time.After(2 * time.Second):
				return 0, errors.New("no reply within 2s")
			}
		}},
	}
	for _, m := range modes {
		for i := range 3 {
			selfReadWarm(t, cli, cc)
			if st := cc.sr.state.Load(); st != roleFree {
				t.Fatalf("%s: read role = %d after a lone call, want lent (%d)", m.name, st, roleFree)
			}
			r, err := m.call(i)
			if err != nil || r != i+1 {
				t.Fatalf("%s on a connection whose read role is lent = %d, %v", m.name, r, err)
			}
		}
	}
}

// TestSelfReadCallAfterUnseenClose: a call made on a lent connection that
// the server closed before anyone read it (the reader's idle look made 1
// minute here) is not written onto it: lentCheck finds the close and the
// call goes to a new connection instead of failing as maybe sent.
func TestSelfReadCallAfterUnseenClose(t *testing.T) {
	old := selfReadIdle.Swap(int64(time.Minute))
	defer selfReadIdle.Store(old)
	cli, _, proxy := proxiedCalc(t, WithPoolSize(1))
	for round := range 3 {
		cc := loneConn(t, cli)
		selfReadWarm(t, cli, cc)
		if st := cc.sr.state.Load(); st != roleFree {
			t.Fatalf("round %d: read role = %d after a lone call, want lent (%d)", round, st, roleFree)
		}
		proxy.cut()
		time.Sleep(20 * time.Millisecond) // the close reaches the client; nobody reads
		if cc.dead.Load() {
			t.Fatalf("round %d: the close was seen without a call: the test proves nothing", round)
		}
		var sum int
		if err := cli.Call("Calc.Add", Args{round, 1}, &sum); err != nil || sum != round+1 {
			t.Fatalf("round %d: Call on a lent connection the server closed = %d, %v, want a new connection", round, sum, err)
		}
		waitFor(t, "the closed connection to go", func() bool { return cc.dead.Load() })
	}
}

// TestSelfReadCancellableCtx: a cancel during a caller's read of its own
// response ends the call at once with the ctx's error and leaves the
// stream intact for the reader (TestSelfReadLoneCaller checks that such
// callers read their own).
func TestSelfReadCancellableCtx(t *testing.T) {
	cli, calc, _ := newCalcPair(t, nil, WithPoolSize(1))
	cc := loneConn(t, cli)
	selfReadWarm(t, cli, cc)

	ctx, cancel := context.WithCancel(context.Background())
	before := cc.sr.taken.Load()
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	var r int
	err := cli.CallContext(ctx, "Calc.Sleep", 2*time.Second, &r)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("CallContext cancelled during its read = %v, want context.Canceled", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("the cancelled call returned after %v, want about 50ms", el)
	}
	if cc.sr.taken.Load() == before {
		t.Fatal("the cancelled call did not read its own response: the test proves nothing")
	}
	waitFor(t, "the server to cancel the handler", func() bool { return calc.cancelled.Load() == 1 })
	expectConnKept(t, cli, cc, "a cancel")
}

// TestSelfReadLeavesBudgetFrames: a caller reading its own response stops
// before a frame whose reading may wait for the client's read budget (a
// compressed body, a piece of a chunked message, a continuation): such a
// wait would ignore its cancel and deadline, so the reader takes it.
func TestSelfReadLeavesBudgetFrames(t *testing.T) {
	const seq = 7
	for _, tt := range []struct {
		name string
		h    wire.Header
		next bool
	}{
		{"plain response", wire.Header{Type: wire.TypeResponse, Codec: 1, Seq: seq, BodyLen: 3}, true},
		{"compressed", wire.Header{Type: wire.TypeResponse, Codec: 1 | wire.CompressS2, Seq: seq, BodyLen: 3}, false},
		{"chunked", wire.Header{Type: wire.TypeResponse, Codec: 1 | wire.FlagMore, Seq: seq, BodyLen: 3}, false},
		{"continuation", wire.Header{Type: wire.TypeContinuation, Seq: seq, BodyLen: 3}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			frame := make([]byte, wire.HeaderSize+3)
			wire.PutHeader(frame, &tt.h)
			cc := &clientConn{
				pool:    &connPool{client: &Client{opts: defaultClientOptions()}},
				br:      bufio.NewReader(bytes.NewReader(frame)),
				pending: map[uint64]*attempt{seq: {}},
			}
			if got := cc.next(&selfReader{seq: seq}); got != tt.next {
				t.Errorf("next = %v, want %v", got, tt.next)
			}
		})
	}
}
