package rpc

// Child server processes for the fleet integration tests: the test binary
// re-executed as a server registered in Redis, killed with SIGKILL or
// stopped with SIGTERM.

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
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc/registry"
)

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
