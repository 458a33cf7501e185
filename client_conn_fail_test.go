package rpc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// scriptConn is a connection whose writes the test answers one by one
// (bytes taken, error); reads block until it is closed.
type scriptConn struct {
	entered chan int // the length of each Write
	steps   chan scriptStep
	closed  chan struct{}
	once    sync.Once
}

type scriptStep struct {
	n   int
	err error
}

func newScriptConn() *scriptConn {
	return &scriptConn{entered: make(chan int, 8), steps: make(chan scriptStep, 8), closed: make(chan struct{})}
}

func (c *scriptConn) Write(p []byte) (int, error) {
	skip := 0
	if bytes.HasPrefix(p, helloFrame) {
		// The hello a client sends on every new connection: taken at once,
		// so that the script answers the requests alone.
		skip = len(helloFrame)
		if len(p) == skip {
			return skip, nil
		}
		p = p[skip:]
	}
	c.entered <- len(p)
	select {
	case st := <-c.steps:
		return skip + min(st.n, len(p)), st.err
	case <-c.closed:
		return skip, net.ErrClosed
	}
}

func (c *scriptConn) Read(p []byte) (int, error) {
	<-c.closed
	return 0, syscall.ECONNRESET
}

func (c *scriptConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *scriptConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// answerOK serves nc as a server whose every call succeeds with an empty
// reply, until nc is closed.
func answerOK(nc net.Conn) {
	var hb [wire.HeaderSize]byte
	for {
		if _, err := io.ReadFull(nc, hb[:]); err != nil {
			return
		}
		h, err := wire.ParseHeader(hb[:], wire.DefaultMaxFrameSize)
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, nc, int64(h.PayloadLen())); err != nil {
			return
		}
		out := make([]byte, wire.HeaderSize)
		switch h.Type {
		case wire.TypeRequest:
			wire.PutHeader(out, &wire.Header{Type: wire.TypeResponse, Seq: h.Seq})
		case wire.TypePing:
			wire.PutHeader(out, &wire.Header{Type: wire.TypePong, Seq: h.Seq})
		default:
			continue
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// TestConnFailRetriesUnwritten: when a connection breaks in the middle of
// a write, the call whose request went out whole fails (the server may
// have run it), and the call whose request the kernel never took whole is
// retried like one never sent, although the reader failed the connection
// and the caller had returned from its write.
func TestConnFailRetriesUnwritten(t *testing.T) {
	c, err := newClient("tcp", "fake:1", []ClientOption{WithPoolSize(1)})
	if err != nil {
		t.Fatal(err)
	}
	first := newScriptConn()
	var mu sync.Mutex
	var dials int
	var pipes []net.Conn
	c.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		dials++
		if dials == 1 {
			return first, nil
		}
		cc, sc := net.Pipe()
		pipes = append(pipes, cc, sc)
		go answerOK(sc)
		return cc, nil
	}
	t.Cleanup(func() {
		c.Close()
		mu.Lock()
		for _, p := range pipes {
			p.Close()
		}
		mu.Unlock()
	})

	a := c.Go("Calc.Add", Args{1, 2}, nil, nil, WithTimeout(5*time.Second))
	var n int
	select {
	case n = <-first.entered: // a's request is being written
	case <-time.After(defaultTestTimeout):
		t.Fatal("the first request was never written")
	}
	// b's request queues behind a's write: its caller returns at once.
	b := c.Go("Calc.Add", Args{3, 4}, nil, nil, WithTimeout(5*time.Second))
	waitFor(t, "b to be pending", func() bool {
		cc := c.staticPool.ready()
		return cc == nil || cc.load.Load() == 2
	})
	first.steps <- scriptStep{n: n}                          // a's request goes out whole
	first.steps <- scriptStep{n: 5, err: syscall.ECONNRESET} // b's is cut short: the peer reset
	waitCall(t, a, defaultTestTimeout)
	waitCall(t, b, defaultTestTimeout)
	if !errors.Is(a.Error, ErrShutdown) {
		t.Errorf("call whose request went out whole: error %v, want ErrShutdown", a.Error)
	}
	if b.Error != nil {
		t.Errorf("call whose request was cut short: error %v, want it retried and answered", b.Error)
	}
	mu.Lock()
	defer mu.Unlock()
	if dials != 2 {
		t.Errorf("%d dials, want 2 (the broken connection and the retry's)", dials)
	}
}
