package middleware

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/servetest"

	rpc "github.com/seedrpc/rpc"
)

// testTimeout bounds every call and wait in the tests.
const testTimeout = 10 * time.Second

// Echo is the service under governance; it counts the calls that reached
// it.
type Echo struct{ calls atomic.Int32 }

// Say returns s.
func (e *Echo) Say(s string, reply *string) error { e.calls.Add(1); *reply = s; return nil }

// Secret returns s too, under another name for the ACL.
func (e *Echo) Secret(s string, reply *string) error { e.calls.Add(1); *reply = s; return nil }

// Whoami returns the identity TokenAuth's verify put in ctx.
func (e *Echo) Whoami(ctx context.Context, _ string, reply *string) error {
	e.calls.Add(1)
	*reply, _ = ctx.Value(identityKey{}).(string)
	return nil
}

// Panic panics.
func (e *Echo) Panic(string, *string) error { panic("echo boom") }

type identityKey struct{}

// serve starts a server with sopts serving Echo on loopback and returns it
// and its address; both are closed when the test ends.
func serve(t *testing.T, sopts ...rpc.ServerOption) (*Echo, string) {
	t.Helper()
	srv := rpc.NewServer(sopts...)
	e := &Echo{}
	if err := srv.Register(e); err != nil {
		t.Fatal(err)
	}
	return e, servetest.Serve(t, srv)
}

// dial returns a client of addr, closed when the test ends.
func dial(t *testing.T, addr string, copts ...rpc.ClientOption) *rpc.Client {
	t.Helper()
	cli, err := rpc.Dial("tcp", addr, append([]rpc.ClientOption{rpc.WithTimeout(testTimeout)}, copts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// say calls Echo.Say and checks the echo when it succeeds.
func say(t *testing.T, cli *rpc.Client, opts ...rpc.CallOption) error {
	t.Helper()
	var got string
	err := cli.Call("Echo.Say", "hi", &got, opts...)
	if err == nil && got != "hi" {
		t.Errorf("Echo.Say(hi) = %q, want hi", got)
	}
	return err
}

// stubNext is a Handler that counts its calls.
type stubNext struct{ n atomic.Int32 }

func (s *stubNext) handle(context.Context, *rpc.Request) (any, error) {
	s.n.Add(1)
	return "ok", nil
}

// syncBuffer is a goroutine-safe buffer for slog handlers.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
