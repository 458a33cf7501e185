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
	out := targets15(t, results, nil,
		"FAIL   1 callers: seedrpc p50 / rawtcp's = 1.60 (want <= 1.50)",
		"PASS   1 callers: seedrpc calls/s / rawtcp's = 0.60 (want >= 0.60)",
		"FAIL 256 callers: seedrpc calls/s / rawmux's = 0.80 (want >= 0.90)",
		"PASS 256 callers: seedrpc server CPU µs/call = 5.50 (want <= 6.00)",
	)
	if strings.Contains(out, " 16 callers") {
		t.Errorf("printTargets15 printed a target for a concurrency not run:\n%s", out)
	}
}

// TestPrintTargets15Rounds: with several rounds, a ratio is the median of
// the ratios within each round, not the ratio of two median rows that may
// come from rounds under different loads.
func TestPrintTargets15Rounds(t *testing.T) {
	all := []result{
		{round: 1, System: "seedrpc", Concurrency: 1, CallsPerSec: 20000, P50us: 40},
		{round: 2, System: "seedrpc", Concurrency: 1, CallsPerSec: 14000, P50us: 45},
		{round: 3, System: "seedrpc", Concurrency: 1, CallsPerSec: 15000, P50us: 50},
		{round: 1, System: "rawtcp", Concurrency: 1, CallsPerSec: 25000, P50us: 30},
		{round: 2, System: "rawtcp", Concurrency: 1, CallsPerSec: 20000, P50us: 35},
		{round: 3, System: "rawtcp", Concurrency: 1, CallsPerSec: 30000, P50us: 25},
	}
	// The median rows: seedrpc's round 3 and rawtcp's round 1, whose
	// ratios (0.60 and 1.67) mix two loads.
	results := []result{median(all[:3]), median(all[3:])}
	targets15(t, results, all,
		"PASS   1 callers: seedrpc calls/s / rawtcp's = 0.70 (want >= 0.60), median of 3 rounds (0.50–0.80)",
		"PASS   1 callers: seedrpc p50 / rawtcp's = 1.33 (want <= 1.50), median of 3 rounds (1.29–2.00)",
	)
}

// targets15 returns what printTargets15 prints for results (and all, the
// rounds' results), checking that it holds every line of want.
func targets15(t *testing.T, results, all []result, want ...string) string {
	t.Helper()
	var b strings.Builder
	printTargets15(&b, results, all)
	out := b.String()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("printTargets15 output lacks %q:\n%s", w, out)
		}
	}
	return out
}
