package prometheus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	rpc "github.com/seedrpc/rpc"
	rpcprom "github.com/seedrpc/rpc/contrib/prometheus"
	"github.com/seedrpc/rpc/registry"
)

// TestClientStatsCollector exports the pool and discovery state of a
// client that found its server in a registry.
func TestClientStatsCollector(t *testing.T) {
	mem := registry.NewMemory()
	t.Cleanup(func() { mem.Close() })
	addr := startServer(t, newCalc(), rpc.WithRegistry(mem))
	waitFor(t, "the server to register", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		insts, err := mem.Lookup(ctx, "Calc")
		return err == nil && len(insts) == 1
	})
	cli, err := rpc.NewClient(rpc.WithRegistry(mem))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	col := rpcprom.NewClientStatsCollector(cli)

	if n := testutil.CollectAndCount(col); n != 0 {
		t.Errorf("a client that made no call exports %d series, want 0", n)
	}
	start := time.Now()
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil {
		t.Fatalf("Call(Calc.Add) error = %v", err)
	}
	want := fmt.Sprintf(`
# HELP seedrpc_client_connections Open connections of the client, by address.
# TYPE seedrpc_client_connections gauge
seedrpc_client_connections{address=%q} 1
# HELP seedrpc_client_registry_instances Instances the client routes to, by service, from its registry.
# TYPE seedrpc_client_registry_instances gauge
seedrpc_client_registry_instances{service="Calc"} 1
`, addr)
	if err := testutil.CollectAndCompare(col, strings.NewReader(want), "seedrpc_client_connections", "seedrpc_client_registry_instances"); err != nil {
		t.Errorf("pool and discovery metrics:\n%v", err)
	}
	m := find(gather(t, col), "seedrpc_client_registry_sync_age_seconds", "service=Calc")
	if m == nil {
		t.Fatal("no seedrpc_client_registry_sync_age_seconds{service=Calc}")
	}
	if age := m.GetGauge().GetValue(); age < 0 || age > time.Since(start).Seconds() {
		t.Errorf("sync age = %vs, want between 0 and %vs (the list came after the first call began)", age, time.Since(start).Seconds())
	}

	// The client closed: its connections are gone.
	cli.Close()
	m = find(gather(t, col), "seedrpc_client_connections", "address="+addr)
	if m == nil || m.GetGauge().GetValue() != 0 {
		t.Errorf("seedrpc_client_connections after Close = %v, want 0", m)
	}
}
