package main

import (
	rpc "github.com/seedrpc/rpc"
	"github.com/seedrpc/rpc/codec"
)

// seedrpc-json: seedrpc as in seedrpcSystem, with the client encoding its
// calls with the JSON codec (rpc.WithCodec(codec.JSON{})); the server
// answers in the codec each call came in. It measures the JSON codec
// against the peers, and is not part of "all": name it in -systems.

func seedrpcJSONSystem() system {
	s := seedrpcSystem()
	s.name = "seedrpc-json"
	s.dial = func(cfg dialConfig) (client, error) {
		cli, err := rpc.Dial("tcp", cfg.addr, rpc.WithPoolSize(cfg.conns), rpc.WithCodec(codec.JSON{}))
		if err != nil {
			return nil, err
		}
		return seedClient{cli}, nil
	}
	s.describe = "seedrpc with the JSON codec (rpc.WithCodec(codec.JSON{})), ctx-first handler, -conns pooled multiplexed connections"
	return s
}
