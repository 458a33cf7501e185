package rpc

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// Big makes replies of any size.
type Big struct{}

// Make returns n bytes.
func (Big) Make(n int, reply *[]byte) error { *reply = make([]byte, n); return nil }

// readResponse reads one frame from nc, bounded, and returns its header and
// body.
func readResponse(t *testing.T, nc net.Conn) (wire.Header, []byte) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(defaultTestTimeout))
	defer nc.SetReadDeadline(time.Time{})
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(nc, hb[:]); err != nil {
		t.Fatalf("reading a response header: %v", err)
	}
	h, err := wire.ParseHeader(hb[:], wire.DefaultMaxFrameSize)
	if err != nil {
		t.Fatalf("ParseHeader(response) = %v", err)
	}
	body := make([]byte, h.PayloadLen())
	if _, err := io.ReadFull(nc, body); err != nil {
		t.Fatalf("reading a response body: %v", err)
	}
	return h, body
}

// TestTooLargeKeepsConnection: a request over the server's frame limit
// fails alone with ErrTooLarge; the calls in flight on the same connection
// and later ones go on, on the same connection.
func TestTooLargeKeepsConnection(t *testing.T) {
	cli, calc, srv := newCalcPair(t, []ServerOption{WithMaxFrameSize(64 << 10)}, WithPoolSize(1))
	var r int
	if err := cli.Call("Calc.Add", Args{1, 2}, &r); err != nil {
		t.Fatal(err)
	}
	slow := cli.Go("Calc.Sleep", 300*time.Millisecond, new(int), nil, WithTimeout(defaultTestTimeout))
	waitFor(t, "the slow call to start", func() bool { return calc.sleeping.Load() == 1 })
	var out []byte
	for _, size := range []int{100 << 10, 120 << 10} { // over the limit, within twice it
		err := cli.Call("Calc.Echo", make([]byte, size), &out, WithTimeout(defaultTestTimeout))
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Call(Calc.Echo, %d KiB) to a 64 KiB server = %v, want ErrTooLarge", size>>10, err)
		}
		if !strings.Contains(err.Error(), "Calc.Echo") || !strings.Contains(err.Error(), "65536") {
			t.Errorf("Call(Calc.Echo, %d KiB) error %q names neither the method nor the limit", size>>10, err)
		}
	}
	if err := cli.Oneway("Calc.Echo", make([]byte, 100<<10)); err != nil {
		t.Errorf("Oneway(100 KiB) = %v, want nil (the server drops it)", err)
	}
	waitCall(t, slow, defaultTestTimeout)
	if slow.Error != nil {
		t.Errorf("call in flight during oversized requests = %v, want success", slow.Error)
	}
	if err := cli.Call("Calc.Echo", []byte("hi"), &out); err != nil || string(out) != "hi" {
		t.Errorf("Call(Calc.Echo) after oversized requests = %q, %v", out, err)
	}
	srv.mu.Lock()
	n := len(srv.conns)
	srv.mu.Unlock()
	if n != 1 {
		t.Errorf("server has %d connections after oversized requests, want the 1 it had", n)
	}
}

// TestTooLargeAnsweredBeforePayload: the server answers an oversized
// request from its header, before (and without) buffering its payload, then
// skips the payload and serves the next frame; a claim over twice the
// limit closes the connection.
func TestTooLargeAnsweredBeforePayload(t *testing.T) {
	srv := NewServer(WithMaxFrameSize(64 << 10))
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const size = 100 << 10
	if _, err := nc.Write(claimFrame(7, "Calc.Echo", size)); err != nil {
		t.Fatal(err)
	}
	h, body := readResponse(t, nc)
	if h.Seq != 7 || h.Status != wire.StatusTooLarge {
		t.Fatalf("answer to an oversized header = seq %d status %d (%s), want seq 7 status %d", h.Seq, h.Status, body, wire.StatusTooLarge)
	}
	if got := srv.budget.inUse(); got != 0 {
		t.Errorf("server budget in use = %d, want 0", got)
	}
	// The payload is skipped; the next frame is served.
	if _, err := nc.Write(append(make([]byte, size), frame(wire.TypeRequest, 8, "Calc.Echo", []byte{0xc4, 2, 'h', 'i'})...)); err != nil {
		t.Fatal(err)
	}
	if h, body := readResponse(t, nc); h.Seq != 8 || h.Status != wire.StatusOK {
		t.Fatalf("answer to the request after the skipped payload = seq %d status %d (%s), want seq 8 OK", h.Seq, h.Status, body)
	}
	// Over twice the limit: the connection is closed.
	if _, err := nc.Write(claimFrame(9, "Calc.Echo", 2*(64<<10)+1)); err != nil {
		t.Fatal(err)
	}
	if got := expectClosed(t, nc, "claim over twice the limit"); len(got) > 0 {
		t.Errorf("server answered a claim over twice the limit with % x", got[:min(len(got), 32)])
	}
}

// TestReplyTooLarge: a reply over the server's limit, or over the client's,
// fails its call alone with ErrTooLarge.
func TestReplyTooLarge(t *testing.T) {
	srv := NewServer(WithMaxFrameSize(64 << 10))
	if err := srv.Register(Big{}); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv)
	var out []byte
	if err := cli.Call("Big.Make", 100<<10, &out); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Call(Big.Make, 100 KiB) with a 64 KiB server limit = %v, want ErrTooLarge", err)
	}

	srv2 := NewServer()
	if err := srv2.Register(Big{}); err != nil {
		t.Fatal(err)
	}
	if err := srv2.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	cli2, _ := serveAndDial(t, srv2, WithMaxFrameSize(64<<10), WithPoolSize(1))
	slow := cli2.Go("Calc.Sleep", 200*time.Millisecond, new(int), nil, WithTimeout(defaultTestTimeout))
	if err := cli2.Call("Big.Make", 100<<10, &out); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Call(Big.Make, 100 KiB) with a 64 KiB client limit = %v, want ErrTooLarge", err)
	}
	if err := cli2.Call("Big.Make", 60<<10, &out); err != nil || len(out) != 60<<10 {
		t.Errorf("Call(Big.Make, 60 KiB) after a reply too large = %d bytes, %v", len(out), err)
	}
	waitCall(t, slow, defaultTestTimeout)
	if slow.Error != nil {
		t.Errorf("call in flight during a reply too large = %v, want success", slow.Error)
	}
	waitFor(t, "the client budget to be released", func() bool { return cli2.budget.inUse() == 0 })
}

// TestServerIdleTimeout: a connection with no call (pings do not count) is
// drained and closed by the server; the client's next call redials with no
// failure, and the address is not avoided as if it were shutting down.
func TestServerIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	cli, _, srv := newCalcPair(t, []ServerOption{WithIdleTimeout(idle)}, WithKeepalive(30*time.Millisecond))
	conns := func() int {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.conns)
	}
	var r int
	for round := range 3 {
		if err := cli.Call("Calc.Add", Args{round, 1}, &r); err != nil || r != round+1 {
			t.Fatalf("round %d: Call(Calc.Add) = %d, %v", round, r, err)
		}
		start := time.Now()
		poll(t, defaultTestTimeout, "the server to close the idle connection", func() bool { return conns() == 0 })
		if d := time.Since(start); d < idle {
			t.Errorf("round %d: idle connection closed after %v, want at least %v", round, d, idle)
		}
	}

	// A discovering client keeps routing to the server that idled it out.
	mem := newMemoryRegistry(t)
	a := startFleetServer(t, mem, "", 0, WithIdleTimeout(idle), withMeta("order", "1"))
	b := startFleetServer(t, mem, "", 0, withMeta("order", "2"))
	dc := newFleetClient(t, mem, WithBalancer(orderedBalancer{}))
	waitRouted(t, dc, "Calc", a.addr) // ordered: a first
	poll(t, defaultTestTimeout, "server a to close the idle connection", func() bool {
		a.srv.mu.Lock()
		defer a.srv.mu.Unlock()
		return len(a.srv.conns) == 0
	})
	var fr FleetReply
	if err := dc.Call("Calc.Add", FleetArgs{A: 1, B: 2}, &fr); err != nil || fr.Addr != a.addr {
		t.Errorf("Call after server a idled the connection out = %+v, %v; want an answer from a (%s), not b (%s)", fr, err, a.addr, b.addr)
	}
}

// TestMaxConns: connections beyond the limit are closed right after accept,
// logged once per burst; room frees as connections end.
func TestMaxConns(t *testing.T) {
	var logs syncBuffer
	srv := NewServer(WithMaxConns(3), WithLogger(newTextLogger(&logs)))
	addr := startServer(t, srv)
	conns := func() int {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.conns)
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 3 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, nc)
	}
	waitFor(t, "3 connections served", func() bool { return conns() == 3 })
	for i := range 10 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		expectClosed(t, nc, fmt.Sprintf("connection %d over the limit", i))
		nc.Close()
	}
	if n := strings.Count(logs.String(), "connection limit reached"); n != 1 {
		t.Errorf("a burst of 10 refusals logged %d times, want once:\n%s", n, logs.String())
	}
	held[0].Close()
	held = held[1:]
	waitFor(t, "a connection to end", func() bool { return conns() == 2 })
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, nc)
	if _, err := nc.Write(frame(wire.TypePing, 5, "", nil)); err != nil {
		t.Fatal(err)
	}
	if h, _ := readResponse(t, nc); h.Type != wire.TypePong || h.Seq != 5 {
		t.Errorf("ping on a connection admitted after room freed = %+v, want a pong", h)
	}
	if !strings.Contains(logs.String(), "accepting connections again") || !strings.Contains(logs.String(), "refused=10") {
		t.Errorf("the end of the burst was not logged with its count:\n%s", logs.String())
	}
}

// TestSlowPayloadClosed: a payload trickled slower than the read timeout
// allows closes the connection and frees what it had buffered.
func TestSlowPayloadClosed(t *testing.T) {
	srv := NewServer(WithReadTimeout(300 * time.Millisecond))
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	if _, err := nc.Write(append(claimFrame(1, "Calc.Echo", 1<<20), make([]byte, 200<<10)...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server to buffer the payload", func() bool { return srv.budget.inUse() > 0 })
	closed := make(chan time.Duration, 1)
	go func() {
		io.Copy(io.Discard, nc)
		closed <- time.Since(start)
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case d := <-closed:
			if d < 300*time.Millisecond || d > 5*time.Second {
				t.Errorf("trickling connection closed after %v, want about the 300ms read timeout", d)
			}
			waitFor(t, "the budget to be released", func() bool { return srv.budget.inUse() == 0 })
			return
		case <-tick.C:
			nc.Write([]byte{0}) // one byte per tick: a slowloris
		case <-time.After(defaultTestTimeout):
			t.Fatal("trickling connection not closed")
		}
	}
}

// TestSlowAndIdleConnsReaped: thousands of idle connections and hundreds
// with a partial header are all closed within their timeouts (the idle ones
// after a draining frame), while a normal client keeps working with no
// failure. Under the race detector the counts are halved: it runs them too
// (6 s on 2 cores), but its goroutine limit (8128) is near and the suite
// has a time budget.
func TestSlowAndIdleConnsReaped(t *testing.T) {
	idleN, partialN := 2000, 500
	if raceEnabled() {
		idleN, partialN = 1000, 250
	}
	const (
		readTimeout = 300 * time.Millisecond
		idle        = 600 * time.Millisecond
		grace       = 200 * time.Millisecond
	)
	srv := NewServer(WithReadTimeout(readTimeout), WithIdleTimeout(idle))
	srv.opts.drainGrace = grace
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	cli, addr := serveAndDial(t, srv)

	// A normal client calls all along.
	var calls, failed atomic.Int64
	var worst atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			start := time.Now()
			var r int
			if err := cli.Call("Calc.Add", Args{i, 1}, &r, WithTimeout(5*time.Second)); err != nil || r != i+1 {
				failed.Add(1)
				t.Errorf("Call(Calc.Add) during the attack = %d, %v", r, err)
			}
			calls.Add(1)
			if d := int64(time.Since(start)); d > worst.Load() {
				worst.Store(d)
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	type result struct {
		partial bool
		after   time.Duration // from the connection's last write
		got     int           // bytes the server sent
	}
	results := make(chan result, idleN+partialN)
	var readers sync.WaitGroup
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
		readers.Wait()
	}()
	for i := range idleN + partialN {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		open = append(open, nc)
		partial := i >= idleN
		start := time.Now()
		if partial {
			if _, err := nc.Write(claimFrame(1, "Calc.Add", 10)[:10]); err != nil {
				t.Fatal(err)
			}
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			nc.SetReadDeadline(time.Now().Add(defaultTestTimeout))
			got, _ := io.Copy(io.Discard, nc)
			results <- result{partial, time.Since(start), int(got)}
		}()
	}
	var worstIdle, worstPartial time.Duration
	for range idleN + partialN {
		var r result
		select {
		case r = <-results:
		case <-time.After(2 * defaultTestTimeout):
			t.Fatal("connections still open")
		}
		if r.partial {
			worstPartial = max(worstPartial, r.after)
			if r.after > readTimeout+2*time.Second {
				t.Errorf("partial header closed after %v, want within about %v", r.after, readTimeout)
			}
		} else {
			worstIdle = max(worstIdle, r.after)
			if r.after < idle || r.after > idle+grace+3*time.Second {
				t.Errorf("idle connection closed after %v, want about %v + %v", r.after, idle, grace)
			}
			if r.got != wire.HeaderSize {
				t.Errorf("idle connection got %d bytes before it closed, want one draining frame", r.got)
			}
		}
	}
	t.Logf("%d idle connections closed within %v (idle %v + grace %v), %d partial headers within %v (read timeout %v); normal client: %d calls, %d failed, slowest %v",
		idleN, worstIdle.Round(time.Millisecond), idle, grace, partialN, worstPartial.Round(time.Millisecond), readTimeout,
		calls.Load(), failed.Load(), time.Duration(worst.Load()).Round(time.Millisecond))
	if calls.Load() == 0 {
		t.Error("the normal client made no call")
	}
}

// FuzzServeConnLimits feeds arbitrary bytes, in chunks of any size, to a
// real server connection whose frame limit and buffer budget are small, so
// that oversized requests, grown buffers, budget waits and the overdraft
// are all reached: the server must never panic or hang, and once it is
// closed every byte it charged to its budget must be back.
func FuzzServeConnLimits(f *testing.F) {
	const maxFrame = 32 << 10
	req := func(typ wire.Type, seq uint64, method string, body []byte) []byte {
		return requestFrame(typ, seq, 1, method, nil, body)
	}
	bin := func(n int) []byte { // msgpack bin32 of n bytes
		b := []byte{0xc6, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
		return append(b, make([]byte, n)...)
	}
	huge := claimFrame(1, "FuzzSvc.Echo", 0)
	binary.BigEndian.PutUint32(huge[20:], 0xffffffff)
	seeds := [][]byte{
		req(wire.TypeRequest, 1, "FuzzSvc.Add", []byte{0x82, 0xa1, 'A', 1, 0xa1, 'B', 2}),
		req(wire.TypeRequest, 2, "FuzzSvc.Echo", bin(20<<10)),                                                                   // charged, overdrawn
		append(req(wire.TypeRequest, 3, "FuzzSvc.Echo", bin(40<<10)), req(wire.TypeRequest, 4, "FuzzSvc.Add", []byte{0x80})...), // too large, then a call
		req(wire.TypeOneway, 5, "FuzzSvc.Echo", bin(40<<10)),                                                                    // oneway too large
		req(wire.TypeRequest, 6, "FuzzSvc.Echo", bin(70<<10)),                                                                   // over twice the limit
		append(claimFrame(7, "FuzzSvc.Echo", maxFrame-20), make([]byte, 9<<10)...),                                              // a claim, partly sent
		append(append(req(wire.TypeRequest, 8, "FuzzSvc.Echo", bin(10<<10)), req(wire.TypeRequest, 9, "FuzzSvc.Echo", bin(12<<10))...), req(wire.TypeRequest, 10, "FuzzSvc.Echo", bin(14<<10))...),
		huge,
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	}
	for _, s := range seeds {
		f.Add(s, uint8(255))
		f.Add(s, uint8(0))
		f.Add(s, uint8(100))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		srv := NewServer(WithMaxFrameSize(maxFrame), WithMaxBufferedBytes(16<<10), WithMaxCalls(0, 4), WithReadTimeout(time.Second))
		if err := srv.Register(FuzzSvc{}); err != nil {
			t.Fatal(err)
		}
		cc, sc := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.ServeConn(sc) // blocks until the connection ends, as in net/rpc
		}()
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			io.Copy(io.Discard, cc)
		}()
		cc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for p := data; len(p) > 0; {
			k := min(len(p), int(chunk)+1)
			if _, err := cc.Write(p[:k]); err != nil {
				break // the server closed the connection
			}
			p = p[k:]
		}
		cc.Close()
		done := make(chan struct{})
		go func() {
			srv.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Server.Close did not return")
		}
		<-drained
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Fatal("ServeConn did not return after Close")
		}
		if got := srv.budget.inUse(); got != 0 {
			t.Fatalf("budget in use after Close = %d, want 0", got)
		}
		if srv.budget.overdrawn {
			t.Fatal("the overdraft was not given back")
		}
	})
}

// TestTLSHandshakeTimeout: a connection to a TLS server that never
// completes its handshake is closed after the read timeout; TLS clients
// are served meanwhile.
func TestTLSHandshakeTimeout(t *testing.T) {
	pki := newTestPKI(t)
	srvCfg := &tls.Config{Certificates: []tls.Certificate{pki.Server}, MinVersion: tls.VersionTLS12}
	const readTimeout = 200 * time.Millisecond
	cli, _, srv := newCalcPair(t, []ServerOption{WithTLS(srvCfg), WithReadTimeout(readTimeout)}, WithTLS(&tls.Config{RootCAs: pki.Pool}))
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second)); err != nil || sum != 3 {
		t.Fatalf("Call over TLS = %d, %v; want 3, nil", sum, err)
	}
	srv.mu.Lock()
	var addr string
	for c := range srv.conns {
		addr = c.nc.LocalAddr().String()
	}
	srv.mu.Unlock()
	for _, give := range [][]byte{nil, {0x16, 0x03, 0x01}} { // nothing; the start of a ClientHello
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		nc.Write(give)
		expectClosed(t, nc, fmt.Sprintf("TLS handshake stalled after % x", give))
		if d := time.Since(start); d < readTimeout {
			t.Errorf("stalled TLS handshake closed after %v, before the %v read timeout", d, readTimeout)
		}
		nc.Close()
	}
	if err := cli.Call("Calc.Add", Args{2, 2}, &sum, WithTimeout(5*time.Second)); err != nil || sum != 4 {
		t.Fatalf("Call over TLS after stalled handshakes = %d, %v; want 4, nil", sum, err)
	}
}

// TestClientBudget: replies larger than a client's whole budget, many at
// once on several connections, all complete (one at a time may overdraw)
// and give their bytes back.
func TestClientBudget(t *testing.T) {
	srv := NewServer()
	if err := srv.Register(Big{}); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv, WithMaxBufferedBytes(256<<10), WithPoolSize(3))
	calls := make([]*Call, 12)
	for i := range calls {
		calls[i] = cli.Go("Big.Make", 1<<20+i, new([]byte), nil, WithTimeout(defaultTestTimeout))
	}
	for i, call := range calls {
		waitCall(t, call, defaultTestTimeout)
		if call.Error != nil || len(*call.Reply.(*[]byte)) != 1<<20+i {
			t.Errorf("Go(Big.Make, %d) = %v", 1<<20+i, call.Error)
		}
	}
	// (The reader releases a buffer just after delivering its reply.)
	waitFor(t, "the client budget to be released", func() bool { return cli.budget.inUse() == 0 })
}

// TestServerBudget: requests larger than the server's whole budget, many at
// once on several connections, all complete and give their bytes back,
// while small calls go on.
func TestServerBudget(t *testing.T) {
	cli, _, srv := newCalcPair(t, []ServerOption{WithMaxBufferedBytes(256 << 10)}, WithPoolSize(3))
	calls := make([]*Call, 12)
	for i := range calls {
		calls[i] = cli.Go("Calc.Echo", make([]byte, 1<<20+i), new([]byte), nil, WithTimeout(defaultTestTimeout))
	}
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(defaultTestTimeout)); err != nil || sum != 3 {
		t.Errorf("Call(Calc.Add) among large requests = %d, %v", sum, err)
	}
	for i, call := range calls {
		waitCall(t, call, defaultTestTimeout)
		if call.Error != nil || len(*call.Reply.(*[]byte)) != 1<<20+i {
			t.Errorf("Go(Calc.Echo, %d bytes) = %v", 1<<20+i, call.Error)
		}
	}
	waitFor(t, "the server budget to be released", func() bool { return srv.budget.inUse() == 0 })
}
