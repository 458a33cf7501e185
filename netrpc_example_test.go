package rpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	netrpc "net/rpc"
	"time"

	"github.com/seedrpc/rpc"
)

// Adder is a service with the one method form net/rpc knows.
type Adder struct{}

// Add adds.
func (Adder) Add(args ArithArgs, reply *int) error {
	*reply = args.A + args.B
	return nil
}

// A seedrpc server answers a client of the standard library's net/rpc on
// the same listener as its own clients: old clients keep working while the
// servers move to seedrpc.
func ExampleServer_netRPCClient() {
	srv := rpc.NewServer()
	if err := srv.Register(&Arith{}); err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}()

	old, err := netrpc.Dial("tcp", lis.Addr().String()) // net/rpc, gob
	if err != nil {
		log.Fatal(err)
	}
	defer old.Close()
	var sum int
	if err := old.Call("Arith.Add", ArithArgs{A: 1, B: 2}, &sum); err != nil {
		log.Fatal(err)
	}
	fmt.Println("net/rpc client: 1 + 2 =", sum)

	cli, err := rpc.Dial("tcp", lis.Addr().String()) // seedrpc
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	if err := cli.Call("Arith.Add", ArithArgs{A: 3, B: 4}, &sum); err != nil {
		log.Fatal(err)
	}
	fmt.Println("seedrpc client: 3 + 4 =", sum)
	// Output:
	// net/rpc client: 1 + 2 = 3
	// seedrpc client: 3 + 4 = 7
}

// A seedrpc client calls a server that still runs the standard library's
// net/rpc, with WithNetRPC.
func ExampleWithNetRPC() {
	old := netrpc.NewServer()
	if err := old.RegisterName("Arith", Adder{}); err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	conns := make(chan net.Conn, 1)
	go func() { // net/rpc's Accept, serving the one connection below
		nc, err := lis.Accept()
		if err != nil {
			log.Fatal(err)
		}
		conns <- nc
		old.ServeConn(nc)
	}()

	cli, err := rpc.Dial("tcp", lis.Addr().String(), rpc.WithNetRPC(), rpc.WithTimeout(5*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	var sum int
	if err := cli.Call("Arith.Add", ArithArgs{A: 1, B: 2}, &sum); err != nil {
		log.Fatal(err)
	}
	fmt.Println("1 + 2 =", sum)
	err = cli.Call("Arith.Nope", ArithArgs{}, &sum)
	fmt.Println(err)

	cli.Close()
	lis.Close()
	(<-conns).Close()
	// Output:
	// 1 + 2 = 3
	// rpc: can't find method Arith.Nope
}
