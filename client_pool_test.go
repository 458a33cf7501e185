package rpc

import (
	"errors"
	"net"
	"testing"
	"time"
)

func TestRedialAfterRestart(t *testing.T) {
	lis := listenLoopback(t)
	addr := lis.Addr().String()
	srv := NewServer()
	calc := &Calc{}
	if err := srv.Register(calc); err != nil {
		t.Fatal(err)
	}
	errc := serve(srv, lis)
	cli, err := Dial("tcp", addr, WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil {
		t.Fatalf("Call before restart = %v", err)
	}
	pending := cli.Go("Calc.Sleep", 30*time.Second, new(int), nil)
	waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() == 1 })
	srv.Close()
	recvErr(t, errc, "Serve")
	waitCall(t, pending, 5*time.Second)
	if !errors.Is(pending.Error, ErrShutdown) {
		t.Errorf("pending call across restart error = %v, want ErrShutdown", pending.Error)
	}

	// Restart on the same port.
	var lis2 net.Listener
	waitFor(t, "the port to be free", func() bool {
		lis2, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv2 := NewServer()
	if err := srv2.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	errc2 := serve(srv2, lis2)
	defer func() {
		srv2.Close()
		recvErr(t, errc2, "Serve")
	}()
	if err := cli.Call("Calc.Add", Args{2, 3}, &sum, WithTimeout(5*time.Second)); err != nil || sum != 5 {
		t.Fatalf("Call after restart = %d, %v; want 5, nil", sum, err)
	}
}
