package rpc

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// inlineSvc's handlers report whether they ran on the goroutine that read
// their request (server_inline.go): its stack then holds readLoop.
type inlineSvc struct {
	started chan bool     // whether Block ran inline, once it started
	release chan struct{} // Block returns when this closes
	ctxErr  chan error    // Block's ctx error, if its ctx ended first
	once    sync.Once
}

func newInlineSvc() *inlineSvc {
	return &inlineSvc{started: make(chan bool, 4), release: make(chan struct{}), ctxErr: make(chan error, 4)}
}

// unblock releases every Block call.
func (s *inlineSvc) unblock() { s.once.Do(func() { close(s.release) }) }

// ranInline reports whether the calling handler runs on a connection's
// reading goroutine.
func ranInline() bool {
	buf := make([]byte, 64<<10)
	return bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("serverConn).readLoop"))
}

// Block reports that it started, then waits for release or its ctx.
func (s *inlineSvc) Block(ctx context.Context, _ int, reply *bool) error {
	*reply = ranInline()
	s.started <- *reply
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		s.ctxErr <- ctx.Err()
		return ctx.Err()
	}
}

// Fast answers at once with whether it ran inline.
func (s *inlineSvc) Fast(_ int, reply *bool) error {
	*reply = ranInline()
	return nil
}

// Deadline reports whether its ctx has the caller's deadline, inline.
func (s *inlineSvc) Deadline(ctx context.Context, _ int, reply *bool) error {
	_, ok := ctx.Deadline()
	*reply = ok && ranInline()
	return nil
}

// Panic panics, inline if the fast path is taken.
func (s *inlineSvc) Panic(_ int, reply *bool) error {
	if ranInline() {
		panic("inline boom")
	}
	panic("worker boom")
}

// Varying sleeps for d, then reports whether it ran inline.
func (s *inlineSvc) Varying(d time.Duration, reply *bool) error {
	time.Sleep(d)
	*reply = ranInline()
	return nil
}

// setBatchQuick sets batchQuick for the test. Handlers that capture their
// stack take well over the 50µs of a quick method under the race detector.
func setBatchQuick(t *testing.T, d time.Duration) {
	old := batchQuick
	batchQuick = d
	t.Cleanup(func() { batchQuick = old })
}

// newInlinePair serves inlineSvc and returns a client with one connection,
// so that every call shares it.
func newInlinePair(t *testing.T, sopts ...ServerOption) (*Client, *inlineSvc, *Server) {
	t.Helper()
	setBatchQuick(t, 10*time.Millisecond)
	srv := NewServer(sopts...)
	svc := newInlineSvc()
	if err := srv.RegisterName("Inline", svc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.unblock) // before the server's Close (cleanups run last first)
	cli, _ := serveAndDial(t, srv, WithPoolSize(1))
	t.Cleanup(svc.unblock)
	// A first call waits for the connection and its hello exchange, whose
	// frames could otherwise be buffered behind a request.
	if err := cli.Call("Inline.Fast", 0, new(bool)); err != nil {
		t.Fatal(err)
	}
	return cli, svc, srv
}

// startBlock starts Inline.Block and checks that it runs inline.
func startBlock(t *testing.T, ctx context.Context, cli *Client, svc *inlineSvc) (*Call, <-chan error) {
	t.Helper()
	var reply bool
	errc := make(chan error, 1)
	var call *Call
	if ctx == nil {
		call = cli.Go("Inline.Block", 1, &reply, nil)
	} else {
		go func() { errc <- cli.CallContext(ctx, "Inline.Block", 1, &reply) }()
	}
	select {
	case inline := <-svc.started:
		if !inline {
			t.Fatal("Inline.Block ran on a worker, want on the goroutine that read it (nothing else was buffered)")
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("Inline.Block did not start")
	}
	return call, errc
}

func TestInlineFastCallRunsOnReader(t *testing.T) {
	cli, _, _ := newInlinePair(t)
	for i := range 3 {
		var inline bool
		if err := cli.Call("Inline.Fast", i, &inline); err != nil {
			t.Fatalf("Call(Inline.Fast) error = %v", err)
		}
		if !inline {
			t.Errorf("call %d ran on a worker, want inline", i)
		}
	}
}

func TestInlineSlowHandlerDoesNotStallConnection(t *testing.T) {
	cli, svc, _ := newInlinePair(t)
	block, _ := startBlock(t, nil, cli, svc)

	// The second call shares the connection: it is read and answered while
	// the first still runs on the goroutine that read it.
	done := make(chan error, 1)
	go func() {
		var inline bool
		done <- cli.Call("Inline.Fast", 2, &inline)
	}()
	if err := recvErr(t, done, "Inline.Fast behind a blocked inline call"); err != nil {
		t.Fatalf("Call(Inline.Fast) error = %v", err)
	}
	select {
	case <-block.Done:
		t.Fatal("Inline.Block finished before it was released")
	default:
	}
	svc.unblock()
	waitCall(t, block, defaultTestTimeout)
	if block.Error != nil {
		t.Fatalf("Inline.Block error = %v", block.Error)
	}
	// The connection still serves, inline again.
	var inline bool
	if err := cli.Call("Inline.Fast", 3, &inline); err != nil || !inline {
		t.Fatalf("Call(Inline.Fast) after = %v, inline %v; want nil, true", err, inline)
	}
}

// TestInlineSlowMethodRunsOnWorker: a method whose runs on the reading
// goroutine were slow runs on workers, so that the connection is read
// meanwhile; its runs there bring it back once it is quick again.
func TestInlineSlowMethodRunsOnWorker(t *testing.T) {
	cli, _, _ := newInlinePair(t)
	setBatchQuick(t, 5*time.Millisecond)
	var inline bool
	// A run of 20ms counts as at most slowRunCap*5ms = 10ms: after six
	// slow runs the average is 10ms * (1 - (7/8)^6) = 5.5ms, over 5ms:
	// slow. The first five leave it quick (a few slow runs are most often
	// pauses).
	for i := range 6 {
		if err := cli.Call("Inline.Varying", 20*time.Millisecond, &inline); err != nil || !inline {
			t.Fatalf("slow call %d = %v, inline %v; want nil, true (not yet known slow)", i+1, err, inline)
		}
	}
	// Its slow runs on workers keep it slow, and count: the average
	// reaches 10ms * (1 - (7/8)^10) = 7.4ms.
	for i := range 4 {
		if err := cli.Call("Inline.Varying", 10*time.Millisecond, &inline); err != nil || inline {
			t.Fatalf("Call(Inline.Varying) %d after six slow runs = %v, inline %v; want nil, false (on a worker)", i+1, err, inline)
		}
	}
	// Quick runs on workers bring the average down by an eighth each:
	// under 5ms after three, or four if they took a little time too. The
	// loop stops before the first probe (probeInline: the four calls above
	// were lone calls of a slow method, and so are these), which would run
	// inline whether or not the worker runs counted.
	for i := range inlineProbeEvery - 4 - 1 {
		if err := cli.Call("Inline.Varying", time.Duration(0), &inline); err != nil {
			t.Fatal(err)
		}
		if inline {
			if i < 3 {
				t.Errorf("back inline after %d quick runs, want three or four", i)
			}
			return
		}
	}
	t.Fatalf("a method that became quick did not run inline again in %d calls (before its first probe)", inlineProbeEvery-4-1)
}

// TestInlineSlowMethodProbed: one lone call in 16 of a method that is not
// quick still runs inline, so that the method is measured where it would
// run if quick (its runs on workers may be slow only because the server
// is busy).
func TestInlineSlowMethodProbed(t *testing.T) {
	cli, _, _ := newInlinePair(t)
	setBatchQuick(t, 5*time.Millisecond)
	var inline bool
	for i := range 6 { // six slow runs make it slow (slowRunCap)
		if err := cli.Call("Inline.Varying", 20*time.Millisecond, &inline); err != nil || !inline {
			t.Fatalf("slow call %d = %v, inline %v; want nil, true (not yet known slow)", i+1, err, inline)
		}
	}
	var ran []int
	for i := 1; i <= 2*inlineProbeEvery; i++ {
		if err := cli.Call("Inline.Varying", 10*time.Millisecond, &inline); err != nil { // slow: it stays so
			t.Fatal(err)
		}
		if inline {
			ran = append(ran, i)
		}
	}
	if want := []int{inlineProbeEvery, 2 * inlineProbeEvery}; !slices.Equal(ran, want) {
		t.Errorf("lone calls of a slow method that ran inline: %v, want %v", ran, want)
	}
}

func TestInlineShutdownWaitsForHandler(t *testing.T) {
	cli, svc, srv := newInlinePair(t)
	block, _ := startBlock(t, nil, cli, svc)
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown() = %v while an inline handler runs, want it to wait", err)
	case <-time.After(100 * time.Millisecond):
	}
	svc.unblock()
	waitCall(t, block, defaultTestTimeout)
	if block.Error != nil {
		t.Errorf("Inline.Block error = %v, want nil (Shutdown lets it finish)", block.Error)
	}
	if err := recvErr(t, shut, "Shutdown"); err != nil {
		t.Errorf("Shutdown() = %v, want nil", err)
	}
}

func TestInlinePanicRecovered(t *testing.T) {
	cli, _, _ := newInlinePair(t)
	var reply bool
	err := cli.Call("Inline.Panic", 1, &reply)
	if !errors.Is(err, ErrInternal) {
		t.Fatalf("Call(Inline.Panic) error = %v, want ErrInternal", err)
	}
	var se ServerError
	if errors.As(err, &se) || !bytes.Contains([]byte(err.Error()), []byte("panicked")) {
		t.Errorf("Call(Inline.Panic) error = %q, want the internal error for a panic", err)
	}
	if err := cli.Call("Inline.Fast", 2, &reply); err != nil || !reply {
		t.Fatalf("Call(Inline.Fast) after the panic = %v, inline %v; want nil, true", err, reply)
	}
}

func TestInlineServerCapEnforced(t *testing.T) {
	cli, svc, _ := newInlinePair(t, WithMaxCalls(1, 0))
	block, _ := startBlock(t, nil, cli, svc)
	var reply bool
	if err := cli.Call("Inline.Fast", 2, &reply); !errors.Is(err, ErrOverloaded) {
		t.Errorf("Call(Inline.Fast) with the only slot taken by an inline call = %v, want ErrOverloaded", err)
	}
	svc.unblock()
	waitCall(t, block, defaultTestTimeout)
	if err := cli.Call("Inline.Fast", 3, &reply); err != nil {
		t.Errorf("Call(Inline.Fast) after = %v, want nil", err)
	}
}

func TestInlineConnCapEnforced(t *testing.T) {
	cli, svc, _ := newInlinePair(t, WithMaxCalls(0, 1))
	block, _ := startBlock(t, nil, cli, svc)
	fast := cli.Go("Inline.Fast", 2, new(bool), nil)
	select {
	case <-fast.Done:
		t.Fatalf("Inline.Fast ran beside an inline call at a per-connection cap of 1 (error %v)", fast.Error)
	case <-time.After(100 * time.Millisecond):
	}
	svc.unblock()
	waitCall(t, block, defaultTestTimeout)
	waitCall(t, fast, defaultTestTimeout)
	if block.Error != nil || fast.Error != nil {
		t.Errorf("errors = %v, %v; want nil, nil", block.Error, fast.Error)
	}
}

func TestInlineHandlerCancelled(t *testing.T) {
	t.Run("client cancel", func(t *testing.T) {
		cli, svc, _ := newInlinePair(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, errc := startBlock(t, ctx, cli, svc)
		cancel()
		if err := recvErr(t, errc, "the cancelled call"); !errors.Is(err, context.Canceled) {
			t.Errorf("CallContext() = %v, want context.Canceled", err)
		}
		if err := recvErr(t, svc.ctxErr, "the handler's ctx"); !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx error = %v, want context.Canceled (cancel frame)", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		cli, svc, _ := newInlinePair(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		var ok bool
		if err := cli.CallContext(ctx, "Inline.Deadline", 1, &ok); err != nil || !ok {
			t.Fatalf("CallContext(Inline.Deadline) = %v, %v; want nil, true (an inline handler's ctx has the deadline)", err, ok)
		}
		_, errc := startBlock(t, ctx, cli, svc)
		// The server's deadline (:timeout) and the client's cancel frame
		// at its own deadline race; either ends the handler.
		if err := recvErr(t, svc.ctxErr, "the handler's ctx"); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx error = %v, want context.DeadlineExceeded or Canceled", err)
		}
		if err := recvErr(t, errc, "the timed-out call"); !errors.Is(err, ErrTimeout) {
			t.Errorf("CallContext() = %v, want ErrTimeout", err)
		}
	})
	t.Run("connection lost", func(t *testing.T) {
		cli, svc, _ := newInlinePair(t)
		block, _ := startBlock(t, nil, cli, svc)
		cli.Close()
		if err := recvErr(t, svc.ctxErr, "the handler's ctx"); !errors.Is(err, context.Canceled) {
			t.Errorf("handler ctx error = %v, want context.Canceled (connection closed)", err)
		}
		waitCall(t, block, defaultTestTimeout)
	})
}
