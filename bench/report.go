package main

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
)

// machineLine describes the machine and the run parameters in one line.
func machineLine(opts options) string {
	return fmt.Sprintf("%s %s/%s, %d CPUs (%s), GOMAXPROCS %d, load %s; warmup %v, duration %v, conns %d, rounds %d, rawcodec %v",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel(),
		runtime.GOMAXPROCS(0), loadAvg(), opts.warmup, opts.duration, opts.conns, max(opts.rounds, 1), opts.rawCodec)
}

// loadAvg is the 1-minute load average at start ("?" off Linux): anything
// well above 0 means other work competed with the run.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

const rowFormat = "%-15s %7s %10s %9s %9s %9s %11s %9s %9s %15s %14s %17s %13s %13s\n"

func printHeader(w io.Writer) {
	fmt.Fprintf(w, rowFormat, "system", "callers", "calls/s", "p50 µs", "p99 µs", "p99.9 µs",
		"allocs/call", "B/call", "CPU µs", "allocs cli+srv", "g-wake cli+srv", "r/w cli, srv", "ctxsw cli+srv", "GC/10k cli+srv")
}

func printRow(w io.Writer, r result) {
	fmt.Fprintf(w, rowFormat, r.System, fmt.Sprint(r.Concurrency),
		fmt.Sprintf("%.0f", r.CallsPerSec),
		fmt.Sprintf("%.1f", r.P50us), fmt.Sprintf("%.1f", r.P99us), fmt.Sprintf("%.1f", r.P999us),
		fmt.Sprintf("%.1f", r.AllocsPerCall), fmt.Sprintf("%.0f", r.BytesPerCall),
		fmt.Sprintf("%.1f", r.CPUusPerCall),
		fmt.Sprintf("%.1f+%.1f", r.ClientAllocsPerCall, r.ServerAllocsPerCall),
		fmt.Sprintf("%.2f+%.2f", r.ClientWakeupsPerCall, r.ServerWakeupsPerCall),
		fmt.Sprintf("%.2f/%.2f, %.2f/%.2f", r.ClientReadsPerCall, r.ClientWritesPerCall, r.ServerReadsPerCall, r.ServerWritesPerCall),
		fmt.Sprintf("%.2f+%.2f", r.ClientCtxSwPerCall, r.ServerCtxSwPerCall),
		fmt.Sprintf("%.1f+%.1f", r.ClientGCsPer10k, r.ServerGCsPer10k))
}

func printLegend(w io.Writer, opts options) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "allocs, bytes and CPU are per call, client and server processes together;")
	fmt.Fprintln(w, "latency is per call as seen by the caller (includes queueing behind other callers);")
	fmt.Fprintln(w, "g-wake counts goroutines run again after they parked or yielded (the runtime samples 1 in 8), r/w read and")
	fmt.Fprintln(w, "write system calls, ctxsw the operating system's context switches of the threads, per call and process;")
	fmt.Fprintln(w, "GC/10k counts each process's garbage collections per 10,000 calls.")
	for _, s := range opts.systems {
		d := s.describe
		if opts.rawCodec.on() && (s.name == "rawtcp" || s.name == "rawmux") {
			d += "; -rawcodec=" + string(opts.rawCodec) + ": msgpack decode+encode on both sides"
		} else if s.name == "rawtcp" || s.name == "rawmux" {
			d += "; echoes pre-encoded bytes, no codec"
		}
		fmt.Fprintf(w, "  %-15s %s\n", s.name, d)
	}
}

// renderSVG draws calls/s against concurrency (log x axis), one line per
// system, with a legend.
func renderSVG(results []result, subtitle string) string {
	const (
		width, height            = 860, 480
		left, right, top, bottom = 80, 200, 60, 60
		plotW, plotH             = width - left - right, height - top - bottom
	)
	palette := []string{"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#7f7f7f", "#ff7f0e", "#17becf", "#8c564b"}

	var names []string
	var xs []int
	maxY := 0.0
	for _, r := range results {
		if !slices.Contains(names, r.System) {
			names = append(names, r.System)
		}
		if !slices.Contains(xs, r.Concurrency) {
			xs = append(xs, r.Concurrency)
		}
		maxY = max(maxY, r.CallsPerSec)
	}
	slices.Sort(xs)
	lo, hi := math.Log10(float64(xs[0])), math.Log10(float64(xs[len(xs)-1]))
	if hi-lo < 0.5 {
		lo, hi = lo-0.25, hi+0.25
	}
	pad := (hi - lo) * 0.04
	lo, hi = lo-pad, hi+pad
	step := niceStep(maxY / 5)
	yMax := math.Ceil(maxY/step) * step
	if yMax == 0 {
		yMax, step = 1, 1
	}
	px := func(c int) float64 { return left + (math.Log10(float64(c))-lo)/(hi-lo)*plotW }
	py := func(v float64) float64 { return top + plotH - v/yMax*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="16" font-weight="bold">calls/s against concurrent callers (loopback, echo of BenchmarkMessage)</text>`+"\n", left)
	fmt.Fprintf(&b, `<text x="%d" y="42" font-size="10" fill="#555">%s</text>`+"\n", left, html.EscapeString(subtitle))
	// Grid and y labels.
	for v := 0.0; v <= yMax+step/2; v += step {
		y := py(v)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, y, left+plotW, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-8, y, shortNum(v))
	}
	// x ticks at every measured concurrency.
	for _, c := range xs {
		x := px(c)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>`+"\n", x, top, x, top+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x, top+plotH+18, c)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">concurrent callers (log scale)</text>`+"\n", left+plotW/2, height-14)
	fmt.Fprintf(&b, `<text x="18" y="%d" text-anchor="middle" transform="rotate(-90 18 %d)">calls/s</text>`+"\n", top+plotH/2, top+plotH/2)
	// One line per system.
	for i, name := range names {
		color := palette[i%len(palette)]
		var pts []string
		for _, r := range results {
			if r.System == name {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(r.Concurrency), py(r.CallsPerSec)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		for _, p := range pts {
			x, y, _ := strings.Cut(p, ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3.5" fill="%s"/>`+"\n", x, y, color)
		}
		ly := top + 10 + i*22
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", left+plotW+16, ly, left+plotW+40, ly, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", left+plotW+46, ly, html.EscapeString(name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// shortNum formats 150000 as "150k".
func shortNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

// findResult returns the result of system sys at c callers, if measured.
func findResult(results []result, sys string, c int) (result, bool) {
	for _, r := range results {
		if r.System == sys && r.Concurrency == c {
			return r, true
		}
	}
	return result{}, false
}

// printTargets checks the targets when the results hold seedrpc and
// the peer a target names; targets whose peer was not run are skipped.
func printTargets(w io.Writer, results []result) {
	var lines []string
	check := func(ok bool, format string, args ...any) {
		mark := "FAIL"
		if ok {
			mark = "ok  "
		}
		lines = append(lines, mark+" "+fmt.Sprintf(format, args...))
	}
	ratio := func(peer string, c int, want float64) {
		s, ok1 := findResult(results, "seedrpc", c)
		p, ok2 := findResult(results, peer, c)
		if ok1 && ok2 && p.CallsPerSec > 0 {
			r := s.CallsPerSec / p.CallsPerSec
			check(r >= want, "seedrpc/%s at %d callers = %.2f (want >= %.2f)", peer, c, r, want)
		}
	}
	for _, c := range []int{16, 256} {
		ratio("grpc-msgpack", c, 2)
		ratio("netrpc-gob", c, 1)
	}
	ratio("rawmux", 256, 0.4)
	for _, r := range results {
		if r.System == "seedrpc" {
			check(r.AllocsPerCall <= 20, "seedrpc allocs/call at %d callers = %.1f (want <= 20)", r.Concurrency, r.AllocsPerCall)
		}
	}
	if s, ok := findResult(results, "seedrpc", 1); ok {
		if p, ok := findResult(results, "netrpc-gob", 1); ok {
			check(s.P50us <= p.P50us, "seedrpc p50 at 1 caller = %.1f µs, netrpc-gob %.1f µs (want <=)", s.P50us, p.P50us)
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "targets (issue 5):")
	for _, l := range lines {
		fmt.Fprintln(w, "  "+l)
	}
}
