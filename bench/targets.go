package main

import (
	"fmt"
	"io"
	"slices"
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
// concurrency was not run are left out. With several rounds (all holds
// every round's results), a ratio is the median of the ratios within each
// round, where seedrpc and its peer ran minutes apart at most, with their
// range; the machine's load moves both, and a median round of each,
// picked separately, could come from different loads.
func printTargets15(w io.Writer, results, all []result) {
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
		v, spread := t.get(s, p), ""
		if vs := perRound(t, all); len(vs) > 1 {
			slices.Sort(vs)
			v = vs[(len(vs)-1)/2]
			spread = fmt.Sprintf(", median of %d rounds (%.2f–%.2f)", len(vs), vs[0], vs[len(vs)-1])
		}
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
		lines = append(lines, fmt.Sprintf("%s %3d callers: %s = %.2f (want %s)%s", mark, t.callers, name, v, bound, spread))
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

// perRound returns t's figure in every round where seedrpc and t's peer
// both have a result at t's concurrency.
func perRound(t target, all []result) []float64 {
	var vs []float64
	for _, s := range all {
		if s.System != "seedrpc" || s.Concurrency != t.callers || s.round == 0 {
			continue
		}
		if t.peer == "" {
			vs = append(vs, t.get(s, result{}))
			continue
		}
		for _, p := range all {
			if p.System == t.peer && p.Concurrency == t.callers && p.round == s.round {
				vs = append(vs, t.get(s, p))
				break
			}
		}
	}
	return vs
}
