package main

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// usage is a snapshot of one process's cumulative resource counters.
type usage struct {
	mallocs uint64        // runtime.MemStats.Mallocs
	bytes   uint64        // runtime.MemStats.TotalAlloc
	cpu     time.Duration // user+system CPU time of the process (getrusage)
}

// readUsage snapshots the counters of the calling process.
func readUsage() (usage, error) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}, fmt.Errorf("bench: getrusage: %w", err)
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return usage{mallocs: ms.Mallocs, bytes: ms.TotalAlloc, cpu: cpu}, nil
}

// sub returns u - o.
func (u usage) sub(o usage) usage {
	return usage{mallocs: u.mallocs - o.mallocs, bytes: u.bytes - o.bytes, cpu: u.cpu - o.cpu}
}

// add returns u + o.
func (u usage) add(o usage) usage {
	return usage{mallocs: u.mallocs + o.mallocs, bytes: u.bytes + o.bytes, cpu: u.cpu + o.cpu}
}

// String is the line form of the control protocol: "mallocs bytes cpu_ns".
func (u usage) String() string {
	return fmt.Sprintf("%d %d %d", u.mallocs, u.bytes, u.cpu.Nanoseconds())
}

// parseUsage parses the String form.
func parseUsage(s string) (usage, error) {
	var u usage
	var cpu int64
	if _, err := fmt.Sscanf(s, "%d %d %d", &u.mallocs, &u.bytes, &cpu); err != nil {
		return usage{}, fmt.Errorf("bench: bad usage line %q: %w", s, err)
	}
	u.cpu = time.Duration(cpu)
	return u, nil
}
