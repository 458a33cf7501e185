package main

import (
	"context"
	"net"

	rpc "github.com/seedrpc/rpc"
)

// seedrpc: the library under test with its defaults (msgpack codec), the
// service registered as "Echo" with the ctx-first method form, and a client
// pool of -conns multiplexed connections (rpc.WithPoolSize).

func seedrpcSystem() system {
	return system{
		name: "seedrpc",
		newServer: func(codecMode) (server, error) {
			s := rpc.NewServer()
			if err := s.RegisterName("Echo", &SeedEcho{}); err != nil {
				return nil, err
			}
			return seedServer{s}, nil
		},
		dial: func(cfg dialConfig) (client, error) {
			cli, err := rpc.Dial("tcp", cfg.addr, rpc.WithPoolSize(cfg.conns))
			if err != nil {
				return nil, err
			}
			return seedClient{cli}, nil
		},
		describe: "seedrpc defaults (msgpack), ctx-first handler, -conns pooled multiplexed connections",
	}
}

// SeedEcho is the echo service in seedrpc's ctx-first method form.
type SeedEcho struct{}

// Echo copies args into reply.
func (*SeedEcho) Echo(_ context.Context, args *BenchmarkMessage, reply *BenchmarkMessage) error {
	*reply = *args
	return nil
}

type seedServer struct{ s *rpc.Server }

func (s seedServer) Serve(lis net.Listener) error { return s.s.Serve(lis) }
func (s seedServer) Close() error                 { return s.s.Close() }

type seedClient struct{ c *rpc.Client }

func (c seedClient) Call(_ int, req, reply *BenchmarkMessage) error {
	return c.c.Call("Echo.Echo", req, reply)
}

func (c seedClient) Close() error { return c.c.Close() }
