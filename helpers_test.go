package rpc

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/registry"
)

// defaultTestTimeout bounds every wait in the tests.
const defaultTestTimeout = 10 * time.Second

type Args struct{ A, B int }

type Calc struct {
	cancelled atomic.Int32
	started   chan struct{}
}

func (c *Calc) Add(args Args, reply *int) error { *reply = args.A + args.B; return nil }

func (c *Calc) Div(ctx context.Context, args *Args, reply *float64) error {
	if args.B == 0 {
		return errors.New("divide by zero")
	}
	*reply = float64(args.A) / float64(args.B)
	return nil
}

func (c *Calc) Sleep(ctx context.Context, d time.Duration, reply *int) error {
	if c.started != nil {
		select {
		case c.started <- struct{}{}:
		default:
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		*reply = 1
		return nil
	case <-ctx.Done():
		c.cancelled.Add(1)
		return ctx.Err()
	}
}

func (c *Calc) Panic(args int, reply *int) error { panic("boom") }

func (c *Calc) Echo(b []byte, reply *[]byte) error { *reply = b; return nil }

// withMeta labels a server's registered instance with key/value pairs.
func withMeta(kv ...string) ServerOption {
	meta := make(map[string]string)
	for i := 0; i+1 < len(kv); i += 2 {
		meta[kv[i]] = kv[i+1]
	}
	return WithInstance(registry.Instance{Meta: meta})
}

// startServer serves srv on a loopback listener until the test ends.
func startServer(t testing.TB, srv *Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Close()
		select {
		case err := <-errc:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve() = %v, want ErrServerClosed", err)
			}
		case <-time.After(defaultTestTimeout):
			t.Error("Serve did not return after Close")
		}
	})
	return lis.Addr().String()
}

// newCalcPair returns a client connected to a fresh server serving Calc.
func newCalcPair(t testing.TB, sopts []ServerOption, copts ...ClientOption) (*Client, *Calc, *Server) {
	t.Helper()
	srv := NewServer(sopts...)
	calc := &Calc{started: make(chan struct{}, 1)}
	if err := srv.Register(calc); err != nil {
		t.Fatal(err)
	}
	cli, _ := serveAndDial(t, srv, copts...)
	return cli, calc, srv
}

// serveAndDial serves srv on loopback and returns a client of it, both
// stopped when the test ends, and the server's address.
func serveAndDial(t testing.TB, srv *Server, copts ...ClientOption) (*Client, string) {
	t.Helper()
	addr := startServer(t, srv)
	cli, err := Dial("tcp", addr, copts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, addr
}
