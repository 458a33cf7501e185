package rpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
	"github.com/seedrpc/rpc/registry"
)

// defaultTestTimeout bounds every wait in the tests.
const defaultTestTimeout = 10 * time.Second

type Args struct{ A, B int }

type Calc struct {
	cancelled atomic.Int32  // Sleep handlers whose ctx ended
	sleeping  atomic.Int32  // Sleep handlers started
	started   chan struct{} // if not nil, told (without blocking) of each Sleep
}

func (c *Calc) Add(args Args, reply *int) error { *reply = args.A + args.B; return nil }

func (c *Calc) Div(ctx context.Context, args *Args, reply *float64) error {
	if args.B == 0 {
		return errors.New("divide by zero")
	}
	*reply = float64(args.A) / float64(args.B)
	return nil
}

func (c *Calc) Sleep(ctx context.Context, d time.Duration, reply *int) error {
	c.sleeping.Add(1)
	if c.started != nil {
		select {
		case c.started <- struct{}{}:
		default:
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		*reply = 1
		return nil
	case <-ctx.Done():
		c.cancelled.Add(1)
		return ctx.Err()
	}
}

func (c *Calc) Panic(args int, reply *int) error { panic("boom") }

func (c *Calc) Echo(b []byte, reply *[]byte) error { *reply = b; return nil }

// fakeClock is a clock that moves only when told, for Client.now.
type fakeClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

// Now returns the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// usableConns counts the connections of p that new calls may use.
func usableConns(p *connPool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, cc := range p.conns {
		if cc.usable() {
			n++
		}
	}
	return n
}

// withMeta labels a server's registered instance with key/value pairs.
func withMeta(kv ...string) ServerOption {
	meta := make(map[string]string)
	for i := 0; i+1 < len(kv); i += 2 {
		meta[kv[i]] = kv[i+1]
	}
	return WithInstance(registry.Instance{Meta: meta})
}

// dialWarm dials addr with a pool of one connection (and copts), closes
// the client when the test ends, and makes one call to a Calc there, so
// that the connection is up and the hellos exchanged.
func dialWarm(t testing.TB, addr string, copts ...ClientOption) *Client {
	t.Helper()
	cli, err := Dial("tcp", addr, append([]ClientOption{WithPoolSize(1)}, copts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	var r int
	if err := cli.Call("Calc.Add", Args{1, 2}, &r); err != nil {
		t.Fatal(err)
	}
	return cli
}

// startServer serves srv on a loopback listener until the test ends.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve() = %v, want ErrServerClosed", err)
			}
		case <-time.After(defaultTestTimeout):
			t.Error("Serve did not return after Close")
		}
	})
	return lis.Addr().String()
}

// newCalcPair returns a client connected to a fresh server serving Calc.
func newCalcPair(t testing.TB, sopts []ServerOption, copts ...ClientOption) (*Client, *Calc, *Server) {
	t.Helper()
	srv := NewServer(sopts...)
	calc := &Calc{started: make(chan struct{}, 1)}
	if err := srv.Register(calc); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv, copts...)
	return cli, calc, srv
}

// serveAndDial serves srv on loopback and returns a client of it, both
// stopped when the test ends, and the server's address.
func serveAndDial(t testing.TB, srv *Server, copts ...ClientOption) (*Client, string) {
	t.Helper()
	addr := startServer(t, srv)
	cli, err := Dial("tcp", addr, copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, addr
}

// Probe is a service whose handlers report what they saw, for tests that
// need to observe the server side of a call.
type Probe struct {
	// running and maxRunning track concurrent Hold handlers.
	running, maxRunning atomic.Int32
	// waiting counts Wait handlers started.
	waiting atomic.Int32
	// ctxErr receives the ctx error of Wait and OnewayWait handlers when their
	// ctx ends; cap 16 so handlers never block on it.
	ctxErr chan error
	// oneway receives the args of every Note call.
	oneway chan string
}

func newProbe() *Probe {
	return &Probe{ctxErr: make(chan error, 16), oneway: make(chan string, 16)}
}

// Hold sleeps d while counting concurrent Hold handlers.
func (p *Probe) Hold(d time.Duration, reply *int) error {
	n := p.running.Add(1)
	defer p.running.Add(-1)
	for {
		m := p.maxRunning.Load()
		if n <= m || p.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(d)
	*reply = int(n)
	return nil
}

// Wait blocks until its ctx ends (or d passes) and reports the ctx error.
func (p *Probe) Wait(ctx context.Context, d time.Duration, reply *int) error {
	p.waiting.Add(1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		p.ctxErr <- ctx.Err()
		return ctx.Err()
	case <-t.C:
		*reply = 1
		return nil
	}
}

// Note records s (used with Oneway).
func (p *Probe) Note(s string, reply *int) error {
	p.oneway <- s
	return nil
}

// Ints returns the number of elements it was sent.
func (p *Probe) Ints(v []int, reply *int) error { *reply = len(v); return nil }

// Deadline reports the remaining time of the handler's ctx deadline.
func (p *Probe) Deadline(ctx context.Context, _ int, reply *time.Duration) error {
	dl, ok := ctx.Deadline()
	if !ok {
		return errors.New("no deadline")
	}
	*reply = time.Until(dl)
	return nil
}

// newProbePair returns a client of a fresh server serving Calc and Probe.
func newProbePair(t testing.TB, sopts []ServerOption, copts ...ClientOption) (*Client, *Probe, *Server, string) {
	t.Helper()
	srv := NewServer(sopts...)
	p := newProbe()
	if err := srv.Register(p); err != nil {
		t.Fatal(err)
	}
	if err := srv.Register(&Calc{started: make(chan struct{}, 1)}); err != nil {
		t.Fatal(err)
	}
	cli, addr := serveAndDial(t, srv, copts...)
	return cli, p, srv, addr
}

// waitCall waits, bounded, for call to finish.
func waitCall(t testing.TB, call *Call, within time.Duration) {
	t.Helper()
	select {
	case <-call.Done:
	case <-time.After(within):
		t.Fatalf("%s: no completion within %v", call.ServiceMethod, within)
	}
}

// waitFor polls cond until it holds, failing the test after defaultTestTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll(t, defaultTestTimeout, what, cond)
}

// poll checks cond every millisecond until it holds and returns how long
// that took; it fails the test after limit.
func poll(t testing.TB, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	timeout := time.After(limit)
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("%s: not within %v", what, limit)
		}
	}
	return time.Since(start)
}

// recvErr receives from ch, bounded.
func recvErr(t testing.TB, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(defaultTestTimeout):
		t.Fatalf("timed out waiting for %s", what)
		return nil
	}
}

// syncBuffer is a goroutine-safe bytes.Buffer for slog handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func newTextLogger(w *syncBuffer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

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
