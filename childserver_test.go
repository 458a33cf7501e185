package rpc

// Helpers shared by the fleet integration tests (fleet_test.go,
// discovery_test.go): a Calc-like service whose replies name the server that
// answered, in-process servers, child server processes (the test binary
// re-executed), Redis registries, a load generator, fake servers that
// blackhole or drop connections, and a balancer that records its snapshots.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc/internal/redistest"
	"github.com/seedrpc/rpc/lb"
	"github.com/seedrpc/rpc/registry"
)

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
	var last []string
	var lastErr error
	for time.Since(start) < limit {
		addrs, err := lookupAddrs(reg, service)
		if err == nil && cond(addrs) {
			return time.Since(start)
		}
		last, lastErr = addrs, err
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last Lookup(%s) = %v, %v)", what, limit, service, last, lastErr)
	return 0
}

// waitRouted calls service until every address in want has answered,
// bounded by fleetWait.
func waitRouted(t testing.TB, cli *Client, service string, want ...string) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(fleetWait)
	for time.Now().Before(deadline) {
		var r FleetReply
		if err := cli.Call(service+".Add", FleetArgs{A: 1, B: 1}, &r, WithTimeout(time.Second)); err == nil {
			seen[r.Addr] = true
		}
		all := true
		for _, a := range want {
			all = all && seen[a]
		}
		if all {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("client never reached all of %v (reached %v)", want, seen)
}

// callRec is one call made by a load generator.
type callRec struct {
	start, end time.Time
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
				rec := callRec{start: time.Now()}
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
		t.Logf("failed call: started %v, took %v: %v", f.start.Sub(t0).Round(time.Millisecond), f.end.Sub(f.start).Round(time.Millisecond), f.err)
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

// Child server processes.
//
// The test binary re-executes itself with -test.run=^TestChildServer$ and
// SEEDRPC_CHILD=1; TestChildServer then serves a fleetCalc registered in
// Redis until SIGTERM (graceful Shutdown) or SIGKILL. Configuration comes
// from the environment:
//
//	SEEDRPC_REDIS      Redis address (required)
//	SEEDRPC_TTL        registry TTL (default fleetTTL)
//	SEEDRPC_HEARTBEAT  registry heartbeat (default fleetHeartbeat)
//	SEEDRPC_SERVICE    service name (default "Calc")
//	SEEDRPC_DELAY      artificial latency of every call (default 0)
//	SEEDRPC_META       "key=value" metadata (optional)
//
// It prints "ADDR host:port" on stdout once it serves, and "SHUTDOWN ok"
// after a clean graceful shutdown.

// childConfig configures a child server.
type childConfig struct {
	redis   string
	service string
	delay   time.Duration
	meta    string
}

// TestChildServer is the body of a child server process; it does nothing in
// a normal test run.
func TestChildServer(t *testing.T) {
	if os.Getenv("SEEDRPC_CHILD") != "1" {
		return
	}
	if err := runChildServer(); err != nil {
		fmt.Fprintln(os.Stderr, "child server:", err)
		t.Fatal(err)
	}
}

func runChildServer() error {
	envDur := func(key string, def time.Duration) (time.Duration, error) {
		v := os.Getenv(key)
		if v == "" {
			return def, nil
		}
		return time.ParseDuration(v)
	}
	ttl, err := envDur("SEEDRPC_TTL", fleetTTL)
	if err != nil {
		return err
	}
	hb, err := envDur("SEEDRPC_HEARTBEAT", fleetHeartbeat)
	if err != nil {
		return err
	}
	delay, err := envDur("SEEDRPC_DELAY", 0)
	if err != nil {
		return err
	}
	service := orDefault(os.Getenv("SEEDRPC_SERVICE"), "Calc")
	var opts []ServerOption
	if m := os.Getenv("SEEDRPC_META"); m != "" {
		k, v, _ := strings.Cut(m, "=")
		opts = append(opts, withMeta(k, v))
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("SEEDRPC_REDIS"), ContextTimeoutEnabled: true})
	defer rdb.Close()
	reg := registry.NewRedis(rdb, registry.WithTTL(ttl), registry.WithHeartbeat(hb))
	defer reg.Close()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	calc := &fleetCalc{addr: lis.Addr().String(), delay: delay}
	srv := NewServer(append(opts, WithRegistry(reg))...)
	if err := srv.RegisterName(service, calc); err != nil {
		lis.Close()
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()

	// Exit when the parent dies (our parent pid changes): no orphans.
	ppid := os.Getppid()
	orphan := make(chan struct{})
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if os.Getppid() != ppid {
					close(orphan)
					return
				}
			}
		}
	}()
	defer func() { stop(); <-pollDone }()

	// Serve registers before accepting; announce once the instance is listed.
	for i := 0; ; i++ {
		if addrs, err := lookupAddrs(reg, service); err == nil && slices.Contains(addrs, calc.addr) {
			break
		}
		select {
		case err := <-errc:
			return fmt.Errorf("Serve: %w", err)
		case <-time.After(10 * time.Millisecond):
		}
		if i > 1000 {
			srv.Close()
			return errors.New("instance never appeared in the registry")
		}
	}
	fmt.Printf("ADDR %s\n", calc.addr)

	select {
	case <-ctx.Done():
	case <-orphan:
		srv.Close()
		return errors.New("parent died")
	case err := <-errc:
		return fmt.Errorf("Serve returned early: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), fleetWait)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("Shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		return fmt.Errorf("Serve after Shutdown = %v", err)
	}
	fmt.Printf("SHUTDOWN ok in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// childServer is a child server process.
type childServer struct {
	addr   string
	cmd    *exec.Cmd
	out    *childOutput
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, set before exited is closed
}

// childOutput collects a child's output and reports its ADDR line.
type childOutput struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	scanned int
	addrc   chan string // receives the address once
	sent    bool
}

func (o *childOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(p)
	if !o.sent {
		sc := bufio.NewScanner(bytes.NewReader(o.buf.Bytes()))
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				o.addrc <- a
				o.sent = true
				break
			}
		}
	}
	return len(p), nil
}

func (o *childOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// startChild starts a child server process and waits until it serves and
// is registered. It is killed (if still running) and reaped when the test
// ends.
func startChild(t testing.TB, cfg childConfig) *childServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildServer$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(),
		"SEEDRPC_CHILD=1",
		"SEEDRPC_REDIS="+cfg.redis,
		"SEEDRPC_TTL="+fleetTTL.String(),
		"SEEDRPC_HEARTBEAT="+fleetHeartbeat.String(),
		"SEEDRPC_SERVICE="+orDefault(cfg.service, "Calc"),
		"SEEDRPC_DELAY="+cfg.delay.String(),
		"SEEDRPC_META="+cfg.meta,
		// The race detector sleeps 1s at exit by default; a child that
		// shuts down should be gone at once.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
	)
	out := &childOutput{addrc: make(chan string, 1)}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child server: %v", err)
	}
	c := &childServer{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(c.kill)
	select {
	case c.addr = <-out.addrc:
	case <-c.exited:
		t.Fatalf("child server exited before serving (%v):\n%s", c.err, out)
	case <-time.After(fleetWait):
		c.kill()
		t.Fatalf("child server not serving within %v:\n%s", fleetWait, out)
	}
	return c
}

// kill sends SIGKILL (kill -9) and reaps the process.
func (c *childServer) kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// term sends SIGTERM (graceful Shutdown) and waits, bounded, for a clean
// exit.
func (c *childServer) term(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM child %s: %v", c.addr, err)
	}
	select {
	case <-c.exited:
	case <-time.After(fleetWait):
		c.kill()
		t.Fatalf("child %s did not exit within %v of SIGTERM:\n%s", c.addr, fleetWait, c.out)
	}
	if c.err != nil || !strings.Contains(c.out.String(), "SHUTDOWN ok") {
		t.Errorf("child %s: graceful exit failed (%v):\n%s", c.addr, c.err, c.out)
	}
}
