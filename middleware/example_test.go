package middleware_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	rpc "github.com/seedrpc/rpc"
	"github.com/seedrpc/rpc/middleware"
	"golang.org/x/time/rate"
)

// Clock is an example service.
type Clock struct{}

// Now returns a fixed time.
func (Clock) Now(_ int, reply *string) error { *reply = "12:00"; return nil }

// Token auth, an allow list and a rate limit in front of a service.
func Example() {
	acl, err := middleware.ACL(
		middleware.Rule{Allow: true, Nets: []string{"127.0.0.0/8", "10.0.0.0/8"}},
	)
	if err != nil {
		log.Fatal(err)
	}
	srv := rpc.NewServer(rpc.WithServerInterceptor(
		acl,
		middleware.TokenAuth("authorization", middleware.StaticTokens("s3cret")),
		middleware.RateLimit(rate.Every(time.Minute), 2, middleware.PerPeer(10000)),
	))
	if err := srv.Register(Clock{}); err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Close()

	cli, err := rpc.Dial("tcp", lis.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	var now string
	err = cli.Call("Clock.Now", 0, &now)
	fmt.Println("no token:", errors.Is(err, rpc.ErrUnauthenticated))
	for range 3 { // a burst of 2, then one a minute
		err = cli.Call("Clock.Now", 0, &now, rpc.WithHeader("authorization", "s3cret"))
		fmt.Println(now, err == nil, errors.Is(err, rpc.ErrOverloaded))
	}
	// Output:
	// no token: true
	// 12:00 true false
	// 12:00 true false
	// 12:00 false true
}
