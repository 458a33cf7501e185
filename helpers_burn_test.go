package rpc

// A CPU burner for the failover tests: with SEEDRPC_TEST_BUSY=1 in the
// environment, tests that call busyCPU run next to a process that keeps
// every core busy, as on a loaded machine, where the window between a
// server's death and the client hearing of it is widest.

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestChildBurner is the body of a burner process; it does nothing in a
// normal test run. It spins one goroutine per core until it is killed, its
// parent dies, or two minutes pass.
func TestChildBurner(t *testing.T) {
	if os.Getenv("SEEDRPC_BURNER") != "1" {
		return
	}
	ppid := os.Getppid()
	stop := make(chan struct{})
	for range runtime.NumCPU() {
		go func() {
			x := 1
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range 1 << 16 {
					x = x*31 + i
				}
				if x == 0 {
					runtime.Gosched() // never: keeps x live
				}
			}
		}()
	}
	end := time.Now().Add(2 * time.Minute)
	for time.Now().Before(end) && os.Getppid() == ppid {
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
}

// busyCPU starts a burner process for the rest of the test when
// SEEDRPC_TEST_BUSY=1, and reports whether it did.
func busyCPU(t testing.TB) bool {
	t.Helper()
	if os.Getenv("SEEDRPC_TEST_BUSY") != "1" {
		return false
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildBurner$", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(os.Environ(), "SEEDRPC_BURNER=1", "SEEDRPC_TEST_BUSY=",
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start CPU burner: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	time.Sleep(100 * time.Millisecond) // let it spin up
	return true
}

// stallWatch measures how late a ticker of the test process fires: how
// long the process was frozen at most (a loaded machine, a long GC).
type stallWatch struct {
	stopc chan struct{}
	done  chan struct{}
	worst time.Duration
}

// watchStalls starts a stall watch; stop ends it (Cleanup does too).
func watchStalls(t testing.TB) *stallWatch {
	w := &stallWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		const tick = 5 * time.Millisecond
		last := time.Now()
		tk := time.NewTicker(tick)
		defer tk.Stop()
		for {
			select {
			case <-w.stopc:
				return
			case now := <-tk.C:
				// The ticker drops ticks while nobody reads: the gap since
				// the last one read, less a period, is how late it was.
				w.worst = max(w.worst, now.Sub(last)-tick)
				last = now
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// stop ends the watch and returns the longest stall seen.
func (w *stallWatch) stop() time.Duration {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
	return w.worst
}
