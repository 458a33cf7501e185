package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/servetest"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	rpc "github.com/seedrpc/rpc"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait of these tests.
const testTimeout = 10 * time.Second

type Args struct{ A, B int }

// Calc is the service the tests call; Block waits until its release
// channel is closed.
type Calc struct {
	entered chan struct{} // receives when Block starts
	release chan struct{}
}

func (c *Calc) Add(args Args, reply *int) error { *reply = args.A + args.B; return nil }

func (c *Calc) Coded(args Args, reply *int) error { return rpc.Errorf(7, "coded %d", args.A) }

func (c *Calc) Plain(args Args, reply *int) error { return errors.New("plain failure") }

func (c *Calc) Panic(args Args, reply *int) error { panic("boom") }

func (c *Calc) Sleep(ctx context.Context, args Args, reply *int) error {
	<-ctx.Done()
	return ctx.Err()
}

func (c *Calc) Block(ctx context.Context, args Args, reply *int) error {
	c.entered <- struct{}{}
	select {
	case <-c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startServer serves a Calc with opts on a loopback port until the test
// ends and returns its address.
func startServer(t *testing.T, calc *Calc, opts ...rpc.ServerOption) string {
	t.Helper()
	srv := rpc.NewServer(opts...)
	if err := srv.Register(calc); err != nil {
		t.Fatal(err)
	}
	return servetest.Serve(t, srv)
}

func newCalc() *Calc {
	return &Calc{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

// dial returns a client of addr, closed when the test ends.
func dial(t *testing.T, addr string, opts ...rpc.ClientOption) *rpc.Client {
	t.Helper()
	cli, err := rpc.Dial("tcp", addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// gather collects c's metrics into families by name.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("Register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// find returns the metric of family name whose labels are labels
// ("k=v,k=v"), or nil.
func find(fams map[string]*dto.MetricFamily, name, labels string) *dto.Metric {
	mf := fams[name]
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		var kv []string
		for _, lp := range m.GetLabel() {
			kv = append(kv, lp.GetName()+"="+lp.GetValue())
		}
		if strings.Join(kv, ",") == labels {
			return m
		}
	}
	return nil
}

// waitFor polls cond until it holds, failing the test after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", testTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// handled reads a handled_total counter, -1 when the series is missing.
func handled(t *testing.T, c prometheus.Collector, side, service, method, code string) float64 {
	t.Helper()
	m := find(gather(t, c), "seedrpc_"+side+"_handled_total", fmt.Sprintf("code=%s,method=%s,service=%s", code, method, service))
	if m == nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// listen returns a loopback listener, closed when the test ends.
func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	return lis
}
