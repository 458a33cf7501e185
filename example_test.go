package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"time"

	"github.com/seedrpc/rpc"
)

// Arith is an example service.
type Arith struct {
	logged chan string // receives what Log is sent
}

// ArithArgs are Arith's arguments.
type ArithArgs struct{ A, B int }

// Add has the short method form.
func (t *Arith) Add(args ArithArgs, reply *int) error {
	*reply = args.A + args.B
	return nil
}

// Div has the ctx form and takes its args by pointer.
func (t *Arith) Div(ctx context.Context, args *ArithArgs, reply *float64) error {
	if args.B == 0 {
		return errors.New("divide by zero")
	}
	*reply = float64(args.A) / float64(args.B)
	return nil
}

// Log is called with Oneway.
func (t *Arith) Log(msg string, _ *struct{}) error {
	t.logged <- msg
	return nil
}

// Slow waits for d or until the caller gives up.
func (t *Arith) Slow(ctx context.Context, d time.Duration, reply *int) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startArith serves a fresh Arith on 127.0.0.1 and returns a client of it
// and a function that stops both.
func startArith() (*rpc.Client, *Arith, func()) {
	srv := rpc.NewServer()
	arith := &Arith{logged: make(chan string, 1)}
	if err := srv.Register(arith); err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	cli, err := rpc.Dial("tcp", lis.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	return cli, arith, func() {
		cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}
}

func ExampleServer_Register() {
	srv := rpc.NewServer()
	if err := srv.Register(&Arith{}); err != nil { // service "Arith"
		log.Fatal(err)
	}
	err := srv.Register(&Arith{})
	fmt.Println("second Register:", err)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Serve:", <-served)
	// Output:
	// second Register: rpc: service "Arith" already registered
	// Serve: rpc: server closed
}

func ExampleClient_Call() {
	cli, _, stop := startArith()
	defer stop()

	var sum int
	if err := cli.Call("Arith.Add", ArithArgs{A: 1, B: 2}, &sum); err != nil {
		log.Fatal(err)
	}
	fmt.Println("1 + 2 =", sum)

	var q float64
	err := cli.Call("Arith.Div", ArithArgs{A: 1, B: 0}, &q)
	var se rpc.ServerError
	fmt.Println("handler error:", errors.As(err, &se), se)

	err = cli.Call("Arith.Slow", time.Minute, nil, rpc.WithTimeout(20*time.Millisecond))
	fmt.Println("timed out:", errors.Is(err, rpc.ErrTimeout), errors.Is(err, context.DeadlineExceeded))

	err = cli.Call("Arith.Mul", ArithArgs{}, &sum)
	fmt.Println("unknown method:", errors.Is(err, rpc.ErrNoMethod))
	// Output:
	// 1 + 2 = 3
	// handler error: true divide by zero
	// timed out: true true
	// unknown method: true
}

func ExampleClient_Go() {
	cli, _, stop := startArith()
	defer stop()

	var q float64
	call := cli.Go("Arith.Div", &ArithArgs{A: 7, B: 2}, &q, nil) // nil: a new buffered channel
	<-call.Done
	if call.Error != nil {
		log.Fatal(call.Error)
	}
	fmt.Println("7 / 2 =", q)

	// Many calls may share one buffered Done channel.
	done := make(chan *rpc.Call, 3)
	sums := make([]int, 3)
	for i := range sums {
		cli.Go("Arith.Add", ArithArgs{A: i, B: i}, &sums[i], done)
	}
	for range sums {
		if c := <-done; c.Error != nil {
			log.Fatal(c.Error)
		}
	}
	fmt.Println(sums)
	// Output:
	// 7 / 2 = 3.5
	// [0 2 4]
}

func ExampleClient_Callback() {
	cli, _, stop := startArith()
	defer stop()

	var sum int
	finished := make(chan struct{})
	cli.Callback("Arith.Add", ArithArgs{A: 40, B: 2}, &sum, func(c *rpc.Call) {
		defer close(finished)
		fmt.Println(c.ServiceMethod, "=", sum, c.Error)
	})
	<-finished
	// Output:
	// Arith.Add = 42 <nil>
}

func ExampleClient_Oneway() {
	cli, arith, stop := startArith()
	defer stop()

	if err := cli.Oneway("Arith.Log", "hello"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("server logged:", <-arith.logged)
	// Output:
	// server logged: hello
}
