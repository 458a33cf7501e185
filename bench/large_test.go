package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestLargeModesSmoke runs -hol and -throughput briefly through the real
// child-process path and checks that each produced sane figures.
func TestLargeModesSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("moves hundreds of MiB over loopback")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("hol", func(t *testing.T) {
		var out, errOut bytes.Buffer
		cfg := holConfig{pools: []int{1}, modes: []string{"echo", "download"}, every: 5 * time.Millisecond, duration: 300 * time.Millisecond}
		if err := runHOL(ctx, cfg, true, &out, &errOut); err != nil {
			t.Fatalf("runHOL error = %v; stderr:\n%s", err, errOut.String())
		}
		var modes []string
		dec := json.NewDecoder(&out)
		for dec.More() {
			var r holResult
			if err := dec.Decode(&r); err != nil {
				t.Fatalf("result line: %v", err)
			}
			modes = append(modes, r.Mode)
			if r.Pool != 1 || r.SmallCalls == 0 || r.IdleP50us <= 0 || r.SharedP50us <= 0 || r.PairedP50us <= 0 || r.SharedMaxus < r.SharedP99us {
				t.Errorf("hol result = %+v, want pool 1, small calls, positive latencies, max >= p99", r)
			}
		}
		if !slices.Equal(modes, []string{"echo", "download"}) {
			t.Errorf("hol loads measured = %v, want [echo download]", modes)
		}
	})

	t.Run("throughput", func(t *testing.T) {
		var out, errOut bytes.Buffer
		cfg := tputConfig{sizes: []int{1 << 20}, kinds: []string{"random"}, conc: []int{1}, duration: time.Second}
		if err := runThroughput(ctx, cfg, true, &out, &errOut); err != nil {
			t.Fatalf("runThroughput error = %v; stderr:\n%s", err, errOut.String())
		}
		var systems []string
		dec := json.NewDecoder(&out)
		for dec.More() {
			var r tputResult
			if err := dec.Decode(&r); err != nil {
				t.Fatal(err)
			}
			systems = append(systems, r.System)
			if r.Calls == 0 || r.MBps <= 0 || r.P50us <= 0 || r.Size != 1<<20 || r.Payload != "random" {
				t.Errorf("throughput result = %+v, want calls, MB/s and latency for a 1 MiB random body", r)
			}
			if r.System == "seedrpc" && r.VsRaw <= 0 {
				t.Errorf("seedrpc result has vs_raw = %v, want > 0", r.VsRaw)
			}
		}
		if !slices.Equal(systems, []string{"raw", "seedrpc", "seedrpc+s2"}) {
			t.Errorf("systems measured = %v, want [raw seedrpc seedrpc+s2]", systems)
		}
	})
}

func TestParseSizes(t *testing.T) {
	tests := []struct {
		give    string
		want    []int
		wantErr bool
	}{
		{give: "1MiB,8MiB", want: []int{1 << 20, 8 << 20}},
		{give: "512KiB", want: []int{512 << 10}},
		{give: "100", want: []int{100}},
		{give: "16MiB", wantErr: true},
		{give: "0", wantErr: true},
		{give: "xMiB", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseSizes(tt.give)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseSizes(%q) = %v, %v, want %v (error: %v)", tt.give, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestLargeBody(t *testing.T) {
	for _, kind := range []string{"random", "msgpack"} {
		b := largeBody(kind, 100000)
		if len(b) != 100000 {
			t.Errorf("largeBody(%s, 100000) has %d bytes", kind, len(b))
		}
	}
	if m := largeBody("msgpack", 1<<16); !strings.Contains(string(m), fillString) {
		t.Error("largeBody(msgpack) does not look like encoded BenchmarkMessages")
	}
}
