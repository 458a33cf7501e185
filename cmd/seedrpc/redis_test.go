package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	rpc "github.com/seedrpc/rpc"
	"github.com/seedrpc/rpc/internal/redistest"
	"github.com/seedrpc/rpc/registry"
)

// fleet is a redis-server and a registry over it.
type fleet struct {
	redis *redistest.Server
	reg   *registry.Redis
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	reg := registry.NewRedis(rdb, registry.WithTTL(10*time.Second))
	t.Cleanup(func() {
		reg.Close()
		rdb.Close()
	})
	return &fleet{redis: srv, reg: reg}
}

// serve starts a server announcing Calc and Types in the registry and
// returns its address and a function that shuts it down (also run when
// the test ends).
func (f *fleet) serve(t *testing.T, inst registry.Instance) (string, func()) {
	t.Helper()
	srv := rpc.NewServer(rpc.WithRegistry(f.reg), rpc.WithInstance(inst))
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Register(&Types{}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve() = %v, want ErrServerClosed", err)
		}
	}
	t.Cleanup(stop)
	addr := lis.Addr().String()
	f.waitListed(t, "Calc", addr)
	return addr, stop
}

// waitListed waits until the registry lists service at addr.
func (f *fleet) waitListed(t *testing.T, service, addr string) {
	t.Helper()
	deadline := time.Now().Add(defaultTestTimeout)
	for time.Now().Before(deadline) {
		insts, err := f.reg.Lookup(context.Background(), service)
		if err == nil {
			for _, inst := range insts {
				if inst.Addr == addr {
					return
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s at %s not listed within %v", service, addr, defaultTestTimeout)
}

func TestListAndCallRedis(t *testing.T) {
	f := newFleet(t)
	a1, _ := f.serve(t, registry.Instance{Weight: 3, Meta: map[string]string{"zone": "a", "version": "v2"}})
	a2, _ := f.serve(t, registry.Instance{})
	raddr := f.redis.Addr()

	r := cli(t, "", "list", "-redis", raddr)
	if r.code != 0 || r.stderr != "" || !regexp.MustCompile(`(?m)^SERVICE\s+INSTANCES\n(Calc)\s+2\n(Types)\s+2\n$`).MatchString(r.stdout) {
		t.Errorf("list:\n%v\nwant Calc and Types with 2 instances each", r)
	}
	r = cli(t, "", "list", "-redis", "redis://"+raddr+"/0", "Calc")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("list Calc:\n%v", r)
	}
	rows := regexp.MustCompile(`(?m)^(\S+)\s+(\d+)\s+(\S+)\s+(\S+)$`).FindAllStringSubmatch(r.stdout, -1)
	got := make(map[string][]string)
	for _, row := range rows {
		got[row[1]] = row[2:]
	}
	for _, want := range []struct{ addr, weight, meta string }{{a1, "3", "version=v2,zone=a"}, {a2, "0", "-"}} {
		row, ok := got[want.addr]
		if !ok {
			t.Errorf("list Calc: no row for %s:\n%v", want.addr, r)
			continue
		}
		if row[0] != want.weight || row[2] != want.meta {
			t.Errorf("list Calc: %s weight, meta = %s, %s; want %s, %s", want.addr, row[0], row[2], want.weight, want.meta)
		}
		if d, err := time.ParseDuration(row[1]); err != nil || d <= 0 || d > 10*time.Second {
			t.Errorf("list Calc: %s expires in %q, want within the 10s TTL", want.addr, row[1])
		}
	}
	r = cli(t, "", "list", "-redis", raddr, "Nope")
	if r.code != 1 || !strings.Contains(r.stderr, `no instances of "Nope"`) {
		t.Errorf("list Nope:\n%v\nwant exit 1, no instances", r)
	}
	r = cli(t, "", "list", "-redis", raddr, "-prefix", "other")
	if r.code != 1 || !strings.Contains(r.stderr, "no services registered") {
		t.Errorf("list -prefix other:\n%v\nwant exit 1, no services", r)
	}
	r = cli(t, "", "list", "-redis", closedAddr(t), "-timeout", "2s")
	if r.code != 1 || !strings.Contains(r.stderr, "connection refused") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("list on a closed port:\n%v\nwant exit 1 and one line of error", r)
	}

	r = cli(t, "", "call", "-redis", raddr, "Calc.Add", `{"A":2,"B":3}`)
	if r.code != 0 || r.stdout != "5\n" {
		t.Errorf("call -redis:\n%v\nwant 5", r)
	}
	r = cli(t, "", "call", "-redis", raddr, "Nope.Add", `{}`)
	if r.code != 1 || !strings.Contains(r.stderr, "no instances") {
		t.Errorf("call -redis Nope.Add:\n%v\nwant exit 1, no instances", r)
	}
}

func TestWatch(t *testing.T) {
	f := newFleet(t)
	a1, _ := f.serve(t, registry.Instance{})

	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "watch", "-redis", f.redis.Addr(), "Calc")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	expect := func(re string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("watch ended before printing %q; stderr:\n%s", re, stderr.String())
				}
				if regexp.MustCompile(re).MatchString(l) {
					return
				}
				t.Logf("watch printed %q", l)
			case <-ctx.Done():
				t.Fatalf("watch did not print %q within %v", re, defaultTestTimeout)
			}
		}
	}
	expect(`^\d\d:\d\d:\d\d\.\d{3} \+ ` + regexp.QuoteMeta(a1) + ` weight=0 meta=-$`)
	a2, stop2 := f.serve(t, registry.Instance{Weight: 2, Meta: map[string]string{"zone": "b"}})
	expect(`\+ ` + regexp.QuoteMeta(a2) + ` weight=2 meta=zone=b$`)
	stop2()
	expect(`- ` + regexp.QuoteMeta(a2) + `$`)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines { // drain until stdout closes
	}
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Errorf("watch after SIGINT: %v, want exit 0; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "watching Calc") {
		t.Errorf("watch stderr = %q, want the watching note", stderr.String())
	}
}
