package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

func TestRedialAfterRestart(t *testing.T) {
	lis := listenLoopback(t)
	addr := lis.Addr().String()
	srv := NewServer()
	calc := &Calc{}
	if err := srv.Register(calc); err != nil {
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
	waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() == 1 })
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

// fakeDialer gives a client net.Pipe connections to fakePeers, or fails
// while err is set; it counts dials.
type fakeDialer struct {
	mu    sync.Mutex // guards the fields below
	err   error
	block chan struct{} // if not nil, a dial waits for it to close (or ctx)
	dials int
	peers []*fakePeer
}

func (d *fakeDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.dials++
	err, block := d.err, d.block
	d.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	cc, sc := net.Pipe()
	p := &fakePeer{nc: sc, frames: make(chan wire.Header, 16), done: make(chan struct{})}
	go p.read()
	d.mu.Lock()
	d.peers = append(d.peers, p)
	d.mu.Unlock()
	return cc, nil
}

func (d *fakeDialer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials
}

// peer returns the peer of the i-th successful dial, waiting (bounded) for
// it: a dial is counted before its peer is made.
func (d *fakeDialer) peer(i int) *fakePeer {
	deadline := time.Now().Add(defaultTestTimeout)
	for {
		d.mu.Lock()
		if i < len(d.peers) {
			p := d.peers[i]
			d.mu.Unlock()
			return p
		}
		d.mu.Unlock()
		if time.Now().After(deadline) {
			panic(fmt.Sprintf("fakeDialer: no peer %d after %v", i, defaultTestTimeout))
		}
		time.Sleep(time.Millisecond)
	}
}

func (d *fakeDialer) closeAll() {
	d.mu.Lock()
	peers := slices.Clone(d.peers)
	d.mu.Unlock()
	for _, p := range peers {
		p.close()
	}
}

// fakePeer is the server end of a fakeDialer connection: it reports the
// header of every frame the client sends and answers only when told.
type fakePeer struct {
	nc     net.Conn
	frames chan wire.Header
	done   chan struct{} // closed when read returns
}

func (p *fakePeer) read() {
	defer close(p.done)
	var hb [wire.HeaderSize]byte
	for {
		if _, err := io.ReadFull(p.nc, hb[:]); err != nil {
			return
		}
		h, err := wire.ParseHeader(hb[:], wire.DefaultMaxFrameSize)
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, p.nc, int64(h.PayloadLen())); err != nil {
			return
		}
		select {
		case p.frames <- h:
		default: // nobody listens: drop
		}
	}
}

// send writes a frame with no payload to the client.
func (p *fakePeer) send(t wire.Type, seq uint64) error {
	var b [wire.HeaderSize]byte
	wire.PutHeader(b[:], &wire.Header{Type: t, Seq: seq})
	p.nc.SetWriteDeadline(time.Now().Add(defaultTestTimeout))
	_, err := p.nc.Write(b[:])
	return err
}

func (p *fakePeer) close() {
	p.nc.Close()
	<-p.done
}

// expect waits for a frame of type typ from the client.
func (p *fakePeer) expect(t *testing.T, typ wire.Type) wire.Header {
	t.Helper()
	timeout := time.After(defaultTestTimeout)
	for {
		select {
		case h := <-p.frames:
			if h.Type == wire.TypePing && h.MetaLen > 0 {
				continue // the hello every connection opens with
			}
			if h.Type == typ {
				return h
			}
		case <-timeout:
			t.Fatalf("no %s frame from the client", typ)
			return wire.Header{}
		}
	}
}

// newFakePool returns the pool of one address of a client whose dials and
// clock the test controls. The client is closed when the test ends.
func newFakePool(t *testing.T, opts ...ClientOption) (*connPool, *fakeDialer, *fakeClock) {
	t.Helper()
	c, err := newClient("tcp", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDialer{}
	clock := newFakeClock()
	c.dial, c.now = d.dial, clock.Now
	t.Cleanup(func() {
		c.Close()
		d.closeAll()
	})
	return c.pool("fake:1"), d, clock
}

func TestPoolDialBackoff(t *testing.T) {
	p, d, clock := newFakePool(t)
	ctx := t.Context()
	refused := errors.New("connection refused")
	d.err = refused

	backoff := func() time.Duration {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.nextDial.Sub(clock.Now())
	}
	if _, err := p.get(ctx); !errors.Is(err, refused) {
		t.Fatalf("get() with dials refused = %v, want %v", err, refused)
	}
	if b := backoff(); b < 25*time.Millisecond || b > 50*time.Millisecond {
		t.Errorf("backoff after 1 failure = %v, want 25ms..50ms", b)
	}
	if _, err := p.get(ctx); !errors.Is(err, refused) || !strings.Contains(err.Error(), "backing off") {
		t.Errorf("get() while backing off = %v, want the last error, backing off", err)
	}
	if n := d.count(); n != 1 {
		t.Errorf("%d dials, want 1: no dial while backing off", n)
	}
	clock.Advance(50 * time.Millisecond)
	if _, err := p.get(ctx); !errors.Is(err, refused) {
		t.Fatalf("second get() = %v, want %v", err, refused)
	}
	if b := backoff(); b < 50*time.Millisecond || b > 100*time.Millisecond {
		t.Errorf("backoff after 2 failures = %v, want 50ms..100ms", b)
	}

	// A dial the caller gave up on says nothing about the server.
	clock.Advance(100 * time.Millisecond)
	d.mu.Lock()
	d.err, d.block = nil, make(chan struct{})
	d.mu.Unlock()
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		poll(t, defaultTestTimeout, "the dial to start", func() bool { return d.count() == 3 })
		cancel()
	}()
	if _, err := p.get(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("get() with its ctx cancelled mid-dial = %v, want context.Canceled", err)
	}
	if b := backoff(); b > 0 {
		t.Errorf("backoff after a cancelled dial = %v, want none", b)
	}

	// A dial that succeeds ends the backoff.
	close(d.block)
	cc, err := p.get(ctx)
	if err != nil || cc == nil {
		t.Fatalf("get() with dials working = %v, %v", cc, err)
	}
	p.mu.Lock()
	failures := p.failures
	p.mu.Unlock()
	if failures != 0 {
		t.Errorf("failures after a good dial = %d, want 0", failures)
	}
}

func TestPoolJoinsDialInProgress(t *testing.T) {
	p, d, _ := newFakePool(t)
	d.block = make(chan struct{})
	const n = 4
	got := make(chan *clientConn, n)
	for range n {
		go func() {
			cc, err := p.get(t.Context())
			if err != nil {
				t.Errorf("get() = %v", err)
			}
			got <- cc
		}()
	}
	poll(t, defaultTestTimeout, "a dial to start", func() bool { return d.count() == 1 })
	close(d.block)
	var first *clientConn
	for i := range n {
		select {
		case cc := <-got:
			if i == 0 {
				first = cc
			} else if cc != first {
				t.Errorf("concurrent get() returned different connections")
			}
		case <-time.After(defaultTestTimeout):
			t.Fatal("get() did not return")
		}
	}
	if c := d.count(); c != 1 {
		t.Errorf("%d concurrent gets dialled %d times, want once", n, c)
	}
}

func TestPoolGrowsOnlyWhenBusy(t *testing.T) {
	p, d, _ := newFakePool(t, WithPoolSize(2))
	cc, err := p.get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := p.ready(); got != cc || d.count() != 1 {
		t.Fatalf("ready() with one idle connection = %p, %d dials; want %p, 1 dial", got, d.count(), cc)
	}
	cc.load.Store(1) // a call is pending: the next call would queue behind it
	if got := p.ready(); got != cc {
		t.Errorf("ready() with one busy connection = %p, want it while another is dialled", got)
	}
	poll(t, defaultTestTimeout, "a second connection", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.conns) == 2
	})
	cc2 := p.ready()
	if cc2 == cc {
		t.Errorf("ready() = the busy connection, want the new idle one")
	}
	cc2.load.Store(1)
	p.ready() // both busy, but the pool is full
	if n := d.count(); n != 2 {
		t.Errorf("%d dials, want 2 (the pool size)", n)
	}
}

// growToSpread dials p's first connection, then loads every connection
// with a call until the pool has spreadConns of them: up to spreadConns, a
// connection is dialled whenever all are busy. It returns a function that
// lists p's connections.
func growToSpread(t *testing.T, p *connPool) func() []*clientConn {
	t.Helper()
	conns := func() []*clientConn {
		p.mu.Lock()
		defer p.mu.Unlock()
		return slices.Clone(p.conns)
	}
	if _, err := p.get(t.Context()); err != nil {
		t.Fatal(err)
	}
	for n := 1; n < spreadConns; n++ {
		for _, cc := range conns() {
			cc.load.Store(1)
		}
		p.ready()
		poll(t, defaultTestTimeout, fmt.Sprintf("connection %d", n+1), func() bool { return len(conns()) == n+1 })
	}
	return conns
}

// TestPoolPacksBeyondSpread: a pool larger than spreadConns spreads calls
// over its first spreadConns connections, and uses one more only for every
// packDepth calls pending beyond that, so that calls share system calls.
func TestPoolPacksBeyondSpread(t *testing.T) {
	p, d, _ := newFakePool(t, WithPoolSize(8))
	conns := growToSpread(t, p)
	// spreadConns connections carrying fewer than packDepth calls each:
	// no dial, the least busy of them.
	cs := conns()
	for i, cc := range cs {
		cc.load.Store(packDepth - 1 - int32(i%2))
	}
	if got := p.ready(); got != cs[1] {
		t.Errorf("ready() = %p, want the least busy, %p", got, cs[1])
	}
	for _, cc := range cs {
		cc.load.Store(packDepth - 1)
	}
	if got := p.ready(); got != cs[0] {
		t.Errorf("ready() = %p, want the first of the least busy, %p", got, cs[0])
	}
	p.mu.Lock()
	dialing := p.dialDone != nil // set by the call that starts a dial
	p.mu.Unlock()
	if dialing || d.count() != spreadConns {
		t.Fatalf("%d dials with %d calls pending on %d connections, want %d", d.count(), spreadConns*(packDepth-1), spreadConns, spreadConns)
	}
	// packDepth each: one more connection, which the next call takes.
	for _, cc := range cs {
		cc.load.Store(packDepth)
	}
	p.ready()
	poll(t, defaultTestTimeout, "connection 5", func() bool { return len(conns()) == spreadConns+1 })
	if got, fifth := p.ready(), conns()[spreadConns]; got != fifth {
		t.Errorf("ready() = %p, want the new idle connection %p", got, fifth)
	}
}

// TestPoolPackDepthServerLimit: a server whose limit of calls per
// connection is below packDepth says so in its hello, and the pool packs
// no more than that on a connection: a server at its limit reads nothing
// more from it, so further calls there would wait although the pool could
// dial another connection.
func TestPoolPackDepthServerLimit(t *testing.T) {
	srv := NewServer(WithMaxCalls(1000, 2))
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	cli, addr := serveAndDial(t, srv, WithPoolSize(8))
	if err := cli.Call("Calc.Echo", []byte("x"), new([]byte)); err != nil {
		t.Fatal(err)
	}
	if got := cli.pool(addr).connCalls.Load(); got != 2 {
		t.Fatalf("limit of calls per connection learnt from the server's hello = %d, want 2", got)
	}

	p, _, _ := newFakePool(t, WithPoolSize(8))
	p.connCalls.Store(2)
	conns := growToSpread(t, p)
	// Two calls on each of the 4: at the server's limit, another
	// connection, where packDepth would have packed up to 64.
	for _, cc := range conns() {
		cc.load.Store(2)
	}
	p.ready()
	poll(t, defaultTestTimeout, "connection 5", func() bool { return len(conns()) == spreadConns+1 })

	// A limit of 8: the pool packs a quarter under it, 6, so that the calls
	// made while the next connection is dialled still fit.
	p, _, _ = newFakePool(t, WithPoolSize(8))
	p.connCalls.Store(8)
	conns = growToSpread(t, p)
	for _, cc := range conns() {
		cc.load.Store(5)
	}
	p.ready()
	p.mu.Lock()
	dialing := p.dialDone != nil
	p.mu.Unlock()
	if dialing {
		t.Fatal("a dial started with 5 calls on each of 4 connections under a limit of 8")
	}
	for _, cc := range conns() {
		cc.load.Store(6)
	}
	p.ready()
	poll(t, defaultTestTimeout, "a fifth connection at 6 calls each under a limit of 8", func() bool { return len(conns()) == spreadConns+1 })
}

// TestPoolSuspectSiblings: a connection that breaks abruptly makes its
// siblings suspect (no new calls) until they answer a ping; a connection
// the client closed itself does not.
func TestPoolSuspectSiblings(t *testing.T) {
	p, d, _ := newFakePool(t, WithPoolSize(3))
	cc1, err := p.get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cc1.load.Store(1)
	p.ready()
	poll(t, defaultTestTimeout, "a second connection", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.conns) == 2
	})
	cc1.load.Store(0)
	cc2 := p.conns[1]

	// Closed by the client: no suspicion.
	if !cc1.closeIdle(errIdle) {
		t.Fatal("closeIdle() of an idle connection = false")
	}
	poll(t, defaultTestTimeout, "the idle connection to go", func() bool { return p.ready() == cc2 })
	if cc2.suspect.Load() {
		t.Error("a sibling of a connection the client closed is suspect")
	}

	// Broken by the peer: the sibling is suspect and pinged.
	cc2.load.Store(1)
	p.ready()
	var cc3 *clientConn
	poll(t, defaultTestTimeout, "a third connection", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, cc := range p.conns {
			if cc != cc1 && cc != cc2 {
				cc3 = cc
			}
		}
		return cc3 != nil
	})
	cc2.load.Store(0)
	d.peer(1).close() // cc2's server resets
	ping := d.peer(2).expect(t, wire.TypePing)
	if !cc3.suspect.Load() {
		t.Error("a sibling of a connection that broke is not suspect")
	}
	poll(t, defaultTestTimeout, "the broken connection to go", func() bool { return cc2.dead.Load() })
	if got := p.ready(); got != nil {
		t.Errorf("ready() with the only live connection suspect = %p, want nil", got)
	}
	if err := d.peer(2).send(wire.TypePong, ping.Seq); err != nil {
		t.Fatal(err)
	}
	poll(t, defaultTestTimeout, "the pong to clear the suspicion", func() bool { return p.ready() == cc3 })
}

// TestCloseAbortsDials: Close does not wait out a dial to a blackholed
// address, neither a call's own dial nor the pool's background one.
func TestCloseAbortsDials(t *testing.T) {
	const bound = time.Second // the dial timeout is 5s (the keepalive)
	dialing := func(p *connPool) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.dialDone != nil
	}

	t.Run("a call's dial", func(t *testing.T) {
		lis := listenNoBacklog(t)
		fillBacklog(t, lis.Addr().String())
		mem := newMemoryRegistry(t)
		registerFake(t, mem, "Calc", lis.Addr().String())
		cli := newFleetClient(t, mem)
		call := cli.Go("Calc.Add", Args{1, 2}, new(int), nil) // no timeout
		waitFor(t, "the dial to start", func() bool {
			v, ok := cli.pools.Load(lis.Addr().String())
			return ok && dialing(v.(*connPool))
		})
		start := time.Now()
		cli.Close()
		if el := time.Since(start); el > bound {
			t.Errorf("Close() during a hanging dial took %v", el)
		}
		waitCall(t, call, bound)
		if !errors.Is(call.Error, ErrShutdown) {
			t.Errorf("call whose dial Close aborted: error = %v, want ErrShutdown", call.Error)
		}
	})

	t.Run("a background dial", func(t *testing.T) {
		lis := listenNoBacklog(t)
		addr := lis.Addr().String()
		srv := NewServer()
		calc := &Calc{}
		if err := srv.Register(calc); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		accepted := make(chan error, 1)
		go func() { // serve the first connection only
			nc, err := lis.Accept()
			if err == nil {
				go srv.ServeConn(nc) // returns when the server closes
			}
			accepted <- err
		}()
		cli, err := Dial("tcp", addr, WithPoolSize(2))
		if err != nil {
			t.Fatal(err)
		}
		if err := recvErr(t, accepted, "the first connection"); err != nil {
			t.Fatal(err)
		}
		fillBacklog(t, addr)
		pending := cli.Go("Calc.Sleep", time.Minute, new(int), nil)
		waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() == 1 })
		if err := cli.Call("Calc.Add", Args{1, 2}, new(int)); err != nil { // the busy connection grows the pool
			t.Fatal(err)
		}
		waitFor(t, "the background dial to start", func() bool { return dialing(cli.staticPool) })
		start := time.Now()
		cli.Close()
		if el := time.Since(start); el > bound {
			t.Errorf("Close() during a hanging background dial took %v", el)
		}
		waitCall(t, pending, bound)
	})
}
