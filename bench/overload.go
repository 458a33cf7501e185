package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	rpc "github.com/seedrpc/rpc"
)

// The overload scenario (-overload): a seedrpc server whose capacity is
// set by a simulated backend, first measured closed-loop, then offered
// -overload-factor times that capacity open-loop (calls start on a clock,
// whatever the answers) with a per-call timeout, once per server
// configuration (-overload-limits). It reports goodput (calls answered
// successfully, per second, and as a share of the capacity), the share of
// calls refused with ErrOverloaded and of timeouts, the latency of
// successes and of refusals, and the server's peak memory.
//
// The backend is either "sleep" (the default): every call holds one of
// -overload-par slots for -overload-work, like a pool of database
// connections, so the capacity is par/work whatever else the machine runs;
// or "cpu": every call spins for -overload-work of CPU, so the capacity is
// the server's share of the cores (noisier on a shared machine).

// overloadPrefix starts the -serve name of an overload server child:
// "overload:LIMIT,MODEL,WORK,PAR".
const overloadPrefix = "overload:"

// overloadConfig is the -overload-* flags.
type overloadConfig struct {
	limits  []string // server configurations: default, adaptive, fixed=N
	model   string   // sleep or cpu
	work    time.Duration
	par     int
	factor  float64
	timeout time.Duration
	json    bool
}

// overloadResult is one server configuration under overload.
type overloadResult struct {
	Limit          string  `json:"limit"`
	Capacity       float64 `json:"capacity_per_sec"` // the larger of the two below
	CapacityBefore float64 `json:"capacity_before_per_sec"`
	CapacityAfter  float64 `json:"capacity_after_per_sec"`
	Offered        float64 `json:"offered_per_sec"`
	Goodput        float64 `json:"goodput_per_sec"`
	GoodputShare   float64 `json:"goodput_share"` // of Capacity
	RejectShare    float64 `json:"reject_share"`  // of calls offered
	TimeoutShare   float64 `json:"timeout_share"`
	OtherShare     float64 `json:"other_share"`
	OKp50ms        float64 `json:"ok_p50_ms"`
	OKp99ms        float64 `json:"ok_p99_ms"`
	Rejectp50ms    float64 `json:"reject_p50_ms"`
	Rejectp99ms    float64 `json:"reject_p99_ms"`
	ServerRSSMiB   float64 `json:"server_rss_max_mib"`
	ServerHeapMiB  float64 `json:"server_heap_max_mib"`
	Calls          int64   `json:"calls"`
	OtherError     string  `json:"other_error,omitempty"`
}

// WorkArgs and WorkReply are the overload service's messages.
type WorkArgs struct{ N int }

// WorkReply echoes N; start is the caller's, never sent.
type WorkReply struct {
	N     int
	start time.Time
}

// Work is the overload service: Do holds a slot of the simulated backend
// (sleep model) or spins (cpu model) for the configured work.
type Work struct {
	slots chan struct{} // nil: cpu model
	work  time.Duration
}

// Do waits for a slot (giving up with the caller), then works.
func (w *Work) Do(ctx context.Context, args *WorkArgs, reply *WorkReply) error {
	if w.slots == nil {
		for start := time.Now(); time.Since(start) < w.work; {
			for range 200 {
				reply.N++
			}
		}
		reply.N = args.N
		return nil
	}
	select {
	case w.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	time.Sleep(w.work)
	<-w.slots
	reply.N = args.N
	return nil
}

// overloadSpec is the -serve name of an overload server child.
func overloadSpec(limit string, cfg overloadConfig) string {
	return fmt.Sprintf("%s%s,%s,%s,%d", overloadPrefix, limit, cfg.model, cfg.work, cfg.par)
}

// newOverloadServer builds the server of an overload child from its spec.
func newOverloadServer(spec string) (server, error) {
	f := strings.Split(spec, ",")
	if len(f) != 4 {
		return nil, fmt.Errorf("bench: bad overload spec %q", spec)
	}
	work, err := time.ParseDuration(f[2])
	if err != nil {
		return nil, fmt.Errorf("bench: overload work: %w", err)
	}
	par, err := strconv.Atoi(f[3])
	if err != nil || par <= 0 {
		return nil, fmt.Errorf("bench: bad overload parallelism %q", f[3])
	}
	opts, err := limitOptions(f[0])
	if err != nil {
		return nil, err
	}
	w := &Work{work: work}
	switch f[1] {
	case "sleep":
		w.slots = make(chan struct{}, par)
	case "cpu":
	default:
		return nil, fmt.Errorf("bench: unknown overload model %q (have sleep, cpu)", f[1])
	}
	s := rpc.NewServer(opts...)
	if err := s.Register(w); err != nil {
		return nil, err
	}
	return seedServer{s}, nil
}

// limitOptions turns a -overload-limits entry into server options.
func limitOptions(limit string) ([]rpc.ServerOption, error) {
	switch {
	case limit == "default":
		return nil, nil
	case limit == "adaptive":
		return []rpc.ServerOption{rpc.WithAdaptiveLimit(true)}, nil
	case strings.HasPrefix(limit, "fixed="):
		n, err := strconv.Atoi(strings.TrimPrefix(limit, "fixed="))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bench: bad limit %q", limit)
		}
		return []rpc.ServerOption{rpc.WithMaxCalls(n, 0)}, nil
	}
	return nil, fmt.Errorf("bench: unknown limit %q (have default, adaptive, fixed=N)", limit)
}

// runOverload runs the scenario rounds times and reports, per
// configuration, the round with the median goodput share.
func runOverload(ctx context.Context, cfg overloadConfig, run runConfig, rounds int, stdout, stderr io.Writer) error {
	fmt.Fprintf(stderr, "%s; overload: model %s, work %v, parallelism %d, offered %.1f× capacity open loop, timeout %v\n",
		machineLine(options{runConfig: run, rounds: rounds}), cfg.model, cfg.work, cfg.par, cfg.factor, cfg.timeout)
	byLimit := make([][]overloadResult, len(cfg.limits))
	for round := 1; round <= max(rounds, 1); round++ {
		rs, err := overloadRound(ctx, cfg, run, stderr)
		if err != nil {
			return err
		}
		if rounds > 1 {
			fmt.Fprintf(stderr, "round %d of %d:\n", round, rounds)
			printOverload(stderr, cfg, rs)
		}
		for i, r := range rs {
			byLimit[i] = append(byLimit[i], r)
		}
	}
	results := make([]overloadResult, len(cfg.limits))
	for i, rs := range byLimit {
		slices.SortFunc(rs, func(a, b overloadResult) int { return cmp.Compare(a.GoodputShare, b.GoodputShare) })
		results[i] = rs[(len(rs)-1)/2]
		if cfg.json {
			if err := json.NewEncoder(stdout).Encode(results[i]); err != nil {
				return err
			}
		}
	}
	if !cfg.json {
		if rounds > 1 {
			fmt.Fprintf(stdout, "median of %d rounds (by goodput share), per configuration:\n", rounds)
		}
		printOverload(stdout, cfg, results)
	}
	return ctx.Err()
}

// overloadRound runs the scenario once: the closed-loop capacity of the
// server with its default configuration, then every configuration open
// loop at factor × that capacity, each server in its own child, then the
// capacity again; goodput is judged against the larger of the two.
func overloadRound(ctx context.Context, cfg overloadConfig, run runConfig, stderr io.Writer) ([]overloadResult, error) {
	base, err := startChild(ctx, overloadSpec("default", cfg), codecNone)
	if err != nil {
		return nil, err
	}
	defer base.stop()
	bcli, err := rpc.Dial("tcp", base.addr, rpc.WithPoolSize(run.conns))
	if err != nil {
		return nil, err
	}
	defer bcli.Close()
	before, err := closedLoop(ctx, bcli, 4*cfg.par, run, cfg.timeout)
	if err != nil {
		return nil, fmt.Errorf("bench: overload capacity: %w", err)
	}
	fmt.Fprintf(stderr, "capacity (closed loop, %d callers, default configuration): %.0f calls/s\n", 4*cfg.par, before)

	results := make([]overloadResult, 0, len(cfg.limits))
	for _, limit := range cfg.limits {
		r, err := overloadOne(ctx, cfg, run, limit, cfg.factor*before)
		if err != nil {
			return nil, fmt.Errorf("bench: overload %s: %w", limit, err)
		}
		results = append(results, r)
	}
	after, err := closedLoop(ctx, bcli, 4*cfg.par, run, cfg.timeout)
	if err != nil {
		return nil, fmt.Errorf("bench: overload capacity: %w", err)
	}
	fmt.Fprintf(stderr, "capacity again after the open-loop runs: %.0f calls/s\n", after)
	capacity := max(before, after)
	for i := range results {
		results[i].Capacity = capacity
		results[i].CapacityBefore, results[i].CapacityAfter = before, after
		results[i].GoodputShare = results[i].Goodput / capacity
	}
	return results, ctx.Err()
}

// overloadOne offers rate calls per second open loop to a server child of
// one configuration.
func overloadOne(ctx context.Context, cfg overloadConfig, run runConfig, limit string, rate float64) (overloadResult, error) {
	ch, err := startChild(ctx, overloadSpec(limit, cfg), codecNone)
	if err != nil {
		return overloadResult{}, err
	}
	defer ch.stop()
	cli, err := rpc.Dial("tcp", ch.addr, rpc.WithPoolSize(run.conns))
	if err != nil {
		return overloadResult{}, err
	}
	defer cli.Close()
	r, err := openLoop(ctx, cli, ch, rate, run, cfg.timeout)
	r.Limit = limit
	return r, err
}

// closedLoop measures the calls answered successfully per second by
// callers calling in a loop.
func closedLoop(ctx context.Context, cli *rpc.Client, callers int, run runConfig, timeout time.Duration) (float64, error) {
	var ok atomic.Int64
	var measuring, stop atomic.Bool
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				var r WorkReply
				err := cli.Call("Work.Do", &WorkArgs{N: i}, &r, rpc.WithTimeout(timeout))
				if err == nil && measuring.Load() {
					ok.Add(1)
				}
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()
	if err := sleepCtx(ctx, run.warmup); err != nil {
		return 0, err
	}
	measuring.Store(true)
	start := time.Now()
	if err := sleepCtx(ctx, run.duration); err != nil {
		return 0, err
	}
	n := ok.Load()
	el := time.Since(start)
	if n == 0 {
		return 0, errors.New("no call succeeded closed-loop")
	}
	return float64(n) / el.Seconds(), nil
}

// openLoop offers rate calls per second, each bounded by timeout, and
// classifies those started in the measured window.
func openLoop(ctx context.Context, cli *rpc.Client, ch *child, rate float64, run runConfig, timeout time.Duration) (overloadResult, error) {
	done := make(chan *rpc.Call, 1<<16)
	var okH, rejH histogram
	var ok, rej, tmo, other atomic.Int64
	var otherErr atomic.Value
	var pending sync.WaitGroup // calls issued and not yet answered
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for call := range done {
			r := call.Reply.(*WorkReply)
			if r.start.IsZero() {
				pending.Done()
				continue // warm-up
			}
			d := time.Since(r.start)
			switch err := call.Error; {
			case err == nil:
				ok.Add(1)
				okH.record(d)
			case errors.Is(err, rpc.ErrOverloaded):
				rej.Add(1)
				rejH.record(d)
			case errors.Is(err, rpc.ErrTimeout):
				tmo.Add(1)
			default:
				other.Add(1)
				otherErr.CompareAndSwap(nil, err.Error())
			}
			pending.Done()
		}
	}()

	// Memory of the server, sampled through the window.
	var rss, heap atomic.Uint64
	memStop := make(chan struct{})
	memDone := make(chan struct{})
	go func() {
		defer close(memDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-memStop:
				return
			case <-tick.C:
			}
			h, r, err := ch.mem()
			if err != nil {
				return
			}
			heap.Store(max(heap.Load(), h))
			rss.Store(max(rss.Load(), r))
		}
	}()

	start := time.Now()
	measureFrom, end := start.Add(run.warmup), start.Add(run.warmup+run.duration)
	var issued, inWindow int64
	for {
		now := time.Now()
		if !now.Before(end) || ctx.Err() != nil {
			break
		}
		due := int64(rate * now.Sub(start).Seconds())
		for ; issued < due; issued++ {
			r := new(WorkReply)
			if now.After(measureFrom) {
				r.start = time.Now()
				inWindow++
			}
			pending.Add(1)
			cli.Go("Work.Do", &WorkArgs{N: int(issued)}, r, done, rpc.WithTimeout(timeout))
		}
		time.Sleep(200 * time.Microsecond)
	}
	// Every call ends by its timeout; give the stragglers that and more.
	wait := make(chan struct{})
	go func() { pending.Wait(); close(wait) }()
	close(memStop)
	<-memDone
	select {
	case <-wait:
	case <-time.After(timeout + 5*time.Second):
		return overloadResult{}, errors.New("calls still unanswered well past their timeout")
	}
	close(done)
	<-collected
	n := float64(inWindow)
	r := overloadResult{
		Offered:       n / run.duration.Seconds(),
		Goodput:       float64(ok.Load()) / run.duration.Seconds(),
		RejectShare:   float64(rej.Load()) / n,
		TimeoutShare:  float64(tmo.Load()) / n,
		OtherShare:    float64(other.Load()) / n,
		OKp50ms:       ms(okH.quantile(0.5)),
		OKp99ms:       ms(okH.quantile(0.99)),
		Rejectp50ms:   ms(rejH.quantile(0.5)),
		Rejectp99ms:   ms(rejH.quantile(0.99)),
		ServerRSSMiB:  float64(rss.Load()) / (1 << 20),
		ServerHeapMiB: float64(heap.Load()) / (1 << 20),
		Calls:         inWindow,
	}
	if s, ok := otherErr.Load().(string); ok {
		r.OtherError = s
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// printOverload prints the results as a table.
func printOverload(w io.Writer, cfg overloadConfig, rs []overloadResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintf(w, "capacity: closed loop, %d callers, default configuration, before and after the open-loop runs; offered %.1f× the first open loop, timeout %v\n\n",
		4*cfg.par, cfg.factor, cfg.timeout)
	const f = "%-12s %11s %9s %9s %8s %8s %8s %8s %8s %9s %9s %8s %8s\n"
	fmt.Fprintf(w, f, "limit", "capacity/s", "offered/s", "goodput/s", "goodput", "rejects", "timeouts",
		"ok p50", "ok p99", "rej p50", "rej p99", "RSS MiB", "heap MiB")
	for _, r := range rs {
		fmt.Fprintf(w, f, r.Limit, fmt.Sprintf("%.0f/%.0f", r.CapacityBefore, r.CapacityAfter), fmt.Sprintf("%.0f", r.Offered),
			fmt.Sprintf("%.0f", r.Goodput), pct(r.GoodputShare), pct(r.RejectShare), pct(r.TimeoutShare),
			fmt.Sprintf("%.1fms", r.OKp50ms), fmt.Sprintf("%.1fms", r.OKp99ms),
			fmt.Sprintf("%.2fms", r.Rejectp50ms), fmt.Sprintf("%.2fms", r.Rejectp99ms),
			fmt.Sprintf("%.0f", r.ServerRSSMiB), fmt.Sprintf("%.0f", r.ServerHeapMiB))
		if r.OtherShare > 0 {
			fmt.Fprintf(w, "%12s other errors %s, e.g. %s\n", "", pct(r.OtherShare), r.OtherError)
		}
	}
	fmt.Fprintln(w, "\ngoodput is calls answered successfully per second, and as a share of the larger of the two capacities;")
	fmt.Fprintln(w, "rejects (ErrOverloaded) and timeouts are shares of the calls offered;")
	fmt.Fprintln(w, "latencies are from the call's start to its answer (success or ErrOverloaded); memory is the server's peak.")
}

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// readRSS returns the resident set size of this process in bytes (0 when
// unknown).
func readRSS() uint64 {
	if runtime.GOOS != "linux" {
		return 0
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// mem returns the child's heap in use and resident set size in bytes.
func (c *child) mem() (heap, rss uint64, err error) {
	line, err := c.request("mem")
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscanf(line, "mem %d %d", &heap, &rss); err != nil {
		return 0, 0, fmt.Errorf("bench: child mem: unexpected line %q", line)
	}
	return heap, rss, nil
}
