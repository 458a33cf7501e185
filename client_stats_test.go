package rpc

import (
	"testing"
	"time"

	"github.com/seedrpc/rpc/registry"
)

func TestClientStatsStatic(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	var sum int
	if err := cli.Call("Calc.Add", Args{A: 1, B: 2}, &sum); err != nil {
		t.Fatalf("Call(Calc.Add) error = %v", err)
	}
	st := cli.Stats()
	if len(st.Conns) != 1 {
		t.Fatalf("Stats().Conns = %v, want one address", st.Conns)
	}
	for addr, n := range st.Conns {
		if n != 1 {
			t.Errorf("Stats().Conns[%s] = %d, want 1", addr, n)
		}
	}
	if len(st.Instances) != 0 || len(st.Synced) != 0 {
		t.Errorf("Stats() of a Dial client: Instances = %v, Synced = %v, want none", st.Instances, st.Synced)
	}
	cli.Close()
	if st := cli.Stats(); st.Conns[firstKey(st.Conns)] != 0 {
		t.Errorf("Stats().Conns after Close = %v, want 0 connections", st.Conns)
	}
}

func TestClientStatsDiscovery(t *testing.T) {
	mem := registry.NewMemory(registry.WithTTL(fleetTTL), registry.WithHeartbeat(fleetHeartbeat))
	t.Cleanup(func() { mem.Close() })
	a := startFleetServer(t, mem, "Calc", 0)
	cli := newFleetClient(t, mem)
	before := time.Now()
	waitRouted(t, cli, "Calc", a.addr)

	st := cli.Stats()
	if got := st.Instances["Calc"]; got != 1 {
		t.Errorf("Stats().Instances[Calc] = %d, want 1", got)
	}
	if got := st.Conns[a.addr]; got != 1 {
		t.Errorf("Stats().Conns[%s] = %d, want 1 (all: %v)", a.addr, got, st.Conns)
	}
	first := st.Synced["Calc"]
	if first.IsZero() || first.After(time.Now()) {
		t.Fatalf("Stats().Synced[Calc] = %v, want a time before now", first)
	}

	// A second instance: the watch delivers a new list, and Synced moves.
	b := startFleetServer(t, mem, "Calc", 0)
	waitRouted(t, cli, "Calc", a.addr, b.addr)
	st = cli.Stats()
	if got := st.Instances["Calc"]; got != 2 {
		t.Errorf("Stats().Instances[Calc] after a second server = %d, want 2", got)
	}
	if got := st.Synced["Calc"]; !got.After(first) || got.Before(before) {
		t.Errorf("Stats().Synced[Calc] after a change = %v, want after %v", got, first)
	}
}

func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}
