package prometheus_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	rpc "github.com/seedrpc/rpc"
	rpcprom "github.com/seedrpc/rpc/contrib/prometheus"
	"github.com/seedrpc/rpc/middleware"
)

// TestHandled makes real calls through a server and a client that both
// carry the metrics interceptors and compares the counters.
func TestHandled(t *testing.T) {
	sm, cm := rpcprom.NewServerMetrics(), rpcprom.NewClientMetrics()
	addr := startServer(t, newCalc(), rpc.WithServerInterceptor(sm.Interceptor()))
	cli := dial(t, addr, rpc.WithClientInterceptor(cm.Interceptor()))

	var sum int
	for i := range 3 {
		if err := cli.Call("Calc.Add", Args{i, 1}, &sum); err != nil {
			t.Fatalf("Call(Calc.Add) error = %v", err)
		}
	}
	tests := []struct {
		give    string
		wantErr func(error) bool
	}{
		{"Calc.Coded", func(err error) bool { var e *rpc.Error; return errors.As(err, &e) && e.Code == 7 }},
		{"Calc.Plain", func(err error) bool { var e rpc.ServerError; return errors.As(err, &e) }},
		{"Calc.Panic", func(err error) bool { return errors.Is(err, rpc.ErrInternal) }},
		{"Calc.Nope", func(err error) bool { return errors.Is(err, rpc.ErrNoMethod) }},
	}
	for _, tt := range tests {
		if err := cli.Call(tt.give, Args{1, 2}, &sum); !tt.wantErr(err) {
			t.Errorf("Call(%q) error = %v, want the matching error", tt.give, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := cli.CallContext(ctx, "Calc.Sleep", Args{}, &sum); !errors.Is(err, rpc.ErrTimeout) {
		t.Errorf("CallContext(Calc.Sleep) error = %v, want ErrTimeout", err)
	}
	if err := cli.Oneway("Calc.Add", Args{1, 1}); err != nil {
		t.Fatalf("Oneway(Calc.Add) error = %v", err)
	}
	// The server records a call once its handler returned, which may be
	// after the client saw the reply (or, for a oneway, wrote it). The
	// handler of the timed-out call sees its deadline pass or the client's
	// cancel, whichever comes first.
	sleepCode := ""
	waitFor(t, "the server to record the oneway and the timed-out call", func() bool {
		switch {
		case handled(t, sm, "server", "Calc", "Sleep", "Timeout") == 1:
			sleepCode = "Timeout"
		case handled(t, sm, "server", "Calc", "Sleep", "Canceled") == 1:
			sleepCode = "Canceled"
		}
		return handled(t, sm, "server", "Calc", "Add", "OK") == 4 && sleepCode != ""
	})

	serverWant := `
# HELP seedrpc_server_handled_total Calls completed by the server, by service, method and outcome code.
# TYPE seedrpc_server_handled_total counter
seedrpc_server_handled_total{code="Error",method="Coded",service="Calc"} 1
seedrpc_server_handled_total{code="Internal",method="Panic",service="Calc"} 1
seedrpc_server_handled_total{code="OK",method="Add",service="Calc"} 4
seedrpc_server_handled_total{code="ServerError",method="Plain",service="Calc"} 1
seedrpc_server_handled_total{code="` + sleepCode + `",method="Sleep",service="Calc"} 1
# HELP seedrpc_server_in_flight Calls the server is handling now.
# TYPE seedrpc_server_in_flight gauge
seedrpc_server_in_flight 0
`
	if err := testutil.CollectAndCompare(sm, strings.NewReader(serverWant), "seedrpc_server_handled_total", "seedrpc_server_in_flight"); err != nil {
		t.Errorf("server metrics:\n%v", err)
	}
	const clientWant = `
# HELP seedrpc_client_handled_total Calls completed by the client, by service, method and outcome code.
# TYPE seedrpc_client_handled_total counter
seedrpc_client_handled_total{code="Error",method="Coded",service="Calc"} 1
seedrpc_client_handled_total{code="Internal",method="Panic",service="Calc"} 1
seedrpc_client_handled_total{code="NoMethod",method="Nope",service="Calc"} 1
seedrpc_client_handled_total{code="OK",method="Add",service="Calc"} 4
seedrpc_client_handled_total{code="ServerError",method="Plain",service="Calc"} 1
seedrpc_client_handled_total{code="Timeout",method="Sleep",service="Calc"} 1
# HELP seedrpc_client_in_flight Calls the client is handling now.
# TYPE seedrpc_client_in_flight gauge
seedrpc_client_in_flight 0
`
	if err := testutil.CollectAndCompare(cm, strings.NewReader(clientWant), "seedrpc_client_handled_total", "seedrpc_client_in_flight"); err != nil {
		t.Errorf("client metrics:\n%v", err)
	}

	// One histogram series per method, each call observed once.
	sfams := gather(t, sm)
	if m := find(sfams, "seedrpc_server_handling_seconds", "method=Add,service=Calc"); m == nil || m.GetHistogram().GetSampleCount() != 4 {
		t.Errorf("seedrpc_server_handling_seconds{Calc,Add} = %v, want 4 samples", m)
	}
	if n := testutil.CollectAndCount(sm, "seedrpc_server_handling_seconds"); n != 5 {
		t.Errorf("seedrpc_server_handling_seconds has %d series, want 5 (one per method called)", n)
	}
	cfams := gather(t, cm)
	m := find(cfams, "seedrpc_client_handling_seconds", "method=Sleep,service=Calc")
	if m == nil || m.GetHistogram().GetSampleCount() != 1 {
		t.Fatalf("seedrpc_client_handling_seconds{Calc,Sleep} = %v, want 1 sample", m)
	}
	// The timed-out call waited its 20ms: its observation is at least that.
	if got := m.GetHistogram().GetSampleSum(); got < 0.02 || got > testTimeout.Seconds() {
		t.Errorf("seedrpc_client_handling_seconds{Calc,Sleep} sum = %v, want >= 0.02", got)
	}
	if n := testutil.CollectAndCount(cm, "seedrpc_client_handling_seconds"); n != 6 {
		t.Errorf("seedrpc_client_handling_seconds has %d series, want 6 (one per method called)", n)
	}
}

// TestInFlight holds a call inside the handler and reads both gauges.
func TestInFlight(t *testing.T) {
	sm, cm := rpcprom.NewServerMetrics(), rpcprom.NewClientMetrics()
	calc := newCalc()
	addr := startServer(t, calc, rpc.WithServerInterceptor(sm.Interceptor()))
	cli := dial(t, addr, rpc.WithClientInterceptor(cm.Interceptor()))

	var sum int
	call := cli.Go("Calc.Block", Args{}, &sum, nil)
	select {
	case <-calc.entered:
	case <-time.After(testTimeout):
		t.Fatal("Calc.Block did not start")
	}
	if got := gather(t, sm)["seedrpc_server_in_flight"].GetMetric()[0].GetGauge().GetValue(); got != 1 {
		t.Errorf("seedrpc_server_in_flight during a call = %v, want 1", got)
	}
	if got := gather(t, cm)["seedrpc_client_in_flight"].GetMetric()[0].GetGauge().GetValue(); got != 1 {
		t.Errorf("seedrpc_client_in_flight during a call = %v, want 1", got)
	}
	close(calc.release)
	select {
	case <-call.Done:
	case <-time.After(testTimeout):
		t.Fatal("Calc.Block did not return")
	}
	if call.Error != nil {
		t.Fatalf("Go(Calc.Block) error = %v", call.Error)
	}
	waitFor(t, "the server's in-flight gauge to drop", func() bool {
		return gather(t, sm)["seedrpc_server_in_flight"].GetMetric()[0].GetGauge().GetValue() == 0
	})
	if got := gather(t, cm)["seedrpc_client_in_flight"].GetMetric()[0].GetGauge().GetValue(); got != 0 {
		t.Errorf("seedrpc_client_in_flight after the call = %v, want 0", got)
	}
}

// TestAsyncModes checks that Go and Callback calls are counted once each.
func TestAsyncModes(t *testing.T) {
	cm := rpcprom.NewClientMetrics()
	addr := startServer(t, newCalc())
	cli := dial(t, addr, rpc.WithClientInterceptor(cm.Interceptor()))

	var a, b int
	call := cli.Go("Calc.Add", Args{1, 2}, &a, nil)
	done := make(chan error, 1)
	cli.Callback("Calc.Plain", Args{1, 2}, &b, func(c *rpc.Call) { done <- c.Error })
	select {
	case <-call.Done:
	case <-time.After(testTimeout):
		t.Fatal("Go(Calc.Add) did not finish")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("Callback(Calc.Plain) error = nil, want a ServerError")
		}
	case <-time.After(testTimeout):
		t.Fatal("Callback(Calc.Plain) did not run")
	}
	// The Callback's interceptor finishes before the callback runs, the
	// Go's before Done receives.
	if got := handled(t, cm, "client", "Calc", "Add", "OK"); got != 1 {
		t.Errorf("client handled{Calc,Add,OK} = %v, want 1", got)
	}
	if got := handled(t, cm, "client", "Calc", "Plain", "ServerError"); got != 1 {
		t.Errorf("client handled{Calc,Plain,ServerError} = %v, want 1", got)
	}
}

// TestRefusedCallsCounted installs the metrics outside an auth interceptor:
// the refused call is counted with its code and never reaches the method.
func TestRefusedCallsCounted(t *testing.T) {
	sm := rpcprom.NewServerMetrics()
	auth := middleware.TokenAuth("authorization", middleware.StaticTokens("secret"))
	addr := startServer(t, newCalc(), rpc.WithServerInterceptor(sm.Interceptor(), auth))
	cli := dial(t, addr)
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); !errors.Is(err, rpc.ErrUnauthenticated) {
		t.Fatalf("Call without a token error = %v, want ErrUnauthenticated", err)
	}
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum, rpc.WithHeader("authorization", "secret")); err != nil {
		t.Fatalf("Call with a token error = %v", err)
	}
	waitFor(t, "both calls recorded", func() bool {
		return handled(t, sm, "server", "Calc", "Add", "OK") == 1 && handled(t, sm, "server", "Calc", "Add", "Unauthenticated") == 1
	})
}

// TestClientUnavailable calls a server that has gone away.
func TestClientUnavailable(t *testing.T) {
	cm := rpcprom.NewClientMetrics()
	srv := rpc.NewServer()
	if err := srv.Register(newCalc()); err != nil {
		t.Fatal(err)
	}
	lis := listen(t)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	cli := dial(t, lis.Addr().String(), rpc.WithClientInterceptor(cm.Interceptor()))
	srv.Close()
	<-errc
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum, rpc.WithTimeout(time.Second)); err == nil {
		t.Fatal("Call to a closed server succeeded")
	}
	if got := handled(t, cm, "client", "Calc", "Add", "Unavailable"); got != 1 {
		t.Errorf("client handled{Calc,Add,Unavailable} = %v, want 1 (families: %v)", got, gather(t, cm))
	}
}

// TestWithBuckets checks that custom buckets reach the histogram, sorted
// and without duplicates.
func TestWithBuckets(t *testing.T) {
	sm := rpcprom.NewServerMetrics(rpcprom.WithBuckets(1, 0.5, 1, 0.001))
	addr := startServer(t, newCalc(), rpc.WithServerInterceptor(sm.Interceptor()))
	cli := dial(t, addr)
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the call recorded", func() bool { return handled(t, sm, "server", "Calc", "Add", "OK") == 1 })
	m := find(gather(t, sm), "seedrpc_server_handling_seconds", "method=Add,service=Calc")
	var got []float64
	for _, b := range m.GetHistogram().GetBucket() {
		got = append(got, b.GetUpperBound())
	}
	if want := []float64{0.001, 0.5, 1}; !slices.Equal(got, want) {
		t.Errorf("buckets = %v, want %v", got, want)
	}

	def := rpcprom.NewServerMetrics(rpcprom.WithBuckets())
	def.Interceptor()(context.Background(), &rpc.Request{ServiceMethod: "Calc.Add"}, func(context.Context, *rpc.Request) (any, error) { return nil, nil })
	m = find(gather(t, def), "seedrpc_server_handling_seconds", "method=Add,service=Calc")
	if n := len(m.GetHistogram().GetBucket()); n != len(rpcprom.DefaultBuckets) {
		t.Errorf("WithBuckets() gave %d buckets, want the %d default ones", n, len(rpcprom.DefaultBuckets))
	}
}
