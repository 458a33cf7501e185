package rpc

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpProxy forwards TCP connections to a target and misbehaves on demand.
// It counts the bytes it forwards each way (up: to the target), can
// throttle them, freeze every connection (stop forwarding while keeping
// the sockets open, like a silently partitioned peer), stall or kill one
// connection (numbered in the order accepted), and cut them all while it
// keeps accepting new ones.
type tcpProxy struct {
	lis    net.Listener
	target string
	small  bool // small socket buffers: a held transfer waits in its sender

	up, down atomic.Int64 // bytes forwarded to the target / back
	throttle atomic.Int64 // bytes per ms each way; 0: none
	frozen   atomic.Bool  // every connection holds its bytes
	accepted atomic.Int32 // connections accepted
	live     atomic.Int32 // connections open on the client side

	stop chan struct{} // closed by close
	wg   sync.WaitGroup

	mu    sync.Mutex // guards links, closed
	links []*proxyLink
	// closed is set by close.
	closed bool
}

// proxyLink is one proxied connection.
type proxyLink struct {
	in, out net.Conn
	stalled atomic.Bool   // holds its bytes, both ways
	dead    chan struct{} // closed by kill
	once    sync.Once
}

// newProxy starts a proxy to target on loopback until the test ends.
func newProxy(t testing.TB, target string, smallBuffers bool) *tcpProxy {
	t.Helper()
	p := &tcpProxy{lis: listenLoopback(t), target: target, small: smallBuffers, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// newCountProxy is a proxy whose small socket buffers make a throttled
// transfer wait mostly in its sender rather than in the kernel.
func newCountProxy(t testing.TB, target string) *tcpProxy { return newProxy(t, target, true) }

// newStallProxy is a proxy whose small socket buffers make a stalled
// transfer wait in its sender.
func newStallProxy(t testing.TB, target string) *tcpProxy { return newProxy(t, target, true) }

// newFreezeProxy is a proxy with the kernel's default socket buffers.
func newFreezeProxy(t testing.TB, target string) *tcpProxy { return newProxy(t, target, false) }

// proxiedCalc serves a Calc on loopback and returns a client of it that
// reaches it through a freeze proxy; all are stopped when the test ends.
func proxiedCalc(t testing.TB, copts ...ClientOption) (*Client, *Calc, *tcpProxy) {
	t.Helper()
	srv := NewServer()
	calc := &Calc{}
	if err := srv.Register(calc); err != nil {
		t.Fatal(err)
	}
	proxy := newFreezeProxy(t, startServer(t, srv))
	cli, err := Dial("tcp", proxy.addr(), copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, calc, proxy
}

func (p *tcpProxy) addr() string { return p.lis.Addr().String() }

func (p *tcpProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		if p.small {
			for _, c := range []net.Conn{in, out} {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetReadBuffer(64 << 10)
					_ = tc.SetWriteBuffer(64 << 10)
				}
			}
		}
		l := &proxyLink{in: in, out: out, dead: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		p.links = append(p.links, l)
		p.mu.Unlock()
		p.accepted.Add(1)
		p.live.Add(1)
		var pipes sync.WaitGroup
		pipes.Add(2)
		p.wg.Add(3)
		go func() { defer p.wg.Done(); defer pipes.Done(); p.pipe(l, out, in, &p.up) }()
		go func() { defer p.wg.Done(); defer pipes.Done(); p.pipe(l, in, out, &p.down) }()
		go func() { defer p.wg.Done(); pipes.Wait(); p.live.Add(-1) }()
	}
}

// pipe copies src to dst, holding the bytes while the proxy is frozen or
// l stalled, and counts them in n before forwarding them (the peer may
// answer at once). Its reads are small, so that a stall or a freeze takes
// effect soon.
func (p *tcpProxy) pipe(l *proxyLink, dst, src net.Conn, n *atomic.Int64) {
	defer l.kill()
	buf := make([]byte, 4<<10)
	for {
		if !p.waitFlowing(l) {
			return
		}
		lim := len(buf)
		if tr := p.throttle.Load(); tr > 0 {
			lim = int(min(tr, int64(len(buf))))
			time.Sleep(time.Millisecond)
		}
		k, err := src.Read(buf[:lim])
		if k > 0 {
			if !p.waitFlowing(l) {
				return
			}
			n.Add(int64(k))
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitFlowing waits while the proxy is frozen or l stalled; false means l
// or the proxy was closed meanwhile.
func (p *tcpProxy) waitFlowing(l *proxyLink) bool {
	for p.frozen.Load() || l.stalled.Load() {
		select {
		case <-l.dead:
			return false
		case <-p.stop:
			return false
		case <-time.After(time.Millisecond):
		}
	}
	return true
}

// kill closes both sides of l and releases its pipes.
func (l *proxyLink) kill() {
	l.once.Do(func() {
		l.in.Close()
		l.out.Close()
		close(l.dead)
	})
}

// link returns the i-th connection accepted (from 0).
func (p *tcpProxy) link(i int) *proxyLink {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.links[i]
}

// cut closes every proxied connection; the proxy keeps accepting new ones.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	links := p.links
	p.mu.Unlock()
	for _, l := range links {
		l.kill()
	}
}

func (p *tcpProxy) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	links := p.links
	p.mu.Unlock()
	close(p.stop)
	p.lis.Close()
	for _, l := range links {
		l.kill()
	}
	p.wg.Wait()
}

func TestFreezeProxy(t *testing.T) {
	// The proxy itself: bytes pass when thawed and are held when frozen.
	echo := listenLoopback(t)
	defer echo.Close()
	go func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	p := newFreezeProxy(t, echo.Addr().String())
	c, err := net.Dial("tcp", p.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	c.Write([]byte("hi"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("echo through proxy = %q, %v", buf, err)
	}
	p.frozen.Store(true) // the pipes check it again after every read
	c.Write([]byte("yo"))
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := c.Read(buf); n != 0 || err == nil {
		t.Fatalf("read through a frozen proxy = %d, %v; want a timeout", n, err)
	}
	p.frozen.Store(false)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "yo" {
		t.Fatalf("echo after thaw = %q, %v", buf, err)
	}
}
