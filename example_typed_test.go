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

// serveOn serves srv on 127.0.0.1 and returns a client of it and a
// function that stops both.
func serveOn(srv *rpc.Server) (*rpc.Client, func()) {
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
	return cli, func() {
		cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	}
}

func ExampleNewMethod() {
	cli, _, stop := startArith()
	defer stop()
	ctx := context.Background()

	add := rpc.NewMethod[ArithArgs, int](cli, "Arith.Add") // make once, use anywhere
	sum, err := add.Call(ctx, ArithArgs{A: 1, B: 2})
	fmt.Println("Call:", sum, err)

	f := add.Go(ctx, ArithArgs{A: 3, B: 4}) // a Future[int]
	sum, err = f.Await(ctx)                 // or <-f.Done(), then f.Result()
	fmt.Println("Go:", sum, err)

	done := make(chan struct{})
	add.Callback(ctx, ArithArgs{A: 5, B: 6}, func(sum int, err error) {
		defer close(done)
		fmt.Println("Callback:", sum, err)
	})
	<-done

	// Types that drifted from the server's are caught before the call is
	// sent: here A was renamed X.
	type oldArgs struct{ X, B int }
	_, err = rpc.NewMethod[oldArgs, int](cli, "Arith.Add").Call(ctx, oldArgs{X: 1, B: 2})
	fmt.Println(errors.Is(err, rpc.ErrSchemaMismatch))
	// Output:
	// Call: 3 <nil>
	// Go: 7 <nil>
	// Callback: 11 <nil>
	// true
}

func ExampleHandleFunc() {
	type Greeting struct {
		Name string
		Lang string `msgpack:",omitempty"` // optional: older clients may not send it
	}
	srv := rpc.NewServer()
	err := rpc.HandleFunc(srv, "Greeter.Hello", func(ctx context.Context, g Greeting) (string, error) {
		if g.Lang == "fr" {
			return "bonjour " + g.Name, nil
		}
		return "hello " + g.Name, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rpc.HandleFunc(srv, "Greeter.Hello", func(context.Context, Greeting) (string, error) { return "", nil }))
	fmt.Println(rpc.HandleFunc(srv, "Hello", func(context.Context, Greeting) (string, error) { return "", nil }))

	cli, stop := serveOn(srv)
	defer stop()
	ctx := context.Background()

	// Typed and untyped callers alike; a client type without Lang is
	// compatible, since the server marks Lang optional.
	type OldGreeting struct{ Name string }
	s, err := rpc.NewMethod[OldGreeting, string](cli, "Greeter.Hello").Call(ctx, OldGreeting{"Ada"})
	fmt.Println(s, err)
	var reply string
	err = cli.Call("Greeter.Hello", Greeting{Name: "Ada", Lang: "fr"}, &reply)
	fmt.Println(reply, err)
	// Output:
	// rpc: HandleFunc("Greeter.Hello"): service Greeter already has a method Hello
	// rpc: HandleFunc: malformed method name "Hello", want "Service.Method"
	// hello Ada <nil>
	// bonjour Ada <nil>
}
