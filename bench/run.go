package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// result is one measured (system, concurrency) point. The first nine JSON
// fields are the contract; the split fields help profiling.
type result struct {
	// round is the round (1, 2, ...) the result was measured in, 0 when
	// the run had one.
	round         int
	System        string  `json:"system"`
	Concurrency   int     `json:"concurrency"`
	CallsPerSec   float64 `json:"calls_per_sec"`
	P50us         float64 `json:"p50_us"`
	P99us         float64 `json:"p99_us"`
	P999us        float64 `json:"p999_us"`
	AllocsPerCall float64 `json:"allocs_per_call"`
	BytesPerCall  float64 `json:"bytes_per_call"`
	CPUusPerCall  float64 `json:"cpu_us_per_call"`

	Calls               uint64  `json:"calls"`
	ClientAllocsPerCall float64 `json:"client_allocs_per_call"`
	ServerAllocsPerCall float64 `json:"server_allocs_per_call"`
	ClientCPUusPerCall  float64 `json:"client_cpu_us_per_call"`
	ServerCPUusPerCall  float64 `json:"server_cpu_us_per_call"`
	ClientBytesPerCall  float64 `json:"client_bytes_per_call"`
	ServerBytesPerCall  float64 `json:"server_bytes_per_call"`

	// Goroutine wake-ups and read/write system calls per call, per process
	// (see usage): what a call costs in hand-offs, next to its CPU.
	ClientWakeupsPerCall float64 `json:"client_wakeups_per_call"`
	ServerWakeupsPerCall float64 `json:"server_wakeups_per_call"`
	ClientReadsPerCall   float64 `json:"client_reads_per_call"`
	ServerReadsPerCall   float64 `json:"server_reads_per_call"`
	ClientWritesPerCall  float64 `json:"client_writes_per_call"`
	ServerWritesPerCall  float64 `json:"server_writes_per_call"`
	ClientCtxSwPerCall   float64 `json:"client_ctxsw_per_call"`
	ServerCtxSwPerCall   float64 `json:"server_ctxsw_per_call"`
	// Garbage collections per 10,000 calls, per process (see usage.gcs).
	ClientGCsPer10k float64 `json:"client_gcs_per_10k_calls"`
	ServerGCsPer10k float64 `json:"server_gcs_per_10k_calls"`
	// Goroutines of each process at the end of the window (the client's
	// include its callers).
	ClientGoroutines int `json:"client_goroutines"`
	ServerGoroutines int `json:"server_goroutines"`
}

// runConfig is the part of the flags a measurement needs.
type runConfig struct {
	warmup   time.Duration
	duration time.Duration
	conns    int
	rawCodec codecMode
	// profileDir, when set, receives CPU profiles of the measured window:
	// SYSTEM-cN-client.pprof and SYSTEM-cN-server.pprof.
	profileDir string
	// trace writes execution traces there (.trace) instead of profiles.
	trace bool
}

// Phases of a run, read by every caller after each call.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDrain // measurement over; callers finish their call and stop
)

// callerState is owned by one calling goroutine; calls is read by the
// harness (atomically) at the window edges. Each is allocated on its own so
// the hot counters do not share cache lines.
type callerState struct {
	calls atomic.Uint64
	_     [56]byte
	hist  histogram
}

// drainTimeout bounds how long callers may take to stop after the window
// (one call each, normally microseconds).
const drainTimeout = 5 * time.Second

// runLevel measures sys at one concurrency against the server in ch.
func runLevel(ctx context.Context, sys system, ch *child, concurrency int, cfg runConfig) (res result, err error) {
	runtime.GC()
	if err := ch.gc(); err != nil {
		return result{}, err
	}
	cli, err := dialBounded(sys, dialConfig{addr: ch.addr, conns: cfg.conns, callers: concurrency, rawCodec: cfg.rawCodec})
	if err != nil {
		return result{}, fmt.Errorf("bench: %s dial: %w", sys.name, err)
	}
	closeClient := sync.OnceValue(func() error { return closeBounded(sys.name, cli) })
	defer func() {
		if cerr := closeClient(); cerr != nil && err == nil {
			err = cerr // res stays: the measurement itself was sound
		}
	}()
	checks := true
	if d, ok := cli.(interface{ decodesReply() bool }); ok {
		checks = d.decodesReply() // raw systems compare bytes instead
	}

	var phase atomic.Int32
	states := make([]*callerState, concurrency)
	errc := make(chan error, concurrency)
	var wg sync.WaitGroup
	for i := range concurrency {
		st := new(callerState)
		states[i] = st
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := newMessage()
			var reply BenchmarkMessage
			for phase.Load() != phaseDrain {
				reply = BenchmarkMessage{}
				t0 := time.Now()
				err := cli.Call(i, req, &reply)
				d := time.Since(t0)
				if err == nil && checks {
					err = checkReply(&reply)
				}
				if err != nil {
					errc <- fmt.Errorf("bench: %s caller %d: %w", sys.name, i, err)
					return
				}
				if phase.Load() == phaseMeasure {
					st.hist.record(d)
				}
				st.calls.Add(1)
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	res, err = measure(ctx, sys, ch, &phase, states, errc, cfg)
	phase.Store(phaseDrain)
	if err != nil {
		// A caller may be stuck in a call to a broken server: closing the
		// client (and, failing that, killing the server) unblocks it.
		closeClient()
	}
	select {
	case <-allDone:
	case <-time.After(drainTimeout):
		ch.kill()
		select {
		case <-allDone:
		case <-time.After(drainTimeout):
			return result{}, errors.Join(err, fmt.Errorf("bench: %s callers did not stop", sys.name))
		}
		err = errors.Join(err, fmt.Errorf("bench: %s callers did not stop; server killed", sys.name))
	}
	if err != nil {
		return result{}, err
	}
	var hist histogram
	for _, st := range states {
		hist.merge(&st.hist)
	}
	res.System, res.Concurrency = sys.name, concurrency
	res.P50us = us(hist.quantile(0.50))
	res.P99us = us(hist.quantile(0.99))
	res.P999us = us(hist.quantile(0.999))
	return res, nil
}

// measure runs the warm-up and the measured window and computes throughput
// and per-call costs. Resource counters of both processes are read just
// outside the window; the call count used to divide them is the midpoint of
// counts taken before and after each snapshot.
func measure(ctx context.Context, sys system, ch *child, phase *atomic.Int32, states []*callerState, errc <-chan error, cfg runConfig) (result, error) {
	sum := func() uint64 {
		var n uint64
		for _, st := range states {
			n += st.calls.Load()
		}
		return n
	}
	wait := func(d time.Duration) error {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	snapshot := func() (usage, usage, float64, error) {
		before := sum()
		cu, err := readUsage()
		if err != nil {
			return usage{}, usage{}, 0, err
		}
		su, err := ch.usage()
		if err != nil {
			return usage{}, usage{}, 0, err
		}
		return cu, su, float64(before+sum()) / 2, nil
	}

	if err := wait(cfg.warmup); err != nil {
		return result{}, err
	}
	cu0, su0, uc0, err := snapshot()
	if err != nil {
		return result{}, err
	}
	var prof profile
	if cfg.profileDir != "" {
		base := filepath.Join(cfg.profileDir, fmt.Sprintf("%s-c%d-", sys.name, len(states)))
		ext := ".pprof"
		if cfg.trace {
			ext = ".trace"
		}
		if err := prof.start(base + "client" + ext); err != nil {
			return result{}, err
		}
		defer prof.stop()
		if err := ch.requestOK("cpuprofile " + base + "server" + ext); err != nil {
			return result{}, err
		}
	}
	c0, t0 := sum(), time.Now()
	phase.Store(phaseMeasure)
	if err := wait(cfg.duration); err != nil {
		return result{}, err
	}
	phase.Store(phaseWarmup) // stop recording latencies; callers keep calling
	c1, t1 := sum(), time.Now()
	if cfg.profileDir != "" {
		if err := errors.Join(prof.stop(), ch.requestOK("cpuprofile-stop")); err != nil {
			return result{}, err
		}
	}
	cu1, su1, uc1, err := snapshot()
	if err != nil {
		return result{}, err
	}
	select {
	case err := <-errc:
		return result{}, err
	default:
	}

	calls := c1 - c0
	if calls == 0 {
		return result{}, fmt.Errorf("bench: %s completed no call in %v", sys.name, cfg.duration)
	}
	cd, sd := cu1.sub(cu0), su1.sub(su0)
	n := uc1 - uc0
	res := result{
		Calls:               calls,
		CallsPerSec:         float64(calls) / t1.Sub(t0).Seconds(),
		ClientAllocsPerCall: float64(cd.mallocs) / n,
		ServerAllocsPerCall: float64(sd.mallocs) / n,
		ClientCPUusPerCall:  us(cd.cpu) / n,
		ServerCPUusPerCall:  us(sd.cpu) / n,
		ClientBytesPerCall:  float64(cd.bytes) / n,
		ServerBytesPerCall:  float64(sd.bytes) / n,

		ClientWakeupsPerCall: float64(cd.wakeups) / n,
		ServerWakeupsPerCall: float64(sd.wakeups) / n,
		ClientReadsPerCall:   float64(cd.syscr) / n,
		ServerReadsPerCall:   float64(sd.syscr) / n,
		ClientWritesPerCall:  float64(cd.syscw) / n,
		ServerWritesPerCall:  float64(sd.syscw) / n,
		ClientCtxSwPerCall:   float64(cd.ctxsw) / n,
		ServerCtxSwPerCall:   float64(sd.ctxsw) / n,
		ClientGCsPer10k:      1e4 * float64(cd.gcs) / n,
		ServerGCsPer10k:      1e4 * float64(sd.gcs) / n,
		ClientGoroutines:     int(cd.goroutines),
		ServerGoroutines:     int(sd.goroutines),
	}
	tot := cd.add(sd)
	res.AllocsPerCall = float64(tot.mallocs) / n
	res.BytesPerCall = float64(tot.bytes) / n
	res.CPUusPerCall = us(tot.cpu) / n
	return res, nil
}

// closeTimeout bounds a client's Close and dial.
const closeTimeout = 5 * time.Second

// dialBounded dials with a time limit: a system whose dial hangs is reported,
// not waited for (its goroutine is abandoned; the harness exits soon after).
func dialBounded(sys system, cfg dialConfig) (client, error) {
	type dialed struct {
		c   client
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		c, err := sys.dial(cfg)
		done <- dialed{c, err}
	}()
	select {
	case d := <-done:
		return d.c, d.err
	case <-time.After(closeTimeout):
		return nil, fmt.Errorf("dial did not return in %v", closeTimeout)
	}
}

// closeBounded closes cli with a time limit, like dialBounded.
func closeBounded(name string, cli client) error {
	done := make(chan error, 1)
	go func() { done <- cli.Close() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("bench: %s client close: %w", name, err)
		}
		return nil
	case <-time.After(closeTimeout):
		return fmt.Errorf("bench: %s client Close did not return in %v", name, closeTimeout)
	}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
