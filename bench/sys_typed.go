package main

import (
	"context"

	rpc "github.com/seedrpc/rpc"
)

// seedrpc-typed: seedrpc as in seedrpcSystem, through the typed API on
// both sides: the handler is a function given to rpc.HandleFunc, the client
// calls through an rpc.Method (schema check included: once per connection
// pool, then a map lookup per call). It is not part of "all": name it in
// -systems next to seedrpc to compare the two.

func seedrpcTypedSystem() system {
	return system{
		name: "seedrpc-typed",
		newServer: func(codecMode) (server, error) {
			s := rpc.NewServer()
			err := rpc.HandleFunc(s, "Echo.Echo", func(_ context.Context, m *BenchmarkMessage) (BenchmarkMessage, error) {
				return *m, nil
			})
			if err != nil {
				return nil, err
			}
			return seedServer{s}, nil
		},
		dial: func(cfg dialConfig) (client, error) {
			cli, err := rpc.Dial("tcp", cfg.addr, rpc.WithPoolSize(cfg.conns))
			if err != nil {
				return nil, err
			}
			return seedTypedClient{cli, rpc.NewMethod[*BenchmarkMessage, BenchmarkMessage](cli, "Echo.Echo")}, nil
		},
		describe: "seedrpc through rpc.HandleFunc and rpc.NewMethod (typed calls, schema checked)",
	}
}

type seedTypedClient struct {
	c    *rpc.Client
	echo *rpc.Method[*BenchmarkMessage, BenchmarkMessage]
}

func (c seedTypedClient) Call(_ int, req, reply *BenchmarkMessage) error {
	resp, err := c.echo.Call(context.Background(), req)
	*reply = resp
	return err
}

func (c seedTypedClient) Close() error { return c.c.Close() }
