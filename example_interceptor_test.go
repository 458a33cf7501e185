package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/seedrpc/rpc"
)

// Users is an example service with a coded error.
type Users struct{}

// Get finds a user by id.
func (Users) Get(ctx context.Context, id int, name *string) error {
	if id != 1 {
		return rpc.Errorf(404, "no user %d", id)
	}
	*name = "ada"
	return nil
}

// A server interceptor checks a request header before the args are even
// decoded and sets a response header; a client interceptor adds the header
// to every call. Errorf's code reaches the caller.
func ExampleWithServerInterceptor() {
	auth := func(ctx context.Context, req *rpc.Request, next rpc.Handler) (any, error) {
		if req.Header["tenant"] == "" {
			return nil, rpc.ErrUnauthenticated // the args are never decoded
		}
		rpc.SetHeader(ctx, "served-for", req.Header["tenant"])
		return next(ctx, req)
	}
	srv := rpc.NewServer(rpc.WithServerInterceptor(auth))
	if err := srv.Register(Users{}); err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Close()

	plain, err := rpc.Dial("tcp", lis.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer plain.Close()
	var name string
	err = plain.Call("Users.Get", 1, &name)
	fmt.Println("without a tenant:", errors.Is(err, rpc.ErrUnauthenticated))

	tenant := func(ctx context.Context, call *rpc.Call, next rpc.Invoker) error {
		call.Header["tenant"] = "acme"
		return next(ctx, call)
	}
	cli, err := rpc.Dial("tcp", lis.Addr().String(), rpc.WithClientInterceptor(tenant))
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	var hdr map[string]string
	err = cli.Call("Users.Get", 1, &name, rpc.WithResponseHeader(&hdr))
	fmt.Println(name, err, hdr["served-for"])

	err = cli.Call("Users.Get", 2, &name)
	var e *rpc.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code, e.Message)
	}
	// Output:
	// without a tenant: true
	// ada <nil> acme
	// 404 no user 2
}
