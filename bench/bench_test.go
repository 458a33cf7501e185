package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain doubles as the server child: the harness re-executes the test
// binary with -serve, exactly as it re-executes the bench binary.
func TestMain(m *testing.M) {
	registerGRPCCodec()
	if len(os.Args) > 1 && os.Args[1] == "-serve" {
		if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestHarnessSmoke runs every system briefly through the real child-process
// path and checks that each produced a sane result.
func TestHarnessSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, sys := range append(systems(), extraSystems()...) {
		t.Run(sys.name, func(t *testing.T) {
			modes := []codecMode{codecNone}
			if sys.name == "rawtcp" || sys.name == "rawmux" {
				modes = append(modes, codecV5, codecSeedrpc) // -rawcodec changes only the raw systems
			}
			for _, rawCodec := range modes {
				opts := options{
					runConfig:   runConfig{warmup: 20 * time.Millisecond, duration: 200 * time.Millisecond, conns: 2, rawCodec: rawCodec},
					concurrency: []int{2},
					systems:     []system{sys},
					json:        true,
				}
				var out, errOut bytes.Buffer
				if err := runAll(ctx, opts, &out, &errOut); err != nil {
					t.Fatalf("runAll(%s, rawcodec=%v) error = %v; stderr:\n%s", sys.name, rawCodec, err, errOut.String())
				}
				var r result
				if err := json.Unmarshal(out.Bytes(), &r); err != nil {
					t.Fatalf("result line %q: %v", out.String(), err)
				}
				if r.System != sys.name || r.Concurrency != 2 || r.Calls == 0 || r.CallsPerSec <= 0 || r.P50us <= 0 || r.P999us < r.P50us || r.CPUusPerCall <= 0 {
					t.Errorf("result = %+v, want system %s, concurrency 2, calls > 0, sane latency and CPU", r, sys.name)
				}
			}
		})
	}
}

func TestJSONFields(t *testing.T) {
	b, err := json.Marshal(result{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"system", "concurrency", "calls_per_sec", "p50_us", "p99_us", "p999_us", "allocs_per_call", "bytes_per_call", "cpu_us_per_call"} {
		if !strings.Contains(string(b), `"`+f+`":`) {
			t.Errorf("json.Marshal(result{}) = %s, want field %q", b, f)
		}
	}
}

func TestMessageSizes(t *testing.T) {
	b, err := encodeFilled()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 896 { // BENCHMARK_MESSAGE.md: msgpack, structs as maps
		t.Errorf("len(msgpack(newMessage())) = %d, want 896", len(b))
	}
	if len(fillString) != 54 {
		t.Errorf("len(fillString) = %d, want 54", len(fillString))
	}
	var m BenchmarkMessage
	if err := newStructCodec(codecV5).decode(b, &m); err != nil {
		t.Fatal(err)
	}
	if err := checkReply(&m); err != nil {
		t.Errorf("checkReply(round trip) = %v, want nil", err)
	}
	m.Field131 = 1
	if err := checkReply(&m); err == nil {
		t.Error("checkReply(Field131 = 1) = nil, want errMismatch")
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		give float64
		want time.Duration
	}{
		{0.5, 5000 * time.Microsecond},
		{0.99, 9900 * time.Microsecond},
		{0.999, 9990 * time.Microsecond},
	}
	for _, tt := range tests {
		got := h.quantile(tt.give)
		if diff := float64(got-tt.want) / float64(tt.want); diff > 0.03 || diff < -0.03 {
			t.Errorf("quantile(%v) = %v, want %v ±3%%", tt.give, got, tt.want)
		}
	}
	for _, v := range []uint64{0, 1, 63, 64, 65, 1000, 1 << 20, 1<<40 - 1, 1 << 50} {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d, out of range", v, i)
		}
		if got := histValue(i); v < 1<<40 && (float64(got) > float64(v)*1.04+1 || float64(got) < float64(v)*0.96-1) {
			t.Errorf("histValue(histIndex(%d)) = %d, want within 4%%", v, got)
		}
	}
}

func TestRenderSVG(t *testing.T) {
	svg := renderSVG([]result{
		{System: "a", Concurrency: 1, CallsPerSec: 10000},
		{System: "a", Concurrency: 16, CallsPerSec: 50000},
		{System: "b<", Concurrency: 1, CallsPerSec: 5000},
		{System: "b<", Concurrency: 16, CallsPerSec: 20000},
	}, "test")
	for _, want := range []string{"<svg", "</svg>", "<polyline", "b&lt;", ">16<", "50k"} {
		if !strings.Contains(svg, want) {
			t.Errorf("renderSVG() lacks %q", want)
		}
	}
}

// BenchmarkCodec is the codec share of the per-call budget: one encode and
// one decode of the filled BenchmarkMessage (a call does this twice, once
// per direction).
func BenchmarkCodec(b *testing.B) {
	for _, tt := range []struct {
		name  string
		array bool
	}{{"msgpack-map", false}, {"msgpack-array", true}} {
		b.Run(tt.name, func(b *testing.B) {
			c := newStructCodec(codecV5)
			c.enc.UseArrayEncodedStructs(tt.array)
			req := newMessage()
			var buf []byte
			var reply BenchmarkMessage
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, err = c.appendEncode(buf[:0], req); err != nil {
					b.Fatal(err)
				}
				reply = BenchmarkMessage{}
				if err := c.decode(buf, &reply); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf)), "bytes/msg")
		})
	}
}
