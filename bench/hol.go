package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	rpc "github.com/seedrpc/rpc"
)

// The head-of-line measurement of issue 12: small Add calls every
// -hol-every while two goroutines echo 8 MiB bodies on the same client. At
// every tick the same Add is also made, at the same instant, on a client of
// its own (one connection that carries nothing else): on a 2-core box the
// big transfers load the CPU too, so that paired call is the fair baseline.
// The shared client is measured with each -hol-pools size, and with each
// load of -hol-modes: echo (8 MiB requests and replies) or download (small
// requests whose replies are 8 MiB, which come back on the connection the
// request went out on).
//
// The criterion of the issue: shared median <= 2x the paired median, and
// shared p99 <= 1.5x the paired p99 or <= 20 ms.

const (
	holBigSize     = 8 << 20 // the default body size, and the most Download returns
	holBigCallers  = 2
	holCallTimeout = 30 * time.Second
	holMaxInFlight = 4000                   // pairs; a tick beyond it is skipped and counted
	holIdle        = time.Second            // the idle phase, at most
	holSettle      = 300 * time.Millisecond // load running before measuring
)

// holConfig is what -hol measures.
type holConfig struct {
	pools    []int
	modes    []string // "echo", "download"; none: echo
	size     int      // of the large bodies; 0: holBigSize
	every    time.Duration
	duration time.Duration
}

// holResult is one pool size's figures (latencies in µs).
type holResult struct {
	Pool            int     `json:"pool"`
	Mode            string  `json:"mode"`
	IdleP50us       float64 `json:"idle_p50_us"`
	IdleP99us       float64 `json:"idle_p99_us"`
	SharedP50us     float64 `json:"shared_p50_us"`
	SharedP99us     float64 `json:"shared_p99_us"`
	SharedMaxus     float64 `json:"shared_max_us"`
	PairedP50us     float64 `json:"paired_p50_us"`
	PairedP99us     float64 `json:"paired_p99_us"`
	P50Ratio        float64 `json:"p50_ratio"`
	P99Ratio        float64 `json:"p99_ratio"`
	Pass            bool    `json:"pass"`
	SmallCalls      int     `json:"small_calls"`
	SkippedTicks    int64   `json:"skipped_ticks"`
	BigEchoes       int64   `json:"big_echoes"`
	BigMBps         float64 `json:"big_mb_per_sec"`
	ServerCPUpct    float64 `json:"server_cpu_pct"`
	ClientCPUpct    float64 `json:"client_cpu_pct"`
	MeasuredSeconds float64 `json:"measured_seconds"`
}

// bigSize is the size of the large bodies.
func (cfg holConfig) bigSize() int {
	if cfg.size > 0 {
		return min(cfg.size, holBigSize)
	}
	return holBigSize
}

// runHOL starts the seedrpc-large server and measures every pool size.
func runHOL(ctx context.Context, cfg holConfig, jsonOut bool, stdout, stderr io.Writer) error {
	ch, err := startChild(ctx, "seedrpc-large", codecNone)
	if err != nil {
		return err
	}
	defer ch.stop()
	if !jsonOut {
		fmt.Fprintf(stdout, "head-of-line: Large.Add every %v while %d goroutines echo (or download) %s bodies; %v measured per pool size and load\n",
			cfg.every, holBigCallers, sizeName(cfg.bigSize()), cfg.duration)
		fmt.Fprintf(stdout, "%-8s %-5s %10s %10s | %10s %10s %10s | %10s %10s | %7s %7s %-5s | %6s %8s %8s %8s\n",
			"load", "pool", "idle p50", "idle p99", "shared p50", "shared p99", "shared max", "paired p50", "paired p99",
			"p50 x", "p99 x", "pass", "calls", "big MB/s", "srv CPU", "cli CPU")
	}
	var errs []error
	var verdicts []string
	modes := cfg.modes
	if len(modes) == 0 {
		modes = []string{"echo"}
	}
	for _, mode := range modes {
		for _, pool := range cfg.pools {
			r, err := holRun(ctx, ch, pool, mode, cfg)
			if err != nil {
				errs = append(errs, fmt.Errorf("bench: hol %s pool %d: %w", mode, pool, err))
				fmt.Fprintf(stderr, "hol %s pool %d: FAILED: %v\n", mode, pool, err)
				continue
			}
			if jsonOut {
				json.NewEncoder(stdout).Encode(r)
				continue
			}
			verdict := "FAIL"
			if r.Pass {
				verdict = "PASS"
			}
			verdicts = append(verdicts, fmt.Sprintf("%s: %s pool %d: shared p50 %s = %.2fx paired (want <= 2x); shared p99 %s = %.2fx paired (want <= 1.5x) or <= 20ms",
				verdict, mode, pool, fmtUs(r.SharedP50us), r.P50Ratio, fmtUs(r.SharedP99us), r.P99Ratio))
			fmt.Fprintf(stdout, "%-8s %-5d %10s %10s | %10s %10s %10s | %10s %10s | %7.1f %7.1f %-5v | %6d %8.0f %7.0f%% %7.0f%%\n",
				r.Mode, r.Pool, fmtUs(r.IdleP50us), fmtUs(r.IdleP99us), fmtUs(r.SharedP50us), fmtUs(r.SharedP99us), fmtUs(r.SharedMaxus),
				fmtUs(r.PairedP50us), fmtUs(r.PairedP99us), r.P50Ratio, r.P99Ratio, r.Pass, r.SmallCalls, r.BigMBps, r.ServerCPUpct, r.ClientCPUpct)
		}
	}
	if !jsonOut {
		fmt.Fprintln(stdout, "idle: the shared client's Add with no load; shared: Add on the client the 8 MiB echoes use; paired: the same Add at the same instant on a client of its own (1 connection)")
		fmt.Fprintln(stdout, "pass: shared p50 <= 2x paired p50, and shared p99 <= 1.5x paired p99 or <= 20 ms (issue 12); CPU: % of one core over the loaded window")
		for _, v := range verdicts {
			fmt.Fprintln(stdout, v)
		}
	}
	return errors.Join(errs...)
}

// fmtUs prints microseconds as µs or ms.
func fmtUs(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1fms", v/1000)
	}
	return fmt.Sprintf("%.0fµs", v)
}

// latencies is a concurrent collector of durations.
type latencies struct {
	mu sync.Mutex // guards d
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// quantiles returns the q-quantiles in µs (nearest rank) of what was added.
func (l *latencies) quantiles(qs ...float64) []float64 {
	l.mu.Lock()
	s := slices.Clone(l.d)
	l.mu.Unlock()
	slices.Sort(s)
	out := make([]float64, len(qs))
	for i, q := range qs {
		if len(s) == 0 {
			continue
		}
		k := min(int(q*float64(len(s))), len(s)-1)
		out[i] = us(s[k])
	}
	return out
}

func (l *latencies) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// holRun measures one pool size: an idle phase, then the loaded phase.
func holRun(ctx context.Context, ch *child, pool int, mode string, cfg holConfig) (holResult, error) {
	shared, err := rpc.Dial("tcp", ch.addr, rpc.WithPoolSize(pool))
	if err != nil {
		return holResult{}, err
	}
	defer shared.Close()
	paired, err := rpc.Dial("tcp", ch.addr, rpc.WithPoolSize(1))
	if err != nil {
		return holResult{}, err
	}
	defer paired.Close()

	var firstErr atomic.Pointer[error]
	fail := func(err error) { firstErr.CompareAndSwap(nil, &err) }
	add := func(cli *rpc.Client, i int) (time.Duration, error) {
		cctx, cancel := context.WithTimeout(ctx, holCallTimeout)
		defer cancel()
		var sum int
		t0 := time.Now()
		err := cli.CallContext(cctx, "Large.Add", AddArgs{i, 1}, &sum)
		d := time.Since(t0)
		if err == nil && sum != i+1 {
			err = fmt.Errorf("%w: Add(%d, 1) = %d", errMismatch, i, sum)
		}
		return d, err
	}
	for i := range 20 { // connect and warm both
		if _, err := add(shared, i); err != nil {
			return holResult{}, err
		}
		if _, err := add(paired, i); err != nil {
			return holResult{}, err
		}
	}

	// ticks fires pairs of Adds every cfg.every for d, recording into
	// sh and pa, and waits for them.
	var skipped atomic.Int64
	ticks := func(d time.Duration, sh, pa *latencies) {
		var wg sync.WaitGroup
		var inFlight atomic.Int64
		t := time.NewTicker(cfg.every)
		defer t.Stop()
		end := time.After(d)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-end:
				wg.Wait()
				return
			case <-t.C:
			}
			if firstErr.Load() != nil {
				continue
			}
			if inFlight.Load() >= holMaxInFlight {
				skipped.Add(1)
				continue
			}
			inFlight.Add(2)
			start := make(chan struct{})
			for _, c := range []struct {
				cli *rpc.Client
				l   *latencies
			}{{shared, sh}, {paired, pa}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer inFlight.Add(-1)
					<-start
					d, err := add(c.cli, i)
					if err != nil {
						fail(err)
						return
					}
					c.l.add(d)
				}()
			}
			close(start)
		}
	}

	var idle, idlePaired latencies
	ticks(min(holIdle, cfg.duration), &idle, &idlePaired)

	// The load: two goroutines echoing (or downloading) 8 MiB bodies on
	// the shared client.
	size := cfg.bigSize()
	big := largeBody("random", holBigSize)[:size]
	bigCall := func(cctx context.Context, reply *[]byte) error {
		if mode == "download" {
			return shared.CallContext(cctx, "Large.Download", size, reply)
		}
		return shared.CallContext(cctx, "Large.Echo", big, reply)
	}
	stop := make(chan struct{})
	var bigWG sync.WaitGroup
	var echoes atomic.Int64
	var measuring atomic.Bool
	for range holBigCallers {
		bigWG.Add(1)
		go func() {
			defer bigWG.Done()
			var reply []byte
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, holCallTimeout)
				reply = reply[:0]
				err := bigCall(cctx, &reply)
				cancel()
				if err == nil && !bytes.Equal(reply, big) {
					err = fmt.Errorf("%w: echo of %d bytes differs", errMismatch, len(reply))
				}
				if err != nil {
					select {
					case <-stop: // cut short by the end of the run
					default:
						fail(err)
					}
					return
				}
				if measuring.Load() {
					echoes.Add(1)
				}
			}
		}()
	}
	select {
	case <-time.After(holSettle):
	case <-ctx.Done():
	}
	var sh, pa latencies
	cu0, cerr := readUsage()
	su0, serr := ch.usage()
	t0 := time.Now()
	measuring.Store(true)
	ticks(cfg.duration, &sh, &pa)
	measuring.Store(false)
	elapsed := time.Since(t0)
	cu1, cerr1 := readUsage()
	su1, serr1 := ch.usage()
	close(stop)
	bigWG.Wait()
	if p := firstErr.Load(); p != nil {
		return holResult{}, *p
	}
	if err := errors.Join(cerr, serr, cerr1, serr1, ctx.Err()); err != nil {
		return holResult{}, err
	}

	iq := idle.quantiles(0.5, 0.99)
	sq := sh.quantiles(0.5, 0.99, 1)
	pq := pa.quantiles(0.5, 0.99)
	r := holResult{
		Pool: pool, Mode: mode, IdleP50us: iq[0], IdleP99us: iq[1],
		SharedP50us: sq[0], SharedP99us: sq[1], SharedMaxus: sq[2],
		PairedP50us: pq[0], PairedP99us: pq[1],
		SmallCalls: sh.len(), SkippedTicks: skipped.Load(), BigEchoes: echoes.Load(),
		BigMBps:         float64(echoes.Load()*int64(size)) / 1e6 / elapsed.Seconds(),
		ClientCPUpct:    100 * cu1.sub(cu0).cpu.Seconds() / elapsed.Seconds(),
		ServerCPUpct:    100 * su1.sub(su0).cpu.Seconds() / elapsed.Seconds(),
		MeasuredSeconds: elapsed.Seconds(),
	}
	if r.PairedP50us > 0 && r.PairedP99us > 0 {
		r.P50Ratio = r.SharedP50us / r.PairedP50us
		r.P99Ratio = r.SharedP99us / r.PairedP99us
	}
	r.Pass = r.P50Ratio <= 2 && (r.P99Ratio <= 1.5 || r.SharedP99us <= 20000)
	return r, nil
}
