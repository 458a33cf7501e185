package rpc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/registry"
)

// bulkPair returns a client (pool of one connection) of a Calc server
// reached through a stall proxy, after one small call.
func bulkPair(t *testing.T, copts ...ClientOption) (*Client, *tcpProxy) {
	t.Helper()
	srv := NewServer()
	if err := srv.Register(&Calc{started: make(chan struct{}, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Register(new(Blob)); err != nil {
		t.Fatal(err)
	}
	p := newStallProxy(t, startServer(t, srv))
	return dialWarm(t, p.addr(), copts...), p
}

// bulkConns returns the number of bulk connections of the client's pool.
func bulkConns(cli *Client) int {
	b := cli.staticPool.bulkPoolIfAny()
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// bulkLoad returns the calls pending on the client's bulk connections.
func bulkLoad(cli *Client) int32 { return poolBulkLoad(cli.staticPool) }

// poolBulkLoad returns the calls pending on p's bulk connections.
func poolBulkLoad(p *connPool) int32 {
	b := p.bulkPoolIfAny()
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int32
	for _, cc := range b.conns {
		n += cc.load.Load()
	}
	return n
}

// TestBulkSmallCallPassesStalledUpload: with a pool of one connection, a
// large request goes on a connection of its own, so a small call completes
// while that connection is stalled outright, and large calls made
// meanwhile share it. Without the routing, the large request goes on the
// one pooled connection (never stalled) and no second connection is seen.
// Then the bulk connection breaks mid-request: both large calls, not
// written whole, are sent again (on a new bulk connection), and the
// address's pool is neither suspect nor backing off.
func TestBulkSmallCallPassesStalledUpload(t *testing.T) {
	cli, p := bulkPair(t)
	body := incompressible(4 << 20)
	var out, out2 []byte
	if err := cli.Call("Calc.Echo", body[:bulkMin], &out, WithTimeout(time.Minute)); err != nil || !bytes.Equal(out, body[:bulkMin]) {
		t.Fatalf("large echo = %d bytes, %v", len(out), err)
	}
	if got := p.accepted.Load(); got != 2 {
		t.Fatalf("connections after a large call = %d, want 2: the large request went on the pooled one", got)
	}
	p.link(1).stalled.Store(true)
	// Go writes the request before it returns, as far as the connection
	// takes it: from goroutines of their own.
	big, big2 := goCall(cli, "Calc.Echo", body, &out), goCall(cli, "Calc.Echo", body[:2<<20], &out2)
	waitFor(t, "the large requests to be under way", func() bool { return bulkLoad(cli) == 2 })
	for i := range 3 {
		var r int
		if err := cli.Call("Calc.Add", Args{i, 1}, &r, WithTimeout(10*time.Second)); err != nil || r != i+1 {
			t.Fatalf("small call %d while a large upload is stalled = %d, %v", i, r, err)
		}
	}
	select {
	case <-big.Done:
		t.Fatalf("the stalled 4 MiB echo finished (%v) before its connection was released", big.Error)
	default:
	}
	if n := len(cli.staticPool.conns); n != 1 {
		t.Errorf("pooled connections = %d, want 1 (the bulk one is not counted)", n)
	}
	if got := cli.Stats().Conns[p.addr()]; got != 2 {
		t.Errorf("Stats().Conns = %d, want 2 (the pooled one and the bulk one)", got)
	}
	p.link(1).kill() // unblock by failing it: the requests were not written whole
	waitCall(t, big, time.Minute)
	waitCall(t, big2, time.Minute)
	if big.Error != nil || !bytes.Equal(out, body) {
		t.Fatalf("4 MiB echo after its bulk connection broke mid-request = %d bytes, %v", len(out), big.Error)
	}
	if big2.Error != nil || !bytes.Equal(out2, body[:2<<20]) {
		t.Fatalf("2 MiB echo after its bulk connection broke mid-request = %d bytes, %v", len(out2), big2.Error)
	}
	if got := p.accepted.Load(); got != 3 {
		t.Errorf("connections accepted = %d, want 3 (pooled, bulk, bulk redialled once for both retries)", got)
	}
	p.staticPoolNotSuspect(t, cli)
}

// goCall makes a call with a minute's timeout on a goroutine of its own
// and returns it; its Done receives it when it finished.
func goCall(cli *Client, method string, args, reply any) *Call {
	c := &Call{ServiceMethod: method, Done: make(chan *Call, 1)}
	go func() {
		c.Error = cli.Call(method, args, reply, WithTimeout(time.Minute))
		c.Done <- c
	}()
	return c
}

// staticPoolNotSuspect fails t if the address's pool was marked suspect or
// backs off: the bulk connection's troubles are its own.
func (p *tcpProxy) staticPoolNotSuspect(t *testing.T, cli *Client) {
	t.Helper()
	sp := cli.staticPool
	sp.mu.Lock()
	suspect, failures := sp.suspect, sp.failures
	sp.mu.Unlock()
	if suspect || failures != 0 {
		t.Errorf("pool after a bulk connection's failure: suspect %v, failed dials %d; want neither", suspect, failures)
	}
	var r int
	if err := cli.Call("Calc.Add", Args{2, 2}, &r, WithTimeout(10*time.Second)); err != nil || r != 4 {
		t.Errorf("small call afterwards = %d, %v", r, err)
	}
}

// TestBulkThreshold: requests below bulkMin stay on the pooled connection,
// those at or above it go on the bulk one, which concurrent large calls
// share.
func TestBulkThreshold(t *testing.T) {
	cli, p := bulkPair(t)
	var out []byte
	small := incompressible(bulkMin - 1024) // plus its msgpack prefix: still below
	if err := cli.Call("Calc.Echo", small, &out, WithTimeout(time.Minute)); err != nil || !bytes.Equal(out, small) {
		t.Fatalf("echo of %d bytes = %d bytes, %v", len(small), len(out), err)
	}
	if got := p.accepted.Load(); got != 1 {
		t.Fatalf("connections after a request below the threshold = %d, want 1", got)
	}
	calls := make([]*Call, 4)
	outs := make([][]byte, 4)
	body := incompressible(bulkMin + 1)
	for i := range calls {
		calls[i] = cli.Go("Calc.Echo", body, &outs[i], nil, WithTimeout(time.Minute))
	}
	for i, c := range calls {
		waitCall(t, c, time.Minute)
		if c.Error != nil || !bytes.Equal(outs[i], body) {
			t.Errorf("large echo %d = %d bytes, %v", i, len(outs[i]), c.Error)
		}
	}
	if got := p.accepted.Load(); got != 2 {
		t.Errorf("connections after 4 concurrent large calls = %d, want 2 (one bulk connection, shared: pool size 1)", got)
	}
}

// TestBulkIdleAndClose: an idle bulk connection is closed by the health
// check (the pooled one stays), the next large call dials another, and
// Close closes it and waits for its reader (goleak checks the rest).
func TestBulkIdleAndClose(t *testing.T) {
	cli, p := bulkPair(t, WithIdleTimeout(300*time.Millisecond), WithKeepalive(time.Second))
	body := incompressible(bulkMin)
	var out []byte
	if err := cli.Call("Calc.Echo", body, &out, WithTimeout(time.Minute)); err != nil || !bytes.Equal(out, body) {
		t.Fatalf("large echo = %d bytes, %v", len(out), err)
	}
	if got := p.accepted.Load(); got < 2 {
		t.Fatalf("connections accepted after a large call = %d, want 2", got)
	}
	waitFor(t, "the idle bulk connection to close", func() bool { return bulkConns(cli) == 0 && p.live.Load() == 1 })
	if n := len(cli.staticPool.conns); n != 1 {
		t.Errorf("pooled connections after the bulk one idled out = %d, want 1", n)
	}
	if err := cli.Call("Calc.Echo", body, &out, WithTimeout(time.Minute)); err != nil || !bytes.Equal(out, body) {
		t.Fatalf("large echo after the bulk connection idled out = %d bytes, %v", len(out), err)
	}
	cli.Close()
	if got := bulkConns(cli); got != 0 {
		t.Errorf("bulk connections after Close = %d, want 0", got)
	}
	waitFor(t, "the proxy to see every connection closed", func() bool { return p.live.Load() == 0 })
}

// TestBulkDialFails: when the bulk connection cannot be dialled, a large
// call goes on the pooled connection and succeeds; the failed dial backs
// off the bulk connection only, never the address's pool.
func TestBulkDialFails(t *testing.T) {
	cli, p := bulkPair(t)
	var dials atomic.Int32
	dial := cli.dial
	cli.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("refused by the test")
	}
	body := incompressible(2 << 20)
	for i := range 2 {
		var out []byte
		if err := cli.Call("Calc.Echo", body, &out, WithTimeout(time.Minute)); err != nil || !bytes.Equal(out, body) {
			t.Fatalf("large echo %d with the bulk dial failing = %d bytes, %v", i, len(out), err)
		}
	}
	if got := dials.Load(); got < 1 {
		t.Errorf("bulk dials = %d, want at least 1", got)
	}
	if got := p.accepted.Load(); got != 1 {
		t.Errorf("connections accepted = %d, want 1", got)
	}
	p.staticPoolNotSuspect(t, cli)
	b := cli.staticPool.bulkPoolIfAny()
	b.mu.Lock()
	b.nextDial = time.Time{} // the backoff is over
	b.mu.Unlock()
	cli.dial = dial
	var out []byte
	if err := cli.Call("Calc.Echo", body, &out, WithTimeout(time.Minute)); err != nil || !bytes.Equal(out, body) {
		t.Fatalf("large echo once the bulk dial works = %d bytes, %v", len(out), err)
	}
	if got := bulkConns(cli); got != 1 {
		t.Errorf("bulk connections once the dial works = %d, want 1", got)
	}
}

// TestBulkRefusedAtAccept: a server at its connection limit closes the
// bulk connection right after accept; the large call goes on the pooled
// connection instead of failing.
func TestBulkRefusedAtAccept(t *testing.T) {
	srv := NewServer(WithMaxConns(1))
	if err := srv.Register(&Calc{started: make(chan struct{}, 1)}); err != nil {
		t.Fatal(err)
	}
	cli := dialWarm(t, startServer(t, srv))
	body := incompressible(2 << 20)
	var out []byte
	if err := cli.Call("Calc.Echo", body, &out, WithTimeout(time.Minute)); err != nil || !bytes.Equal(out, body) {
		t.Fatalf("large echo to a server that refuses a second connection = %d bytes, %v", len(out), err)
	}
	cli.staticPool.mu.Lock()
	suspect := cli.staticPool.suspect
	cli.staticPool.mu.Unlock()
	if suspect {
		t.Error("the pool is suspect after its bulk connection was refused")
	}
}

// Blob answers small requests with large replies.
type Blob struct{}

// Get returns n bytes.
func (*Blob) Get(n int, reply *[]byte) error {
	*reply = incompressible(n)
	return nil
}

// TestBulkLearnsLargeReplies: a method that answered with a large reply
// (on the pooled connection: its request was small) has its later requests
// sent on the bulk connection, so that a small call of another method
// completes while such a download is stalled. Without the learning, the
// download goes on the one pooled connection and no second connection is
// seen.
func TestBulkLearnsLargeReplies(t *testing.T) {
	cli, p := bulkPair(t)
	var out []byte
	if err := cli.Call("Blob.Get", 2<<20, &out, WithTimeout(time.Minute)); err != nil || len(out) != 2<<20 {
		t.Fatalf("Blob.Get(2 MiB) = %d bytes, %v", len(out), err)
	}
	if got := p.accepted.Load(); got != 1 {
		t.Fatalf("connections after the first download = %d, want 1 (nothing said its reply would be large)", got)
	}
	if err := cli.Call("Blob.Get", 100, &out, WithTimeout(time.Minute)); err != nil || len(out) != 100 {
		t.Fatalf("Blob.Get(100) = %d bytes, %v", len(out), err)
	}
	if got := p.accepted.Load(); got != 2 {
		t.Fatalf("connections after a download of a method known for large replies = %d, want 2", got)
	}
	p.link(1).stalled.Store(true)
	var big []byte
	dl := goCall(cli, "Blob.Get", 4<<20, &big)
	waitFor(t, "the download to be under way", func() bool { return bulkLoad(cli) == 1 })
	for i := range 3 {
		var r int
		if err := cli.Call("Calc.Add", Args{i, 1}, &r, WithTimeout(10*time.Second)); err != nil || r != i+1 {
			t.Fatalf("small call %d while a download is stalled = %d, %v", i, r, err)
		}
	}
	select {
	case <-dl.Done:
		t.Fatalf("the stalled download finished (%v) before its connection was released", dl.Error)
	default:
	}
	p.link(1).stalled.Store(false)
	waitCall(t, dl, time.Minute)
	if dl.Error != nil || !bytes.Equal(big, incompressible(4<<20)) {
		t.Fatalf("Blob.Get(4 MiB) = %d bytes, %v", len(big), dl.Error)
	}
}

// TestBulkAtMostTwo: with the default pool, concurrent large calls get a
// second bulk connection, never a third, and the pool gains none.
func TestBulkAtMostTwo(t *testing.T) {
	cli, p := bulkPair(t, WithPoolSize(4))
	body := incompressible(bulkMin + 1)
	for round := range 3 {
		calls := make([]*Call, 6)
		outs := make([][]byte, len(calls))
		for i := range calls {
			calls[i] = cli.Go("Calc.Echo", body, &outs[i], nil, WithTimeout(time.Minute))
		}
		for i, c := range calls {
			waitCall(t, c, time.Minute)
			if c.Error != nil || !bytes.Equal(outs[i], body) {
				t.Fatalf("round %d: large echo %d = %d bytes, %v", round, i, len(outs[i]), c.Error)
			}
		}
		if n := bulkConns(cli); n > maxBulkConns {
			t.Fatalf("round %d: bulk connections = %d, want at most %d", round, n, maxBulkConns)
		}
	}
	if got := bulkConns(cli); got != 2 {
		t.Errorf("bulk connections after 18 overlapping large calls = %d, want 2", got)
	}
	if got := p.accepted.Load(); got != 3 {
		t.Errorf("connections accepted = %d, want 3 (one pooled, two bulk)", got)
	}
}

// TestBulkFailoverToAnotherInstance: a discovering client's large call
// whose bulk connection breaks mid-request (not written whole, so it never
// ran) is sent to another instance, where it gets a bulk connection of its
// own; the first instance's pool is not marked suspect.
func TestBulkFailoverToAnotherInstance(t *testing.T) {
	mem := newMemoryRegistry(t)
	var proxies []*tcpProxy
	for _, order := range []string{"a", "b"} {
		srv := NewServer()
		if err := srv.Register(&Calc{started: make(chan struct{}, 1)}); err != nil {
			t.Fatal(err)
		}
		p := newStallProxy(t, startServer(t, srv))
		proxies = append(proxies, p)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := mem.Register(ctx, registry.Instance{Service: "Calc", Addr: p.addr(), Meta: map[string]string{"order": order}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b := proxies[0], proxies[1]
	cli := newFleetClient(t, mem, WithBalancer(orderedBalancer{}), WithPoolSize(1))
	body := incompressible(4 << 20)
	var out []byte
	if err := cli.Call("Calc.Echo", body[:bulkMin], &out, WithTimeout(time.Minute)); err != nil || !bytes.Equal(out, body[:bulkMin]) {
		t.Fatalf("large echo = %d bytes, %v", len(out), err)
	}
	if ga, gb := a.accepted.Load(), b.accepted.Load(); ga != 2 || gb != 0 {
		t.Fatalf("connections accepted by a, b = %d, %d; want 2 (pooled, bulk), 0", ga, gb)
	}
	pa := cli.pool(a.addr())
	a.link(1).stalled.Store(true)
	big := goCall(cli, "Calc.Echo", body, &out)
	waitFor(t, "the large request to be under way to a", func() bool { return poolBulkLoad(pa) == 1 })
	a.link(1).kill()
	waitCall(t, big, time.Minute)
	if big.Error != nil || !bytes.Equal(out, body) {
		t.Fatalf("4 MiB echo after a's bulk connection broke mid-request = %d bytes, %v", len(out), big.Error)
	}
	if gb := b.accepted.Load(); gb != 2 {
		t.Errorf("connections accepted by b = %d, want 2 (the retry's pooled and bulk connections)", gb)
	}
	pa.mu.Lock()
	suspect, failures := pa.suspect, pa.failures
	pa.mu.Unlock()
	if suspect || failures != 0 {
		t.Errorf("a's pool after its bulk connection broke: suspect %v, failed dials %d; want neither", suspect, failures)
	}
}
