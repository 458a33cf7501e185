package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc/internal/redistest"
	"github.com/seedrpc/rpc/lb"
	"github.com/seedrpc/rpc/registry"
)

// Helpers of the fleet integration tests (fleet_test.go, discovery_test.go):
// a Calc-like service whose replies name the server that answered,
// in-process servers, Redis registries, a load generator, fake servers that
// blackhole or drop connections, and balancers that record or order.

// Fleet test timings: short TTLs so that expiry tests stay fast.
const (
	fleetTTL       = time.Second
	fleetHeartbeat = 300 * time.Millisecond
	// fleetWait bounds every wait for the fleet to reach a state.
	fleetWait = 10 * time.Second
)

// FleetArgs are the arguments of every fleetCalc method. Sleep is added to
// the server's own per-call delay.
type FleetArgs struct {
	A, B  int
	Sleep time.Duration
}

// FleetReply carries the answer and the address of the server that gave it.
type FleetReply struct {
	Sum  int
	Addr string
}

// fleetCalc is served as "Calc" (or another name) by the fleet tests. Every
// reply carries the server's address, so a test can see who answered.
type fleetCalc struct {
	addr      string        // set before Serve
	delay     time.Duration // artificial latency of every call
	calls     atomic.Int64  // calls received
	cancelled atomic.Int64  // handlers that saw their ctx end
}

// Add returns A+B after the server's delay plus args.Sleep.
func (c *fleetCalc) Add(ctx context.Context, args FleetArgs, reply *FleetReply) error {
	c.calls.Add(1)
	if d := c.delay + args.Sleep; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			c.cancelled.Add(1)
			return ctx.Err()
		}
	}
	reply.Sum = args.A + args.B
	reply.Addr = c.addr
	return nil
}

// fleetServer is one in-process server of the fleet tests.
type fleetServer struct {
	srv  *Server
	calc *fleetCalc
	addr string
	errc chan error // Serve's result
	once sync.Once
	err  error
}

// startFleetServer serves a fleetCalc as service name (default "Calc") on a
// loopback port, registered in reg when reg is not nil. It is closed when
// the test ends.
func startFleetServer(t testing.TB, reg registry.Registry, name string, delay time.Duration, opts ...ServerOption) *fleetServer {
	t.Helper()
	if name == "" {
		name = "Calc"
	}
	if reg != nil {
		opts = append([]ServerOption{WithRegistry(reg)}, opts...)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fleetServer{
		srv:  NewServer(opts...),
		calc: &fleetCalc{addr: lis.Addr().String(), delay: delay},
		addr: lis.Addr().String(),
		errc: make(chan error, 1),
	}
	if err := fs.srv.RegisterName(name, fs.calc); err != nil {
		lis.Close()
		t.Fatal(err)
	}
	go func() { fs.errc <- fs.srv.Serve(lis) }()
	t.Cleanup(func() {
		fs.srv.Close()
		if err := fs.wait(); err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("server %s: Serve() = %v, want ErrServerClosed", fs.addr, err)
		}
	})
	if reg != nil { // Serve registers asynchronously: wait until listed
		waitLookup(t, reg, name, fleetWait, "server "+fs.addr+" registered", func(addrs []string) bool {
			return slices.Contains(addrs, fs.addr)
		})
	}
	return fs
}

// wait returns Serve's result, bounded by fleetWait.
func (fs *fleetServer) wait() error {
	fs.once.Do(func() {
		select {
		case fs.err = <-fs.errc:
		case <-time.After(fleetWait):
			fs.err = fmt.Errorf("Serve of %s did not return within %v", fs.addr, fleetWait)
		}
	})
	return fs.err
}

// shutdown shuts the server down gracefully and waits for Serve to return.
func (fs *fleetServer) shutdown(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), fleetWait)
	defer cancel()
	if err := fs.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown(%s) = %v", fs.addr, err)
	}
	if err := fs.wait(); !errors.Is(err, ErrServerClosed) {
		t.Errorf("server %s: Serve() = %v, want ErrServerClosed", fs.addr, err)
	}
}

// newRedisClient returns a go-redis client of addr with context deadlines
// honoured, closed when the test ends.
func newRedisClient(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr:                  addr,
		ContextTimeoutEnabled: true,
		DialTimeout:           500 * time.Millisecond,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
		MaxRetries:            -1,
	})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newRedisRegistry returns a Redis registry with the fleet TTLs on its own
// client of addr, closed when the test ends.
func newRedisRegistry(t testing.TB, addr string) *registry.Redis {
	t.Helper()
	rdb := newRedisClient(t, addr)
	reg := registry.NewRedis(rdb, registry.WithTTL(fleetTTL), registry.WithHeartbeat(fleetHeartbeat),
		registry.WithOpTimeout(500*time.Millisecond))
	t.Cleanup(func() { reg.Close() })
	return reg
}

// startRedis starts a real redis-server for the test.
func startRedis(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Start(t)
}

// newFleetClient returns a discovering client of reg, closed when the test
// ends.
func newFleetClient(t testing.TB, reg registry.Registry, opts ...ClientOption) *Client {
	t.Helper()
	cli, err := NewClient(append([]ClientOption{WithRegistry(reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// lookupAddrs returns the addresses reg lists for service, or an error.
func lookupAddrs(reg registry.Registry, service string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	insts, err := reg.Lookup(ctx, service)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(insts))
	for i, in := range insts {
		addrs[i] = in.Addr
	}
	return addrs, nil
}

// waitLookup polls reg until cond holds for the addresses of service and
// returns how long it took; it fails the test after limit.
func waitLookup(t testing.TB, reg registry.Registry, service string, limit time.Duration, what string, cond func([]string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(limit)
	for {
		addrs, err := lookupAddrs(reg, service)
		if err == nil && cond(addrs) {
			return time.Since(start)
		}
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("%s: not within %v (last Lookup(%s) = %v, %v)", what, limit, service, addrs, err)
		}
	}
}

// waitRouted calls service until every address in want has answered,
// bounded by fleetWait.
func waitRouted(t testing.TB, cli *Client, service string, want ...string) {
	t.Helper()
	seen := map[string]bool{}
	poll(t, fleetWait, fmt.Sprintf("the client to reach all of %v", want), func() bool {
		var r FleetReply
		if err := cli.Call(service+".Add", FleetArgs{A: 1, B: 1}, &r, WithTimeout(time.Second)); err == nil {
			seen[r.Addr] = true
		}
		for _, a := range want {
			if !seen[a] {
				return false
			}
		}
		return true
	})
}

// callRec is one call made by a load generator.
type callRec struct {
	start, end time.Time
	caller     int    // index of the calling goroutine
	addr       string // who answered; "" on error
	err        error
}

// load runs callers goroutines that call method in a loop until stop.
type load struct {
	stopc chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	mu    sync.Mutex
	recs  []callRec
}

// startLoad starts callers goroutines calling cli in a loop; each call is
// bounded by opts (give WithTimeout). Stop ends them; it also runs when the
// test ends.
func startLoad(t testing.TB, cli *Client, callers int, method string, args FleetArgs, opts ...CallOption) *load {
	l := &load{stopc: make(chan struct{})}
	for i := range callers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				var r FleetReply
				a := args
				a.A = i
				rec := callRec{start: time.Now(), caller: i}
				rec.err = cli.Call(method, a, &r, opts...)
				rec.end = time.Now()
				if rec.err == nil {
					rec.addr = r.Addr
					if r.Sum != a.A+a.B {
						rec.err = fmt.Errorf("wrong sum %d from %s", r.Sum, r.Addr)
					}
				}
				l.mu.Lock()
				l.recs = append(l.recs, rec)
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

// stop ends the callers, waits for them and returns every call made.
func (l *load) stop() []callRec {
	l.once.Do(func() { close(l.stopc) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs)
}

// snapshot returns the calls made so far.
func (l *load) snapshot() []callRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs)
}

// waitAnswered waits, bounded by fleetWait, until each of addrs answered
// at least n calls started after since (with no addrs: until n calls
// started after since succeeded).
func (l *load) waitAnswered(t testing.TB, since time.Time, n int, addrs ...string) {
	t.Helper()
	poll(t, fleetWait, fmt.Sprintf("%d calls answered by each of %v", n, addrs), func() bool {
		got := countByAddr(slicesFilter(l.snapshot(), func(r callRec) bool { return r.start.After(since) }))
		if len(addrs) == 0 {
			total := 0
			for _, c := range got {
				total += c
			}
			return total >= n
		}
		for _, a := range addrs {
			if got[a] < n {
				return false
			}
		}
		return true
	})
}

// countByAddr counts successful calls per answering server among recs.
func countByAddr(recs []callRec) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		if r.err == nil {
			m[r.addr]++
		}
	}
	return m
}

// failures returns the failed calls among recs.
func failures(recs []callRec) []callRec {
	var f []callRec
	for _, r := range recs {
		if r.err != nil {
			f = append(f, r)
		}
	}
	return f
}

// logFailures reports up to 10 failed calls relative to t0.
func logFailures(t testing.TB, t0 time.Time, fails []callRec) {
	t.Helper()
	for i, f := range fails {
		if i == 10 {
			t.Logf("... and %d more", len(fails)-10)
			break
		}
		t.Logf("failed call of caller %d: started %v, took %v: %v", f.caller, f.start.Sub(t0).Round(time.Millisecond), f.end.Sub(f.start).Round(time.Millisecond), f.err)
	}
}

// fakeMode is what a fakeServer does with its connections.
type fakeMode int

const (
	// fakeBlackhole accepts connections and never reads or answers.
	fakeBlackhole fakeMode = iota
	// fakeDrop reads the first bytes of each connection, then closes it.
	fakeDrop
)

// fakeServer is a TCP listener that misbehaves; requests counts the
// connections on which it received data.
type fakeServer struct {
	lis      net.Listener
	mode     fakeMode
	requests atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// startFakeServer listens on loopback until the test ends.
func startFakeServer(t testing.TB, mode fakeMode) *fakeServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{lis: lis, mode: mode}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) addr() string { return f.lis.Addr().String() }

func (f *fakeServer) accept() {
	defer f.wg.Done()
	for {
		nc, err := f.lis.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, nc)
		f.mu.Unlock()
		if f.mode == fakeDrop {
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				var b [64]byte
				if n, _ := nc.Read(b[:]); n > 0 {
					f.requests.Add(1)
				}
				nc.Close()
			}()
		}
	}
}

func (f *fakeServer) close() {
	f.lis.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// deadAddr returns a loopback address with nothing listening on it.
func deadAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// registerFake registers addr as an instance of service in reg (for fake
// or dead servers), deregistered when the test ends.
func registerFake(t testing.TB, reg registry.Registry, service, addr string) {
	t.Helper()
	inst := registry.Instance{Service: service, Addr: addr}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := reg.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = reg.Deregister(ctx, inst)
	})
}

// recBalancer wraps a Balancer and records the membership of every picker
// it builds, so a test can see when the client stopped routing somewhere.
type recBalancer struct {
	inner lb.Balancer
	mu    sync.Mutex
	last  []string
	at    time.Time
}

func (b *recBalancer) Name() string { return "recording_" + b.inner.Name() }

func (b *recBalancer) Build(eps []lb.Endpoint) lb.Picker {
	addrs := make([]string, len(eps))
	for i, ep := range eps {
		addrs[i] = ep.Addr
	}
	slices.Sort(addrs)
	b.mu.Lock()
	b.last, b.at = addrs, time.Now()
	b.mu.Unlock()
	return b.inner.Build(eps)
}

// routable returns the addresses of the latest picker and when it was built.
func (b *recBalancer) routable() ([]string, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.at
}

// orderedBalancer picks the first endpoint not excluded, in the order of
// their "order" metadata: deterministic routing for hedging tests.
type orderedBalancer struct{}

func (orderedBalancer) Name() string { return "ordered" }

func (orderedBalancer) Build(eps []lb.Endpoint) lb.Picker {
	eps = slices.Clone(eps)
	slices.SortFunc(eps, func(a, b lb.Endpoint) int { return strings.Compare(a.Meta["order"], b.Meta["order"]) })
	return orderedPicker(eps)
}

type orderedPicker []lb.Endpoint

func (p orderedPicker) Pick(info lb.PickInfo) (lb.PickResult, error) {
	for _, ep := range p {
		if !slices.Contains(info.Exclude, ep.Addr) {
			return lb.PickResult{Addr: ep.Addr}, nil
		}
	}
	return lb.PickResult{}, lb.ErrNoEndpoints
}

// newMemoryRegistry returns an in-process registry with the fleet TTLs,
// closed when the test ends.
func newMemoryRegistry(t testing.TB) *registry.Memory {
	t.Helper()
	mem := registry.NewMemory(registry.WithTTL(fleetTTL), registry.WithHeartbeat(fleetHeartbeat))
	t.Cleanup(func() { mem.Close() })
	return mem
}

// callN makes n calls from each of callers goroutines and returns them all.
func callN(t testing.TB, cli *Client, callers, n int, args func(caller, i int) FleetArgs, opts ...CallOption) []callRec {
	t.Helper()
	var mu sync.Mutex
	var recs []callRec
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				a := args(c, i)
				var r FleetReply
				rec := callRec{start: time.Now(), caller: c}
				rec.err = cli.Call("Calc.Add", a, &r, opts...)
				rec.end = time.Now()
				if rec.err == nil {
					rec.addr = r.Addr
					if r.Sum != a.A+a.B {
						rec.err = fmt.Errorf("wrong sum %d from %s", r.Sum, r.Addr)
					}
				}
				mu.Lock()
				recs = append(recs, rec)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return recs
}

func plainArgs(c, i int) FleetArgs { return FleetArgs{A: c, B: i} }

// slicesFilter returns the records for which keep is true.
func slicesFilter(recs []callRec, keep func(callRec) bool) []callRec {
	var out []callRec
	for _, r := range recs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// addrsSince returns the servers that answered calls started after since.
func (l *load) addrsSince(since time.Time) []string {
	var out []string
	for a := range countByAddr(slicesFilter(l.snapshot(), func(r callRec) bool { return r.start.After(since) })) {
		out = append(out, a)
	}
	return out
}
