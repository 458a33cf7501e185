package main

import (
	"context"

	rpc "github.com/seedrpc/rpc"
)

// seedrpc-ic3: seedrpc as in seedrpcSystem, with a chain of three
// pass-through interceptors on each side (rpc.WithServerInterceptor,
// rpc.WithClientInterceptor), to show what the interceptor seam costs
// against plain seedrpc. It is not part of "all": name it in -systems.

func seedrpcInterceptedSystem() system {
	return system{
		name: "seedrpc-ic3",
		newServer: func(codecMode) (server, error) {
			s := rpc.NewServer(rpc.WithServerInterceptor(passServer, passServer, passServer))
			if err := s.RegisterName("Echo", &SeedEcho{}); err != nil {
				return nil, err
			}
			return seedServer{s}, nil
		},
		dial: func(cfg dialConfig) (client, error) {
			cli, err := rpc.Dial("tcp", cfg.addr, rpc.WithPoolSize(cfg.conns),
				rpc.WithClientInterceptor(passClient, passClient, passClient))
			if err != nil {
				return nil, err
			}
			return seedClient{cli}, nil
		},
		describe: "seedrpc with three pass-through interceptors on the server and three on the client",
	}
}

func passServer(ctx context.Context, req *rpc.Request, next rpc.Handler) (any, error) {
	return next(ctx, req)
}

func passClient(ctx context.Context, call *rpc.Call, next rpc.Invoker) error {
	return next(ctx, call)
}
