package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	rtrace "runtime/trace"
	"strings"
	"sync"
	"time"
)

// The server of each system runs in a child process: the harness re-executes
// its own binary as
//
//	bench -serve SYSTEM -addr 127.0.0.1:0 [-rawcodec=MODE]
//
// The child prints "addr HOST:PORT" on stdout once it listens, then answers a
// line protocol on stdin/stdout:
//
//	usage -> "usage " + usage.String()  (runtime.MemStats + getrusage + runtime/metrics + /proc)
//	gc    -> "ok"                               (runtime.GC, between runs)
//	cpuprofile PATH -> "ok"                     (pprof.StartCPUProfile to PATH; runtime/trace.Start if PATH ends in .trace)
//	cpuprofile-stop -> "ok"
//	mem   -> "mem HEAPINUSE RSS"                (bytes: runtime.MemStats, /proc VmRSS)
//	quit  -> exits
//
// EOF on stdin (the harness died) also makes the child exit.

// childTimeout bounds every wait on the child: start-up, a control request,
// and exit after quit.
const childTimeout = 10 * time.Second

// serveMain is the child's main: it serves system name on addr until stdin
// says quit or closes.
func serveMain(name, addr string, rawCodec codecMode, stdin io.Reader, stdout io.Writer) error {
	var srv server
	if spec, ok := strings.CutPrefix(name, overloadPrefix); ok {
		s, err := newOverloadServer(spec)
		if err != nil {
			return err
		}
		srv = s
	} else {
		sys, err := lookupSystem(name)
		if err != nil {
			return err
		}
		if srv, err = sys.newServer(rawCodec); err != nil {
			return fmt.Errorf("bench: %s server: %w", name, err)
		}
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bench: listen: %w", err)
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(lis) }()

	out := bufio.NewWriter(stdout)
	reply := func(format string, args ...any) error {
		fmt.Fprintf(out, format+"\n", args...)
		return out.Flush()
	}
	err = reply("addr %s", lis.Addr())
	var prof profile
	defer prof.stop()
	sc := bufio.NewScanner(stdin)
	for err == nil && sc.Scan() {
		cmd, arg, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		switch cmd {
		case "usage":
			var u usage
			if u, err = readUsage(); err == nil {
				err = reply("usage %s", u)
			}
		case "gc":
			runtime.GC()
			err = reply("ok")
		case "mem":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			err = reply("mem %d %d", ms.HeapInuse, readRSS())
		case "cpuprofile":
			if perr := prof.start(arg); perr != nil {
				err = reply("error %v", perr)
			} else {
				err = reply("ok")
			}
		case "cpuprofile-stop":
			if perr := prof.stop(); perr != nil {
				err = reply("error %v", perr)
			} else {
				err = reply("ok")
			}
		case "quit":
			err = io.EOF
		default:
			err = reply("error unknown command %q", cmd)
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	cerr := srv.Close()
	lis.Close()
	select {
	case <-serveDone:
	case <-time.After(childTimeout):
		return errors.Join(err, fmt.Errorf("bench: %s server did not stop", name))
	}
	return errors.Join(err, cerr)
}

// child is the harness's handle on a server process.
type child struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string   // stdout lines; closed when stdout closes
	closing  chan struct{} // closed by stop: stdout lines are then discarded
	done     chan struct{} // closed when the process has been waited for
	stopOnce sync.Once
	addr     string
}

// childArgs is the child's command line (after the program name): what
// -serve parses, with the parent's -rawcodec mode.
func childArgs(name string, rawCodec codecMode) []string {
	args := []string{"-serve", name, "-addr", "127.0.0.1:0"}
	if rawCodec.on() {
		args = append(args, "-rawcodec="+string(rawCodec))
	}
	return args
}

// startChild starts the server of system name in a child process and waits
// for its address. The child is killed when ctx is done.
func startChild(ctx context.Context, name string, rawCodec codecMode) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: executable: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, childArgs(name, rawCodec)...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childSysProcAttr()
	cmd.WaitDelay = time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: stdin pipe: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bench: stdout pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s server: %w", name, err)
	}
	c := &child{
		cmd: cmd, stdin: stdin, lines: make(chan string),
		closing: make(chan struct{}), done: make(chan struct{}),
	}
	// The reader ends when stdout closes, which the process exit (or
	// cmd.Wait's WaitDelay) guarantees.
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			case <-c.closing: // drain until EOF so the child never blocks on stdout
			}
		}
	}()
	go func() {
		<-readerDone
		cmd.Wait()
		close(c.done)
	}()
	line, err := c.readLine()
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("bench: %s server start: %w", name, err)
	}
	addr, ok := strings.CutPrefix(line, "addr ")
	if !ok {
		c.stop()
		return nil, fmt.Errorf("bench: %s server start: unexpected line %q", name, line)
	}
	c.addr = addr
	return c, nil
}

func (c *child) readLine() (string, error) {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return "", errors.New("child exited")
		}
		return line, nil
	case <-time.After(childTimeout):
		return "", errors.New("child did not answer in time")
	}
}

// request sends one control command and returns the reply line.
func (c *child) request(cmd string) (string, error) {
	if _, err := io.WriteString(c.stdin, cmd+"\n"); err != nil {
		return "", fmt.Errorf("bench: child %s: %w", cmd, err)
	}
	line, err := c.readLine()
	if err != nil {
		return "", fmt.Errorf("bench: child %s: %w", cmd, err)
	}
	return line, nil
}

// usage returns the child's resource counters.
func (c *child) usage() (usage, error) {
	line, err := c.request("usage")
	if err != nil {
		return usage{}, err
	}
	rest, ok := strings.CutPrefix(line, "usage ")
	if !ok {
		return usage{}, fmt.Errorf("bench: child usage: unexpected line %q", line)
	}
	return parseUsage(rest)
}

// gc runs a garbage collection in the child.
func (c *child) gc() error { return c.requestOK("gc") }

// requestOK sends cmd and expects "ok".
func (c *child) requestOK(cmd string) error {
	line, err := c.request(cmd)
	if err != nil {
		return err
	}
	if line != "ok" {
		return fmt.Errorf("bench: child %s: %s", cmd, line)
	}
	return nil
}

// profile is a CPU profile or execution trace being written to a file
// (zero value: none).
type profile struct {
	f     *os.File
	trace bool // an execution trace (runtime/trace), not a CPU profile
}

// start starts a CPU profile, or an execution trace if path ends in
// ".trace", written to path.
func (p *profile) start(path string) error {
	if p.f != nil {
		return errors.New("bench: profile already running")
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: profile: %w", err)
	}
	p.trace = strings.HasSuffix(path, ".trace")
	if p.trace {
		err = rtrace.Start(f)
	} else {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("bench: profile: %w", err)
	}
	p.f = f
	return nil
}

func (p *profile) stop() error {
	if p.f == nil {
		return nil
	}
	if p.trace {
		rtrace.Stop()
	} else {
		pprof.StopCPUProfile()
	}
	err := p.f.Close()
	p.f = nil
	return err
}

// kill ends the child at once (used when a run is stuck).
func (c *child) kill() {
	c.cmd.Process.Kill()
}

// stop asks the child to quit, kills it if it does not exit in time, and
// waits for it. It is safe to call more than once.
func (c *child) stop() {
	c.stopOnce.Do(func() {
		close(c.closing)
		io.WriteString(c.stdin, "quit\n")
		c.stdin.Close()
	})
	select {
	case <-c.done:
		return
	case <-time.After(2 * time.Second):
	}
	c.cmd.Process.Kill()
	<-c.done // bounded: Wait returns once the killed process is reaped (WaitDelay caps the pipes)
}
