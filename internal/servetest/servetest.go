// Package servetest serves a seedrpc server on loopback for the tests of
// the packages and modules beside the root one.
package servetest

import (
	"errors"
	"net"
	"testing"
	"time"

	rpc "github.com/seedrpc/rpc"
)

// closeTimeout bounds how long Serve may take to return after Close.
const closeTimeout = 5 * time.Second

// Serve serves srv on a free port of 127.0.0.1 until the test ends, then
// closes it and checks that Serve returned ErrServerClosed in time. It
// returns the address served.
func Serve(t testing.TB, srv *rpc.Server) string {
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
			if !errors.Is(err, rpc.ErrServerClosed) {
				t.Errorf("Serve() = %v, want ErrServerClosed", err)
			}
		case <-time.After(closeTimeout):
			t.Errorf("Serve did not return within %v of Close", closeTimeout)
		}
	})
	return lis.Addr().String()
}
