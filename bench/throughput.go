package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	rpc "github.com/seedrpc/rpc"
)

// The throughput measurement of issue 12: callers echo bodies of 1 MiB and
// 8 MiB as fast as they can, through seedrpc (default pool) and through raw
// TCP (one connection per caller, store and forward), both servers in a
// child process. MB/s counts body bytes echoed (each crosses the wire
// twice); CPU is client plus server, per MB echoed.

// tputConfig is what -throughput measures.
type tputConfig struct {
	sizes    []int
	kinds    []string
	conc     []int
	duration time.Duration
	// profileDir, when set, receives CPU profiles of each measured window.
	profileDir string
}

// tputResult is one measured point.
type tputResult struct {
	System      string  `json:"system"`
	Payload     string  `json:"payload"`
	Size        int     `json:"size"`
	Concurrency int     `json:"concurrency"`
	Calls       int64   `json:"calls"`
	MBps        float64 `json:"mb_per_sec"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	CPUmsPerMB  float64 `json:"cpu_ms_per_mb"`
	VsRaw       float64 `json:"vs_raw,omitempty"`
}

const tputWarmupCalls = 2

// tputEchoer echoes one body for one caller.
type tputEchoer func(caller int, body []byte, deadline time.Time) error

// runThroughput measures every (payload, size, concurrency) point on both
// systems.
func runThroughput(ctx context.Context, cfg tputConfig, jsonOut bool, stdout, stderr io.Writer) error {
	if !jsonOut {
		fmt.Fprintf(stdout, "throughput: echoes of large bodies, %v measured per point\n", cfg.duration)
		fmt.Fprintf(stdout, "%-8s %-8s %-10s %5s | %-8s %7s %9s %10s %10s %10s | %7s\n",
			"payload", "size", "system", "conc", "", "calls", "MB/s", "p50", "p99", "CPU ms/MB", "vs raw")
	}
	var errs []error
	raw := map[string]float64{}
	for _, name := range []string{"rawtcp-large", "seedrpc-large", "seedrpc-large-s2"} {
		err := func() error {
			ch, err := startChild(ctx, name, codecNone)
			if err != nil {
				return err
			}
			defer ch.stop()
			for _, kind := range cfg.kinds {
				for _, size := range cfg.sizes {
					body := largeBody(kind, size)
					for _, n := range cfg.conc {
						prof := ""
						if cfg.profileDir != "" {
							prof = filepath.Join(cfg.profileDir, fmt.Sprintf("%s-%s-%s-c%d-", name, kind, sizeName(size), n))
						}
						r, err := tputPoint(ctx, ch, name, body, n, cfg.duration, prof)
						if err != nil {
							return fmt.Errorf("%s %s %s c%d: %w", name, kind, sizeName(size), n, err)
						}
						r.Payload, r.Size = kind, size
						key := fmt.Sprint(kind, size, n)
						if name == "rawtcp-large" {
							raw[key] = r.MBps
						} else if raw[key] > 0 {
							r.VsRaw = r.MBps / raw[key]
						}
						if jsonOut {
							json.NewEncoder(stdout).Encode(r)
							continue
						}
						vs := ""
						if r.VsRaw > 0 {
							vs = fmt.Sprintf("%.2f", r.VsRaw)
						}
						fmt.Fprintf(stdout, "%-8s %-8s %-10s %5d | %-8s %7d %9.0f %10s %10s %10.2f | %7s\n",
							kind, sizeName(size), r.System, n, "", r.Calls, r.MBps, fmtUs(r.P50us), fmtUs(r.P99us), r.CPUmsPerMB, vs)
					}
				}
			}
			return nil
		}()
		if err != nil {
			fmt.Fprintf(stderr, "throughput %s: FAILED: %v\n", name, err)
			errs = append(errs, fmt.Errorf("bench: throughput: %w", err))
		}
	}
	if !jsonOut {
		fmt.Fprintln(stdout, "raw: length-prefixed echo, one connection per caller; seedrpc: defaults (pool of 4), Large.Echo([]byte); vs raw: MB/s ratio")
	}
	return errors.Join(errs...)
}

// tputPoint measures one system at one body and concurrency.
// With prof set, the client's and the server's CPU profiles of the window
// go to prof+"client.pprof" and prof+"server.pprof".
func tputPoint(ctx context.Context, ch *child, name string, body []byte, callers int, d time.Duration, prof string) (tputResult, error) {
	echo, closeFn, err := tputDial(name, ch.addr, callers)
	if err != nil {
		return tputResult{}, err
	}
	defer closeFn()
	gcBoth(ch)

	var phase atomic.Int32 // 0 warm-up, 1 measure, 2 stop
	var calls atomic.Int64
	var lat latencies
	errc := make(chan error, callers)
	var wg sync.WaitGroup
	warm := make(chan struct{}, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; phase.Load() != 2; k++ {
				t0 := time.Now()
				if err := echo(i, body, t0.Add(holCallTimeout)); err != nil {
					errc <- err
					return
				}
				if k == tputWarmupCalls-1 {
					warm <- struct{}{}
				}
				if phase.Load() == 1 {
					lat.add(time.Since(t0))
					calls.Add(1)
				}
			}
		}()
	}
	stopAll := func() { phase.Store(2); wg.Wait() }
	for range callers {
		select {
		case <-warm:
		case err := <-errc:
			stopAll()
			return tputResult{}, err
		case <-ctx.Done():
			stopAll()
			return tputResult{}, ctx.Err()
		}
	}
	cu0, err := readUsage()
	if err != nil {
		stopAll()
		return tputResult{}, err
	}
	su0, err := ch.usage()
	if err != nil {
		stopAll()
		return tputResult{}, err
	}
	var p profile
	if prof != "" {
		if err := p.start(prof + "client.pprof"); err != nil {
			stopAll()
			return tputResult{}, err
		}
		defer p.stop()
		if err := ch.requestOK("cpuprofile " + prof + "server.pprof"); err != nil {
			stopAll()
			return tputResult{}, err
		}
		defer ch.requestOK("cpuprofile-stop")
	}
	t0 := time.Now()
	phase.Store(1)
	select {
	case <-time.After(d):
	case err := <-errc:
		stopAll()
		return tputResult{}, err
	case <-ctx.Done():
		stopAll()
		return tputResult{}, ctx.Err()
	}
	n := calls.Load()
	elapsed := time.Since(t0)
	phase.Store(0) // keep calling, stop counting, while reading usage
	cu1, cerr := readUsage()
	su1, serr := ch.usage()
	stopAll()
	if err := errors.Join(cerr, serr); err != nil {
		return tputResult{}, err
	}
	select {
	case err := <-errc:
		return tputResult{}, err
	default:
	}
	mb := float64(n) * float64(len(body)) / 1e6
	q := lat.quantiles(0.5, 0.99)
	sys := "raw"
	switch name {
	case "seedrpc-large":
		sys = "seedrpc"
	case "seedrpc-large-s2":
		sys = "seedrpc+s2"
	}
	r := tputResult{System: sys, Concurrency: callers, Calls: n, MBps: mb / elapsed.Seconds(), P50us: q[0], P99us: q[1]}
	if mb > 0 {
		r.CPUmsPerMB = float64((cu1.sub(cu0).cpu + su1.sub(su0).cpu).Milliseconds()) / mb
	}
	return r, nil
}

// gcBoth collects garbage in both processes between points.
func gcBoth(ch *child) {
	runtime.GC()
	ch.gc()
}

// tputDial returns an echo function for callers callers of system name and
// a function that closes what it opened.
func tputDial(name, addr string, callers int) (tputEchoer, func(), error) {
	if name == "rawtcp-large" {
		conns := make([]*rawLargeConn, callers)
		closeAll := func() {
			for _, c := range conns {
				if c != nil {
					c.Close()
				}
			}
		}
		for i := range conns {
			c, err := dialRawLarge(addr)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			conns[i] = c
		}
		return func(i int, body []byte, deadline time.Time) error { return conns[i].echo(body, deadline) }, closeAll, nil
	}
	var opts []rpc.ClientOption
	if name == "seedrpc-large-s2" {
		opts = append(opts, rpc.WithCompression(largeCompressMin))
	}
	cli, err := rpc.Dial("tcp", addr, opts...)
	if err != nil {
		return nil, nil, err
	}
	replies := make([][]byte, callers)
	echo := func(i int, body []byte, deadline time.Time) error {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		replies[i] = replies[i][:0]
		if err := cli.CallContext(ctx, "Large.Echo", body, &replies[i]); err != nil {
			return err
		}
		if !bytes.Equal(replies[i], body) {
			return fmt.Errorf("%w: echo of %d bytes differs", errMismatch, len(replies[i]))
		}
		return nil
	}
	return echo, func() { cli.Close() }, nil
}
