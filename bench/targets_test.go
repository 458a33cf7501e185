package main

import (
	"strings"
	"testing"
)

func TestPrintTargets15(t *testing.T) {
	results := []result{
		{System: "seedrpc", Concurrency: 1, CallsPerSec: 18000, P50us: 40},
		{System: "rawtcp", Concurrency: 1, CallsPerSec: 30000, P50us: 25},
		{System: "seedrpc", Concurrency: 256, CallsPerSec: 80000, ServerCPUusPerCall: 5.5},
		{System: "rawmux", Concurrency: 256, CallsPerSec: 100000},
	}
	var b strings.Builder
	printTargets15(&b, results)
	out := b.String()
	for _, want := range []string{
		"FAIL   1 callers: seedrpc p50 / rawtcp's = 1.60 (want <= 1.50)",
		"PASS   1 callers: seedrpc calls/s / rawtcp's = 0.60 (want >= 0.60)",
		"FAIL 256 callers: seedrpc calls/s / rawmux's = 0.80 (want >= 0.90)",
		"PASS 256 callers: seedrpc server CPU µs/call = 5.50 (want <= 6.00)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("printTargets15 output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, " 16 callers") {
		t.Errorf("printTargets15 printed a target for a concurrency not run:\n%s", out)
	}
}
