package main

import (
	"fmt"
	"net"
	"sort"
	"strings"
)

// server is the serving side of one system, run in the child process.
type server interface {
	// Serve accepts connections on lis until Close. It returns when lis is
	// closed.
	Serve(lis net.Listener) error
	// Close stops the server and closes its connections.
	Close() error
}

// client is the calling side of one system, run in the harness process.
type client interface {
	// Call sends req and decodes the echo into reply. caller is the index
	// (0..callers-1) of the calling goroutine: systems that give each caller
	// its own connection or state use it; it is never used by two goroutines
	// at once.
	Call(caller int, req, reply *BenchmarkMessage) error
	// Close closes every connection of the client.
	Close() error
}

// dialConfig is what a client of any system is built from.
type dialConfig struct {
	addr     string
	conns    int       // connections for pooled/multiplexed systems
	callers  int       // number of calling goroutines
	rawCodec codecMode // what the raw systems do with the message (-rawcodec)
}

// system is one RPC stack under test.
type system struct {
	name string
	// newServer builds the server side (in the child process).
	newServer func(rawCodec codecMode) (server, error)
	// dial builds the client side (in the harness process).
	dial func(cfg dialConfig) (client, error)
	// describe is one line for the table footer and the docs.
	describe string
}

// systems returns every system in the order they are run.
func systems() []system {
	return []system{
		seedrpcSystem(),
		netrpcGobSystem(),
		netrpcMsgpackSystem(),
		grpcMsgpackSystem(),
		rawTCPSystem(),
		rawMuxSystem(),
	}
}

// extraSystems are variants run only when named in -systems.
func extraSystems() []system {
	return []system{
		seedrpcInterceptedSystem(),
		seedrpcTypedSystem(),
		seedrpcJSONSystem(),
	}
}

// lookupSystems resolves a comma-separated list of names ("" or "all" means
// every system but the extra ones).
func lookupSystems(list string) ([]system, error) {
	all := systems()
	if list == "" || list == "all" {
		return all, nil
	}
	all = append(all, extraSystems()...)
	byName := make(map[string]system, len(all))
	names := make([]string, 0, len(all))
	for _, s := range all {
		byName[s.name] = s
		names = append(names, s.name)
	}
	var out []system
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		s, ok := byName[n]
		if !ok {
			sort.Strings(names)
			return nil, fmt.Errorf("bench: unknown system %q (have %s)", n, strings.Join(names, ", "))
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: no system selected")
	}
	return out, nil
}

// lookupSystem returns the system called name, including the serve-only
// systems of the large-message modes.
func lookupSystem(name string) (system, error) {
	for _, s := range largeSystems() {
		if s.name == name {
			return s, nil
		}
	}
	ss, err := lookupSystems(name)
	if err != nil {
		return system{}, err
	}
	if len(ss) != 1 {
		return system{}, fmt.Errorf("bench: -serve takes one system, got %q", name)
	}
	return ss[0], nil
}
