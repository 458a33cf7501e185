// Command bench measures seedrpc side by side with peer RPC stacks on
// loopback: the same BenchmarkMessage payload, an echo handler, the server of
// each system in a child process, every reply decoded (or, for the raw
// ceilings, compared byte for byte) and checked.
//
//	go run . -duration 3s -concurrency 1,16,256
//	go run . -json -duration 3s -concurrency 16,256 -systems seedrpc,netrpc-gob
//	go run . -svg ../docs/bench.svg
//	go run . -hol -duration 5s           # head-of-line blocking by 8 MiB echoes
//	go run . -throughput -duration 3s    # 1 MiB and 8 MiB echoes vs raw TCP
//	go run . -overload                     # goodput at 3× capacity: see overload.go
//	go run . regsim -h                     # the registry at fleet scale (regsim.go)
//
// See docs/BENCHMARKS.md for what each system does and does not do.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	registerGRPCCodec()
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// options are the parsed flags.
type options struct {
	runConfig
	concurrency []int
	systems     []system
	json        bool
	svg         string
	rounds      int
}

// run is main without the process: it parses args and either serves (child
// mode) or runs the benchmark.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "regsim" {
		return runRegsim(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 3*time.Second, "measured time per system and concurrency")
	warmup := fs.Duration("warmup", 300*time.Millisecond, "unmeasured warm-up before each measurement")
	conc := fs.String("concurrency", "1,16,256", "comma-separated numbers of concurrent callers")
	sysList := fs.String("systems", "all", "comma-separated systems: seedrpc, netrpc-gob, netrpc-msgpack, grpc-msgpack, rawtcp, rawmux; not in all: seedrpc-ic3, seedrpc-typed, seedrpc-json")
	conns := fs.Int("conns", 10, "client connections for seedrpc's pool, rawmux, net/rpc and grpc (rawtcp uses one per caller)")
	var rawCodec codecMode
	fs.Var(codecFlag{&rawCodec}, "rawcodec", "raw systems msgpack-decode/encode the struct on both sides instead of echoing pre-encoded bytes: with msgpack v5 as the peers (-rawcodec, =v5), or with seedrpc's codec (=seedrpc)")
	jsonOut := fs.Bool("json", false, "print one JSON object per result line instead of a table")
	rounds := fs.Int("rounds", 1, "repeat every measurement this many times and report the median (by calls/s)")
	profDir := fs.String("cpuprofile", "", "write CPU profiles of client and server for each measured window into this directory (skews the numbers)")
	traceOn := fs.Bool("trace", false, "with -cpuprofile: write execution traces (SYSTEM-cN-client.trace, ...-server.trace) instead of CPU profiles")
	svg := fs.String("svg", "", "write an SVG chart of calls/s against concurrency to this file")
	overload := fs.Bool("overload", false, "run the overload scenario instead: closed-loop capacity, then open loop at -overload-factor × capacity")
	olLimits := fs.String("overload-limits", "default,fixed=12,adaptive", "overload: comma-separated server configurations: default, adaptive, fixed=N (WithMaxCalls)")
	olModel := fs.String("overload-model", "sleep", "overload: the backend that sets capacity: sleep (slots of -overload-par held for -overload-work) or cpu (spin for -overload-work)")
	olWork := fs.Duration("overload-work", 10*time.Millisecond, "overload: work per call")
	olPar := fs.Int("overload-par", 8, "overload: slots of the sleep backend (capacity = par/work)")
	olFactor := fs.Float64("overload-factor", 3, "overload: offered load as a multiple of the capacity")
	olTimeout := fs.Duration("overload-timeout", 200*time.Millisecond, "overload: per-call timeout")
	serve := fs.String("serve", "", "internal: serve this system (child process mode)")
	addr := fs.String("addr", "127.0.0.1:0", "internal: listen address in -serve mode")
	large := addLargeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fs.Args())
	}
	if *serve != "" {
		return serveMain(*serve, *addr, rawCodec, stdin, stdout)
	}

	opts := options{
		runConfig: runConfig{warmup: *warmup, duration: *duration, conns: *conns, rawCodec: rawCodec, profileDir: *profDir, trace: *traceOn},
		json:      *jsonOut,
		svg:       *svg,
		rounds:    *rounds,
	}
	if *duration <= 0 || *warmup < 0 || *conns <= 0 || *rounds <= 0 {
		return errors.New("bench: -duration, -conns and -rounds must be positive, -warmup not negative")
	}
	if *profDir != "" {
		abs, err := filepath.Abs(*profDir)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return fmt.Errorf("bench: -cpuprofile: %w", err)
		}
		opts.profileDir = abs
	}
	if large.active() {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runLarge(ctx, large, *duration, opts.profileDir, *jsonOut, stdout, stderr)
	}
	var err error
	if opts.concurrency, err = parseInts(*conc); err != nil {
		return err
	}
	if opts.systems, err = lookupSystems(*sysList); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *overload {
		if *olWork <= 0 || *olPar <= 0 || *olFactor <= 0 || *olTimeout <= 0 {
			return errors.New("bench: -overload-work, -overload-par, -overload-factor and -overload-timeout must be positive")
		}
		cfg := overloadConfig{model: *olModel, work: *olWork, par: *olPar, factor: *olFactor, timeout: *olTimeout, json: *jsonOut}
		warmupSet := false
		fs.Visit(func(f *flag.Flag) { warmupSet = warmupSet || f.Name == "warmup" })
		if !warmupSet {
			// Long enough for a queue to build up to the timeouts, and for
			// an adaptive limit to settle, before the measured window.
			opts.warmup = 2 * time.Second
		}
		for _, l := range strings.Split(*olLimits, ",") {
			if l = strings.TrimSpace(l); l != "" {
				if _, err := limitOptions(l); err != nil {
					return err
				}
				cfg.limits = append(cfg.limits, l)
			}
		}
		if len(cfg.limits) == 0 {
			return errors.New("bench: empty -overload-limits")
		}
		return runOverload(ctx, cfg, opts.runConfig, opts.rounds, stdout, stderr)
	}
	return runAll(ctx, opts, stdout, stderr)
}

// runAll measures every system at every concurrency, -rounds times. With
// one round each result is printed as it is measured; with more, every
// round's rows go to stderr and the final output holds, per point, the round
// with the median calls/s. A failing system is reported and the others still
// run; the returned error names every failure.
func runAll(ctx context.Context, opts options, stdout, stderr io.Writer) error {
	var errs []error
	rounds := max(opts.rounds, 1)
	info := machineLine(opts)
	if opts.json {
		fmt.Fprintln(stderr, info)
	} else {
		fmt.Fprintln(stdout, info)
		fmt.Fprintln(stdout)
		printHeader(stdout)
	}
	enc := json.NewEncoder(stdout)
	emit := func(r result) error {
		if opts.json {
			return enc.Encode(r)
		}
		printRow(stdout, r)
		return nil
	}
	byPoint := make(map[string][]result)
	var order []string
	for round := 1; round <= rounds && ctx.Err() == nil; round++ {
		if rounds > 1 {
			fmt.Fprintf(stderr, "round %d of %d\n", round, rounds)
		}
		for _, sys := range opts.systems {
			if ctx.Err() != nil {
				break
			}
			rs, err := runSystem(ctx, sys, opts)
			for _, r := range rs {
				if rounds > 1 {
					r.round = round
				}
				key := fmt.Sprintf("%s/%d", r.System, r.Concurrency)
				if _, ok := byPoint[key]; !ok {
					order = append(order, key)
				}
				byPoint[key] = append(byPoint[key], r)
				if rounds == 1 {
					if err := emit(r); err != nil {
						return err
					}
				} else {
					printRow(stderr, r)
				}
			}
			if err != nil {
				fmt.Fprintf(stderr, "%s: FAILED: %v\n", sys.name, err)
				errs = append(errs, fmt.Errorf("%s: %w", sys.name, err))
			}
		}
	}
	var results, all []result
	for _, key := range order {
		all = append(all, byPoint[key]...)
		r := median(byPoint[key])
		results = append(results, r)
		if rounds > 1 {
			if err := emit(r); err != nil {
				return err
			}
		}
	}
	if !opts.json {
		printLegend(stdout, opts)
		printTargets(stdout, results)
		printTargets15(stdout, results, all)
	}
	if opts.svg != "" && len(results) > 0 {
		if err := os.WriteFile(opts.svg, []byte(renderSVG(results, info)), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("bench: write svg: %w", err))
		}
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

// median returns the result with the median calls/s (the lower middle for
// an even count), so all its figures come from one consistent run.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmp.Compare(a.CallsPerSec, b.CallsPerSec) })
	return s[(len(s)-1)/2]
}

// runSystem starts the system's server child, measures every concurrency,
// and always stops the child.
func runSystem(ctx context.Context, sys system, opts options) ([]result, error) {
	ch, err := startChild(ctx, sys.name, opts.rawCodec)
	if err != nil {
		return nil, err
	}
	defer ch.stop()
	var out []result
	for _, n := range opts.concurrency {
		r, err := runLevel(ctx, sys, ch, n, opts.runConfig)
		if r.Calls > 0 {
			out = append(out, r)
		}
		if err != nil {
			return out, fmt.Errorf("concurrency %d: %w", n, err)
		}
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bench: bad concurrency %q", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("bench: empty -concurrency")
	}
	return out, nil
}
