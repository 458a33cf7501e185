package main

import (
	"fmt"
	"io"
)

// target is one of issue 15's latency and throughput targets: a ratio of
// seedrpc's figure to a peer's (or, with no peer, seedrpc's figure itself)
// at one concurrency, bounded from below (min) or above (max).
type target struct {
	callers  int
	peer     string // "" for an absolute figure
	what     string
	min, max float64 // 0: no bound on that side
	get      func(s, p result) float64
}

// issue15Targets are checked by printTargets15.
var issue15Targets = []target{
	{1, "rawtcp", "p50", 0, 1.5, func(s, p result) float64 { return s.P50us / p.P50us }},
	{1, "rawtcp", "calls/s", 0.60, 0, func(s, p result) float64 { return s.CallsPerSec / p.CallsPerSec }},
	{16, "rawmux", "calls/s", 0.80, 0, func(s, p result) float64 { return s.CallsPerSec / p.CallsPerSec }},
	{256, "rawmux", "calls/s", 0.90, 0, func(s, p result) float64 { return s.CallsPerSec / p.CallsPerSec }},
	{256, "", "server CPU µs/call", 0, 6, func(s, _ result) float64 { return s.ServerCPUusPerCall }},
}

// printTargets15 prints, per concurrency measured, issue 15's targets with
// the ratio measured in this run and PASS or FAIL; targets whose peer or
// concurrency was not run are left out.
func printTargets15(w io.Writer, results []result) {
	var lines []string
	for _, t := range issue15Targets {
		s, ok := findResult(results, "seedrpc", t.callers)
		if !ok {
			continue
		}
		p := result{}
		if t.peer != "" {
			if p, ok = findResult(results, t.peer, t.callers); !ok {
				continue
			}
		}
		v := t.get(s, p)
		pass := (t.min == 0 || v >= t.min) && (t.max == 0 || v <= t.max)
		mark := "FAIL"
		if pass {
			mark = "PASS"
		}
		name := "seedrpc " + t.what
		if t.peer != "" {
			name += " / " + t.peer + "'s"
		}
		bound := fmt.Sprintf(">= %.2f", t.min)
		if t.max != 0 {
			bound = fmt.Sprintf("<= %.2f", t.max)
		}
		lines = append(lines, fmt.Sprintf("%s %3d callers: %s = %.2f (want %s)", mark, t.callers, name, v, bound))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "targets (issue 15, ratios within this run):")
	for _, l := range lines {
		fmt.Fprintln(w, "  "+l)
	}
}
