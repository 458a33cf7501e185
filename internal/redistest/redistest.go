// Package redistest starts real redis-server processes on loopback for tests.
//
// It is the one Redis helper shared by every package's tests:
//
//	srv := redistest.Start(t)          // a fresh, empty redis-server on 127.0.0.1
//	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
//	srv.Kill()                         // SIGKILL, as if the machine died
//	srv.Restart()                      // back on the same port, empty
//
//	cl := redistest.StartCluster(t, 3) // a 3-master Redis Cluster on loopback
//	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
//
//	sn := redistest.StartSentinel(t, 1, 3) // master + 1 replica + 3 sentinels
//	rdb := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: sn.MasterName(), SentinelAddrs: sn.Addrs()})
//	sn.Master().Kill()                     // and the sentinels promote the replica
//
//	srv := redistest.StartTLS(t)           // TLS only, self-signed certificate
//	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), TLSConfig: srv.TLSConfig()})
//
// Servers run with persistence off (--save "" --appendonly no) in their own
// temporary directory and are stopped by t.Cleanup. When redis-server (or
// redis-cli, for clusters, or redis-sentinel) is not on PATH the test is
// skipped, unless the environment variable CI is non-empty, in which case it
// fails.
package redistest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds how long a starting redis-server may take to answer PING.
	readyTimeout = 10 * time.Second
	// clusterTimeout bounds cluster creation and convergence.
	clusterTimeout = 30 * time.Second
	// startAttempts is how many free ports are tried before giving up.
	startAttempts = 5
)

// Server is one redis-server process on 127.0.0.1. Its methods must be called
// from the test goroutine (they may call t.Fatal).
type Server struct {
	t     testing.TB
	dir   string
	port  int
	bin   string      // "redis-server" or "redis-sentinel"
	pre   []string    // arguments before the common ones (a config file)
	extra []string    // extra arguments (cluster mode, replication, TLS files)
	tls   *tls.Config // client configuration when the server speaks TLS only

	mu   sync.Mutex // guards proc
	proc *process   // nil while killed
}

// process is one running redis-server; done is closed when it has exited.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts an empty redis-server on a free loopback port, waits until it
// answers PING and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	requireBinaries(t, "redis-server")
	return start(t, &Server{dir: t.TempDir()}, false)
}

// start fills in s (t, binary) and starts it on a free port, or fails the
// test.
func start(t testing.TB, s *Server, busPort bool) *Server {
	t.Helper()
	if err := tryStart(t, s, busPort); err != nil {
		t.Fatalf("redistest: start %s: %v", s.bin, err)
	}
	return s
}

// tryStart fills in s and starts it on a free port; the process is killed
// when the test ends.
func tryStart(t testing.TB, s *Server, busPort bool) error {
	s.t = t
	if s.bin == "" {
		s.bin = "redis-server"
	}
	var err error
	for range startAttempts {
		var port int
		port, err = freePort(busPort)
		if err != nil {
			continue
		}
		if err = s.start(port); err == nil {
			s.port = port
			t.Cleanup(s.Kill)
			return nil
		}
	}
	return err
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Kill sends SIGKILL and waits for the process to exit. Killing a stopped
// server is a no-op.
func (s *Server) Kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Restart kills the server if it runs and starts it again, empty, on the same
// port. It returns once the new process answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for range startAttempts { // the port may linger briefly after SIGKILL
		if err = s.start(s.port); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("redistest: restart redis-server on %s: %v", s.Addr(), err)
}

// Freeze stops the process with SIGSTOP: connections stay open but nothing is
// answered, as with a blackholed network. Thaw resumes it.
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server with SIGCONT.
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) {
	s.t.Helper()
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		s.t.Fatalf("redistest: signal %v: server %s not running", sig, s.Addr())
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: signal %v: %v", sig, err)
	}
}

// Do sends one command and returns its reply as a string (simple string,
// integer or bulk string; nil bulk is ""). A Redis error reply is returned as
// an error. It is bounded by a short timeout.
//
// An array reply is returned as its elements, flattened, one per line.
func (s *Server) Do(args ...string) (string, error) {
	return do(s.Addr(), s.tls, 2*time.Second, args...)
}

// TLSConfig returns a client configuration that trusts the server's
// certificate (StartTLS), or nil for a plaintext server.
func (s *Server) TLSConfig() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

func (s *Server) start(port int) error {
	args := append([]string(nil), s.pre...)
	if s.tls != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(port))
	} else {
		args = append(args, "--port", strconv.Itoa(port))
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--daemonize", "no",
	)
	args = append(args, s.extra...)
	cmd := exec.Command(s.bin, args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("exec %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(readyTimeout)
	for {
		reply, err := do(addr, s.tls, 200*time.Millisecond, "PING")
		if err == nil && reply == "PONG" {
			break
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s on port %d exited: %s", s.bin, port, s.logTail())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-p.done
			return fmt.Errorf("%s on port %d not answering PING after %v: %v", s.bin, port, readyTimeout, err)
		}
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// Cluster is a Redis Cluster of masters on loopback, without replicas.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts masters (at least 3) redis-server processes in cluster
// mode, joins them with redis-cli --cluster create, and waits until every node
// reports cluster_state:ok. The nodes are stopped when the test ends.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	requireBinaries(t, "redis-server", "redis-cli")
	if masters < 3 {
		t.Fatalf("redistest: StartCluster(%d): Redis Cluster needs at least 3 masters", masters)
	}
	c := &Cluster{}
	for i := range masters {
		dir := filepath.Join(t.TempDir(), "node"+strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		extra := []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "5000",
		}
		c.nodes = append(c.nodes, start(t, &Server{dir: dir, extra: extra}, true))
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.nodes {
		for {
			info, err := n.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("redistest: node %s not cluster_state:ok after %v (err %v): %s", n.Addr(), clusterTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Addrs returns the "127.0.0.1:port" of every node.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Nodes returns the cluster's servers, for killing or freezing one.
func (c *Cluster) Nodes() []*Server { return c.nodes }

func requireBinaries(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			msg := fmt.Sprintf("redistest: %s not on PATH; install it (apt-get install redis-server) or set CI=true to fail", name)
			if os.Getenv("CI") == "" {
				t.Skip(msg)
			}
			t.Fatal(msg)
		}
	}
}

// freePort returns a loopback port that was free a moment ago. With bus set,
// port+10000 (the cluster bus port) must be free too.
func freePort(bus bool) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if !bus {
			return port, nil
		}
		if port+10000 > 65535 {
			continue
		}
		lb, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		if err != nil {
			continue
		}
		_ = lb.Close()
		return port, nil
	}
	return 0, errors.New("no free port pair")
}

// do sends one RESP command to addr (over TLS when tc is set) and reads one
// reply.
func do(addr string, tc *tls.Config, timeout time.Duration, args ...string) (string, error) {
	var conn net.Conn
	var err error
	d := &net.Dialer{Timeout: timeout}
	if tc != nil {
		conn, err = tls.DialWithDialer(d, "tcp", addr, tc)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

// readReply reads one RESP2 reply; arrays are flattened one element a line.
func readReply(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("redistest: empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("redistest: bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("redistest: bad array length %q", line)
		}
		elems := make([]string, 0, max(n, 0))
		for range n {
			e, err := readReply(rd)
			if err != nil {
				return "", err
			}
			elems = append(elems, e)
		}
		return strings.Join(elems, "\n"), nil
	default:
		return "", fmt.Errorf("redistest: unsupported reply %q", line)
	}
}
