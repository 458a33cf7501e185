package rpc

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/codec"
	"github.com/seedrpc/rpc/internal/wire"
)

// Tests of the requests a busy connection runs in a batch on its reading
// goroutine, with their responses held and written together
// (server_inline.go).

// writeCountListener counts the writes made on the connections it accepts.
type writeCountListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l writeCountListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return writeCountConn{nc, l.writes}, nil
}

type writeCountConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c writeCountConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// batchServer serves inlineSvc as if every core were busy (a batch needs
// as many calls running as GOMAXPROCS; here one, the batch's own), and
// returns a raw connection to it and the count of the server's writes.
func batchServer(t *testing.T, sopts ...ServerOption) (*inlineSvc, net.Conn, *atomic.Int64, *Server) {
	t.Helper()
	// Handlers that capture their stack take well over the 50µs of a
	// quick method under the race detector, and a few of them over the
	// 200µs a batch holds its responses.
	oldProcs, oldQuick, oldHold := serverProcs, batchQuick, maxHold
	serverProcs, batchQuick, maxHold = func() int { return 1 }, 10*time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { serverProcs, batchQuick, maxHold = oldProcs, oldQuick, oldHold })
	srv := NewServer(sopts...)
	svc := newInlineSvc()
	if err := srv.RegisterName("Inline", svc); err != nil {
		t.Fatal(err)
	}
	writes := new(atomic.Int64)
	if err := srv.RegisterName("BatchProbe", &batchProbe{writes: writes}); err != nil {
		t.Fatal(err)
	}
	lis := writeCountListener{listenLoopback(t), writes}
	errc := serve(srv, lis)
	t.Cleanup(func() {
		svc.unblock()
		srv.Close()
		<-errc
	})
	nc, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return svc, nc, writes, srv
}

// readOK reads one response (readResponse) and fails unless it is a
// success; it returns the response's seq and body.
func readOK(t *testing.T, nc net.Conn) (uint64, []byte) {
	t.Helper()
	h, payload := readResponse(t, nc)
	if h.Type != wire.TypeResponse || h.Status != wire.StatusOK {
		t.Fatalf("seq %d: frame type %v status %v: %s", h.Seq, h.Type, h.Status, payload)
	}
	return h.Seq, payload[int(h.MethodLen)+int(h.MetaLen):]
}

// msgpack encodings used below.
var (
	mpZero = []byte{0x00}
	mpTrue = []byte{0xc3}
)

// TestBatchRunsInlineInOneWrite: requests that arrive together run in turn
// on the goroutine that read them and their responses leave in one write.
// A handler descheduled for over a millisecond (a loaded machine) makes
// the guard split the batch, so the test passes if one of a few rounds
// shows the batch whole; with batching broken every round has a write per
// response, or handlers on workers.
func TestBatchRunsInlineInOneWrite(t *testing.T) {
	_, nc, writes, _ := batchServer(t)
	const n = 8
	var lastWrites int64
	var allInline bool
	seq := uint64(0)
	for round := 0; round < 20; round++ {
		var req []byte
		for range n {
			seq++
			req = append(req, frame(wire.TypeRequest, seq, "Inline.Fast", mpZero)...)
		}
		before := writes.Load()
		if _, err := nc.Write(req); err != nil {
			t.Fatal(err)
		}
		allInline = true
		for i := range n {
			got, body := readOK(t, nc)
			want := seq - n + uint64(i) + 1
			allInline = allInline && got == want && string(body) == string(mpTrue)
		}
		lastWrites = writes.Load() - before
		if lastWrites == 1 && allInline {
			return
		}
	}
	t.Errorf("last round: %d responses in %d writes, all run inline and in order: %v; want one write, inline", n, lastWrites, allInline)
}

// TestBatchHoldReleasedBeforeRead: the responses of a batch are written
// as soon as no whole request is left in the buffer, not held until the
// request being received completes.
func TestBatchHoldReleasedBeforeRead(t *testing.T) {
	_, nc, _, _ := batchServer(t)
	third := frame(wire.TypeRequest, 3, "Inline.Fast", mpZero)
	req := append(frame(wire.TypeRequest, 1, "Inline.Fast", mpZero), frame(wire.TypeRequest, 2, "Inline.Fast", mpZero)...)
	req = append(req, third[:10]...)
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 2; want++ {
		if got, _ := readOK(t, nc); got != want {
			t.Fatalf("got seq %d, want %d", got, want)
		}
	}
	if _, err := nc.Write(third[10:]); err != nil {
		t.Fatal(err)
	}
	if got, _ := readOK(t, nc); got != 3 {
		t.Fatalf("got seq %d, want 3", got)
	}
}

// TestBatchSlowCallDoesNotHoldOthers: a call in a batch that turns out
// slow has the reading (and the held responses) taken from it: the
// requests behind it are answered while it still runs, and its run counts
// in its method's average, capped (five or six such in a row make it
// slow: TestOneSlowRunKeepsMethodQuick, TestInlineSlowMethodRunsOnWorker).
func TestBatchSlowCallDoesNotHoldOthers(t *testing.T) {
	svc, nc, _, srv := batchServer(t)
	req := append(frame(wire.TypeRequest, 1, "Inline.Fast", mpZero), frame(wire.TypeRequest, 2, "Inline.Block", mpZero)...)
	req = append(req, frame(wire.TypeRequest, 3, "Inline.Fast", mpZero)...)
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	for _, want := range []uint64{1, 3} {
		if got, _ := readOK(t, nc); got != want {
			t.Fatalf("got seq %d, want %d while Block runs", got, want)
		}
	}
	select {
	case inline := <-svc.started:
		if !inline {
			t.Error("Block, read with a request behind it, ran on a worker: the batch was not tried")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Block never started")
	}
	time.Sleep(100 * time.Millisecond) // slow: its average passes batchQuick
	svc.unblock()
	if got, _ := readOK(t, nc); got != 2 {
		t.Fatalf("got seq %d, want 2", got)
	}
	m, err := srv.lookup([]byte("Inline.Block"))
	if err != nil {
		t.Fatal(err)
	}
	// Noted once the handler's goroutine is back from writing the response,
	// as at most slowRunCap*batchQuick.
	waitFor(t, "Block's slow inline run to count in its average", func() bool {
		return m.stats.inlineAvg.Load() >= int64(slowRunCap*batchQuick)/8
	})
	fast, _ := srv.lookup([]byte("Inline.Fast"))
	if !fast.stats.quick() {
		t.Error("Fast does not count as quick")
	}
}

// TestBatchHoldReleasedAtConnCap: a batch's held responses are written
// before the reader waits for a slot under the per-connection cap, not
// when the call holding the slot ends.
func TestBatchHoldReleasedAtConnCap(t *testing.T) {
	svc, nc, _, srv := batchServer(t, WithMaxCalls(100, 1))
	block, err := srv.lookup([]byte("Inline.Block"))
	if err != nil {
		t.Fatal(err)
	}
	block.stats.inlineAvg.Store(int64(time.Second)) // slow: Block goes to a worker
	var req []byte
	for i, m := range []string{"Inline.Fast", "Inline.Fast", "Inline.Block", "Inline.Fast"} {
		req = append(req, frame(wire.TypeRequest, uint64(i+1), m, mpZero)...)
	}
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	// 1 and 2 run inline with the writer held; 3 takes the only slot on a
	// worker; 4 waits for the slot, so 1 and 2 must be written first.
	for want := uint64(1); want <= 2; want++ {
		if got, _ := readOK(t, nc); got != want {
			t.Fatalf("got seq %d, want %d while Block holds the slot", got, want)
		}
	}
	svc.unblock()
	for want := uint64(3); want <= 4; want++ {
		if got, _ := readOK(t, nc); got != want {
			t.Fatalf("got seq %d, want %d", got, want)
		}
	}
}

// batchProbe's handler tells how many writes the server had made on its
// connections when it ran.
type batchProbe struct{ writes *atomic.Int64 }

// Spin busy-waits us microseconds (a handler that computes), then answers
// the number of writes made so far.
func (p *batchProbe) Spin(us int, reply *int64) error {
	for end := time.Now().Add(time.Duration(us) * time.Microsecond); time.Now().Before(end); {
	}
	*reply = p.writes.Load()
	return nil
}

// Late is Spin under another name, for a method the test marks slow.
func (p *batchProbe) Late(us int, reply *int64) error { return p.Spin(us, reply) }

// spinReq is a request for BatchProbe.Spin(us).
func spinReq(t *testing.T, seq uint64, us int) []byte {
	t.Helper()
	return probeReq(t, seq, "BatchProbe.Spin", us)
}

// probeReq is a request for a BatchProbe method with argument us.
func probeReq(t *testing.T, seq uint64, method string, us int) []byte {
	t.Helper()
	body, err := codec.Msgpack{}.AppendMarshal(nil, us)
	if err != nil {
		t.Fatal(err)
	}
	return frame(wire.TypeRequest, seq, method, body)
}

// readSpin reads a Spin response: its seq and the writes its handler saw.
func readSpin(t *testing.T, nc net.Conn) (uint64, int64) {
	t.Helper()
	seq, body := readOK(t, nc)
	var n int64
	if err := (codec.Msgpack{}).Unmarshal(body, &n); err != nil {
		t.Fatal(err)
	}
	return seq, n
}

// TestBatchHoldBounded: a long batch of quick calls writes what it holds
// every maxHold, not once at its end: the last of 40 calls of 100µs each
// (4ms in all, maxHold 1ms) runs after some responses were written.
func TestBatchHoldBounded(t *testing.T) {
	_, nc, writes, _ := batchServer(t)
	maxHold = inlineBound // batchServer restores it
	const n = 40
	var req []byte
	for i := range n {
		req = append(req, spinReq(t, uint64(i+1), 100)...)
	}
	before := writes.Load()
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	var last int64
	for range n {
		// (In order, unless the guard moved the reading off a call
		// descheduled for over a millisecond.)
		if seq, w := readSpin(t, nc); seq == n {
			last = w
		}
	}
	if last == before {
		t.Errorf("the last of %d calls (%v of handlers) ran with every response still held", n, n*100*time.Microsecond)
	}
}

// TestBatchReleasedBeforeSlowLast: the batch's last call, of a method that
// is not quick, runs after the responses held before it were written.
func TestBatchReleasedBeforeSlowLast(t *testing.T) {
	_, nc, writes, srv := batchServer(t)
	late, err := srv.lookup([]byte("BatchProbe.Late"))
	if err != nil {
		t.Fatal(err)
	}
	// The last call runs on a worker (its method is not quick), and the
	// write of its response may still be finishing when the test has read
	// it; a batch that starts meanwhile cannot hold the writer.
	writerIdle := func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for c := range srv.conns {
			if !c.w.Idle() {
				return false
			}
		}
		return true
	}
	held := 0
	for round := range 5 {
		poll(t, defaultTestTimeout, "the connection's writer to be idle", writerIdle)
		late.stats.inlineAvg.Store(int64(time.Second)) // not quick
		seq := uint64(round * 3)
		req := append(spinReq(t, seq+1, 0), spinReq(t, seq+2, 0)...)
		req = append(req, probeReq(t, seq+3, "BatchProbe.Late", 0)...)
		before := writes.Load()
		if _, err := nc.Write(req); err != nil {
			t.Fatal(err)
		}
		var sawLast int64
		for range 3 {
			if got, w := readSpin(t, nc); got == seq+3 {
				sawLast = w
			}
		}
		if sawLast == before {
			held++
		}
	}
	if held >= 3 {
		t.Errorf("in %d of 5 rounds the last call, of a method that is not quick, ran with the batch's responses held", held)
	}
}

// TestBatchHoldReleasedAtBudgetWait: a batch's held responses are written
// before the reader waits for read budget for the next request, not when
// budget comes back.
func TestBatchHoldReleasedAtBudgetWait(t *testing.T) {
	_, nc, _, srv := batchServer(t, WithMaxBufferedBytes(64<<10))
	b := srv.budget
	// Spend the whole budget and its overdraft, as other connections'
	// large requests would.
	var od, od2 bool
	if _, ok := b.tryAcquire(b.limit, true, &od); !ok {
		t.Fatal("could not spend the budget")
	}
	if _, ok := b.tryAcquire(1, true, &od2); !ok || !od2 {
		t.Fatal("could not take the overdraft")
	}
	gave := false
	giveBack := func() {
		if !gave {
			gave = true
			b.release(b.limit, false, &od)
			b.release(1, true, &od2)
		}
	}
	defer giveBack()
	// 1 and 2 run inline with the writer held; 3 needs a charged buffer.
	req := append(spinReq(t, 1, 0), spinReq(t, 2, 0)...)
	req = append(req, frame(wire.TypeRequest, 3, "BatchProbe.Spin", make([]byte, 16<<10))...)
	if _, err := nc.Write(req); err != nil {
		t.Fatal(err)
	}
	for want := uint64(1); want <= 2; want++ {
		if got, _ := readOK(t, nc); got != want {
			t.Fatalf("got seq %d, want %d while the reader waits for budget", got, want)
		}
	}
	giveBack()
	if h, _ := readResponse(t, nc); h.Seq != 3 {
		t.Fatalf("got seq %d, want 3 once budget came back", h.Seq)
	}
}
