//go:build !seedrpc

package main

import "errors"

// Temporary stand-in while the root package is being written; removed once
// the root compiles.
func seedrpcSystem() system {
	err := errors.New("bench: seedrpc not built (build with -tags seedrpc)")
	return system{
		name:      "seedrpc",
		newServer: func(bool) (server, error) { return nil, err },
		dial:      func(dialConfig) (client, error) { return nil, err },
	}
}
