package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"syscall"
	"time"
)

// usage is a snapshot of one process's cumulative resource counters.
type usage struct {
	mallocs uint64        // runtime.MemStats.Mallocs
	bytes   uint64        // runtime.MemStats.TotalAlloc
	cpu     time.Duration // user+system CPU time of the process (getrusage)
	// wakeups estimates how often a goroutine stopped running (it parked
	// on a channel, lock, timer or the network poller, or yielded) and was
	// later run again: a hand-off from one goroutine to another costs one.
	// The runtime tracks one in schedSampling of these and counts them in
	// /sched/latencies:seconds, so this is that histogram's count times
	// schedSampling.
	wakeups uint64
	// syscr and syscw count read and write system calls (/proc/self/io;
	// 0 where it does not exist).
	syscr, syscw uint64
	// ctxsw counts the operating system's context switches of the
	// process's threads, voluntary (a thread slept: futex, epoll) and not
	// (/proc/self/task/*/status; 0 where it does not exist).
	ctxsw uint64
	// gcs counts completed garbage collections (runtime.MemStats.NumGC):
	// on a busy server each costs far more than its share of marking
	// (waking threads, returning and refaulting memory), so how often it
	// runs per call is worth watching beside the bytes allocated.
	gcs uint64
	// goroutines is how many goroutines the process had when it was read
	// (a level, not a count: sub and add keep the later reading's). Each is
	// a stack every collection scans.
	goroutines uint64
}

// schedLatencies is the runtime metric whose sample count gives
// usage.wakeups; schedSampling is the runtime's sampling period for it
// (gTrackingPeriod in runtime/runtime2.go).
const (
	schedLatencies = "/sched/latencies:seconds"
	schedSampling  = 8
)

// readUsage snapshots the counters of the calling process.
func readUsage() (usage, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}, fmt.Errorf("bench: getrusage: %w", err)
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	u := usage{mallocs: ms.Mallocs, bytes: ms.TotalAlloc, cpu: cpu, gcs: uint64(ms.NumGC), goroutines: uint64(runtime.NumGoroutine())}
	sample := []metrics.Sample{{Name: schedLatencies}}
	metrics.Read(sample)
	if sample[0].Value.Kind() == metrics.KindFloat64Histogram {
		for _, n := range sample[0].Value.Float64Histogram().Counts {
			u.wakeups += n * schedSampling
		}
	}
	u.syscr, u.syscw = readSyscalls()
	u.ctxsw = readCtxSwitches()
	return u, nil
}

// readCtxSwitches sums the context switches of this process's threads
// (0 when /proc cannot be read).
func readCtxSwitches() uint64 {
	tasks, _ := filepath.Glob("/proc/self/task/*/status")
	var total uint64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for line := range bytes.Lines(b) {
			k, v, ok := bytes.Cut(line, []byte(":"))
			if ok && bytes.HasSuffix(k, []byte("voluntary_ctxt_switches")) {
				n, _ := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
				total += n
			}
		}
	}
	return total
}

// readSyscalls returns the read and write system calls this process has
// made, from /proc/self/io (0, 0 when it cannot be read).
func readSyscalls() (r, w uint64) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(": "))
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(string(v), 10, 64)
		switch string(k) {
		case "syscr":
			r = n
		case "syscw":
			w = n
		}
	}
	return r, w
}

// sub returns u - o.
func (u usage) sub(o usage) usage {
	return usage{
		mallocs: u.mallocs - o.mallocs, bytes: u.bytes - o.bytes, cpu: u.cpu - o.cpu,
		wakeups: u.wakeups - o.wakeups, syscr: u.syscr - o.syscr, syscw: u.syscw - o.syscw,
		ctxsw: u.ctxsw - o.ctxsw, gcs: u.gcs - o.gcs, goroutines: u.goroutines,
	}
}

// add returns u + o.
func (u usage) add(o usage) usage {
	return usage{
		mallocs: u.mallocs + o.mallocs, bytes: u.bytes + o.bytes, cpu: u.cpu + o.cpu,
		wakeups: u.wakeups + o.wakeups, syscr: u.syscr + o.syscr, syscw: u.syscw + o.syscw,
		ctxsw: u.ctxsw + o.ctxsw, gcs: u.gcs + o.gcs, goroutines: u.goroutines + o.goroutines,
	}
}

// String is the line form of the control protocol:
// "mallocs bytes cpu_ns wakeups syscr syscw ctxsw gcs goroutines".
func (u usage) String() string {
	return fmt.Sprintf("%d %d %d %d %d %d %d %d %d", u.mallocs, u.bytes, u.cpu.Nanoseconds(), u.wakeups, u.syscr, u.syscw, u.ctxsw, u.gcs, u.goroutines)
}

// parseUsage parses the String form.
func parseUsage(s string) (usage, error) {
	var u usage
	var cpu int64
	if _, err := fmt.Sscanf(s, "%d %d %d %d %d %d %d %d %d", &u.mallocs, &u.bytes, &cpu, &u.wakeups, &u.syscr, &u.syscw, &u.ctxsw, &u.gcs, &u.goroutines); err != nil {
		return usage{}, fmt.Errorf("bench: bad usage line %q: %w", s, err)
	}
	u.cpu = time.Duration(cpu)
	return u, nil
}
