package rpc

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// The memory attack tests run the server in a child process (the test
// binary re-executed with SEEDRPC_LIMITS_CHILD=1) so that its resident
// memory can be measured apart from the attacking clients.

// MemReport is what the child server reports about its memory.
type MemReport struct {
	HeapInuse uint64 // runtime.MemStats.HeapInuse
	Buffered  int64  // bytes charged to the server's buffer budget
}

// MemStats reports the memory of the server process it runs in.
type MemStats struct{ srv *Server }

// Read fills reply.
func (m *MemStats) Read(_ int, reply *MemReport) error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	reply.HeapInuse = ms.HeapInuse
	reply.Buffered = m.srv.budget.inUse()
	return nil
}

// TestLimitsChildServer is the body of the child server; it does nothing in
// a normal test run. It serves Calc and MemStats, with the buffer budget
// given in SEEDRPC_MAXBUF, prints "ADDR host:port" and serves until its
// standard input ends (the parent closed it or died).
func TestLimitsChildServer(t *testing.T) {
	if os.Getenv("SEEDRPC_LIMITS_CHILD") != "1" {
		return
	}
	maxBuf, err := strconv.ParseInt(os.Getenv("SEEDRPC_MAXBUF"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(WithMaxBufferedBytes(int(maxBuf)))
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Register(&MemStats{srv: srv}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := serve(srv, lis)
	fmt.Printf("ADDR %s\n", lis.Addr())
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
	<-errc
}

// startLimitsChild starts the child server and returns it with its
// address; it is stopped when the test ends.
func startLimitsChild(t *testing.T, maxBuf int64) *childServer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLimitsChildServer$", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), "SEEDRPC_LIMITS_CHILD=1", "SEEDRPC_MAXBUF="+strconv.FormatInt(maxBuf, 10),
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &childOutput{addrc: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child server: %v", err)
	}
	c := &childServer{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-c.exited:
		case <-time.After(fleetWait):
			c.kill()
		}
	})
	select {
	case c.addr = <-out.addrc:
	case <-c.exited:
		t.Fatalf("child server exited before serving (%v):\n%s", c.err, out)
	case <-time.After(fleetWait):
		c.kill()
		t.Fatalf("child server not serving within %v:\n%s", fleetWait, out)
	}
	return c
}

// rss returns the resident memory of process pid, from /proc.
func rss(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// prober calls Calc.Add every 10 ms until stopped and records latencies.
type prober struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	lat  []time.Duration
	errs []error
}

func startProber(cli *Client) *prober {
	p := &prober{stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			start := time.Now()
			var r int
			err := cli.Call("Calc.Add", Args{i, 1}, &r, WithTimeout(5*time.Second))
			p.mu.Lock()
			p.lat = append(p.lat, time.Since(start))
			if err != nil {
				p.errs = append(p.errs, err)
			}
			p.mu.Unlock()
		}
	}()
	return p
}

// end stops the prober and returns the sorted latencies and the errors.
func (p *prober) end() ([]time.Duration, []error) {
	close(p.stop)
	p.wg.Wait()
	slices.Sort(p.lat)
	return p.lat, p.errs
}

func durPercentile(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(len(lat)-1, int(float64(len(lat))*q))].Round(100 * time.Microsecond)
}

// TestClaimAttackMemory is the attack of issue 9: many connections each
// send a valid header claiming just under 16 MiB and then trickle one byte
// a second. The server must not reserve the claimed sizes (before: 3.2 GiB
// of heap for 200 connections), and other clients' calls keep being
// answered. Then a few connections send most of their 16 MiB quickly: the
// server buffers no more than its budget (plus one overdrawn frame) and
// stops reading them, while small calls go on.
func TestClaimAttackMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("child-process memory test skipped in -short mode")
	}
	const (
		conns   = 200
		trickle = 3 // seconds
	)
	// Phase 2: fast senders of send bytes each against a budget of maxBuf.
	maxBuf, fast, send := int64(32<<20), 8, 12<<20
	maxRSS := uint64(256 << 20)
	if raceEnabled() {
		// The race detector's shadow memory multiplies the RSS of what the
		// heap holds, and it makes large copies slow: a quarter of the
		// phase-2 traffic, a looser RSS bound (the heap bounds hold either
		// way).
		maxBuf, fast, send = 16<<20, 4, 6<<20
		maxRSS *= 2
	}
	child := startLimitsChild(t, maxBuf)
	pid := child.cmd.Process.Pid
	cli, err := Dial("tcp", child.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	report := func() MemReport {
		t.Helper()
		var m MemReport
		if err := cli.Call("MemStats.Read", 0, &m, WithTimeout(5*time.Second)); err != nil {
			t.Fatalf("MemStats.Read: %v", err)
		}
		return m
	}
	var r int
	if err := cli.Call("Calc.Add", Args{1, 2}, &r); err != nil {
		t.Fatal(err)
	}
	base, baseHeap := rss(t, pid), report().HeapInuse

	// Phase 1: claims and trickles.
	probe := startProber(cli)
	var attackers []net.Conn
	defer func() {
		for _, c := range attackers {
			c.Close()
		}
	}()
	const claim = wire.DefaultMaxFrameSize - 1
	for i := range conns {
		nc, err := net.Dial("tcp", child.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		attackers = append(attackers, nc)
		if _, err := nc.Write(claimFrame(1, "Calc.Echo", claim-len("Calc.Echo"))); err != nil {
			t.Fatal(err)
		}
	}
	peak, peakHeap := base, baseHeap
	for range trickle {
		time.Sleep(time.Second)
		for _, nc := range attackers {
			nc.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := nc.Write([]byte{0}); err != nil {
				t.Fatalf("trickle: %v", err)
			}
		}
		peak, peakHeap = max(peak, rss(t, pid)), max(peakHeap, report().HeapInuse)
	}
	lat, errs := probe.end()
	t.Logf("claims: %d connections × %d bytes claimed, trickling for %ds: server RSS %d → %d MiB, heap in use %d → %d MiB; other calls: %d, p50 %v, p99 %v, max %v, %d failed",
		conns, claim, trickle, base>>20, peak>>20, baseHeap>>20, peakHeap>>20, len(lat), durPercentile(lat, 0.5), durPercentile(lat, 0.99), durPercentile(lat, 1), len(errs))
	if peak > maxRSS {
		t.Errorf("server RSS under the claim attack = %d MiB, want < %d MiB", peak>>20, maxRSS>>20)
	}
	if peakHeap-min(peakHeap, baseHeap) > 64<<20 {
		t.Errorf("server heap grew by %d MiB under the claim attack, want far less than the %d MiB claimed", (peakHeap-baseHeap)>>20, conns*claim>>20)
	}
	for _, err := range errs {
		t.Errorf("call during the claim attack: %v", err)
	}
	if len(lat) == 0 || durPercentile(lat, 1) > 2*time.Second {
		t.Errorf("calls during the claim attack: %d, slowest %v; want them answered throughout", len(lat), durPercentile(lat, 1))
	}

	// Phase 2: a few connections send most of their claim quickly.
	probe = startProber(cli)
	var wg sync.WaitGroup
	for _, nc := range attackers[:fast] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc.SetWriteDeadline(time.Now().Add(defaultTestTimeout))
			nc.Write(make([]byte, send)) // blocks once the server stops reading; ends when closed
		}()
	}
	defer wg.Wait()
	limit := maxBuf + wire.DefaultMaxFrameSize + wire.DefaultMaxFrameSize/2 // budget + one overdrawn frame, growing
	var buffered int64
	for deadline := time.Now().Add(defaultTestTimeout); buffered < maxBuf/2; time.Sleep(50 * time.Millisecond) {
		// (ReadMemStats stops the world: not too often.)
		if time.Now().After(deadline) {
			t.Fatalf("the server buffered at most %d bytes, want it to fill its budget", buffered)
		}
		m := report()
		buffered, peakHeap = max(buffered, m.Buffered), max(peakHeap, m.HeapInuse)
	}
	var echo []byte
	if err := cli.Call("Calc.Echo", make([]byte, 32<<10), &echo, WithTimeout(5*time.Second)); err != nil || len(echo) != 32<<10 {
		t.Errorf("Call(Calc.Echo, 32 KiB) with the budget spent = %d bytes, %v; want it served from the reserve", len(echo), err)
	}
	time.Sleep(500 * time.Millisecond) // let the attackers push more
	m := report()
	buffered, peakHeap = max(buffered, m.Buffered), max(peakHeap, m.HeapInuse)
	peak = max(peak, rss(t, pid))
	lat, errs = probe.end()
	t.Logf("fast senders: %d connections sending %d MiB each, budget %d MiB: buffered at most %d MiB, heap in use %d MiB, RSS %d MiB; other calls: %d, p50 %v, p99 %v, max %v, %d failed",
		fast, send>>20, maxBuf>>20, buffered>>20, peakHeap>>20, peak>>20, len(lat), durPercentile(lat, 0.5), durPercentile(lat, 0.99), durPercentile(lat, 1), len(errs))
	if buffered > limit {
		t.Errorf("server buffered %d MiB, want at most the %d MiB budget plus one frame", buffered>>20, maxBuf>>20)
	}
	if peak > maxRSS {
		t.Errorf("server RSS with fast senders = %d MiB, want < %d MiB", peak>>20, maxRSS>>20)
	}
	for _, err := range errs {
		t.Errorf("call during the fast senders: %v", err)
	}
	if len(lat) == 0 {
		t.Error("no call answered during the fast senders")
	}
	for _, c := range attackers {
		c.Close()
	}
	attackers = nil
	for deadline := time.Now().Add(defaultTestTimeout); report().Buffered != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the budget was not released when the attackers left")
		}
	}
}
