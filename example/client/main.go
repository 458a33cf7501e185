// Command client discovers the Calc servers registered in Redis (see
// example/server) and calls them, printing which server answered each call:
//
//	go run ./example/client -n 10
//	go run ./example/client -balancer weighted -n 20
//	go run ./example/client -balancer hash -n 8        # one key stays on one server
//	go run ./example/client -n 600 -interval 100ms     # stop a server meanwhile
//
// It exits 1 if any call failed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc"
	"github.com/seedrpc/rpc/example/calc"
	"github.com/seedrpc/rpc/lb"
	"github.com/seedrpc/rpc/registry"
)

// balancerNamed returns the balancer of a -balancer value.
func balancerNamed(name string) (lb.Balancer, bool) {
	switch name {
	case "random":
		return lb.Random(), true
	case "roundrobin":
		return lb.RoundRobin(), true
	case "weighted":
		return lb.WeightedRoundRobin(), true
	case "hash":
		return lb.ConsistentHash(), true
	case "leastloaded":
		return lb.LeastLoaded(), true
	}
	return nil, false
}

func main() {
	redisAddr := flag.String("redis", envOr("REDIS_ADDR", "127.0.0.1:6379"), "Redis `address`; $REDIS_ADDR sets the default")
	balancer := flag.String("balancer", "roundrobin", "random, roundrobin, weighted, hash (key \"user-<i mod 4>\") or leastloaded")
	n := flag.Int("n", 10, "number of calls")
	timeout := flag.Duration("timeout", 2*time.Second, "per-call timeout")
	interval := flag.Duration("interval", 0, "pause between calls")
	flag.Parse()
	b, ok := balancerNamed(*balancer)
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown -balancer %q\n", *balancer)
		flag.Usage()
		os.Exit(2)
	}
	failed, err := call(*redisAddr, b, *balancer == "hash", *n, *timeout, *interval)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

// call makes n calls and reports how many failed.
func call(redisAddr string, b lb.Balancer, hash bool, n int, timeout, interval time.Duration) (failed int, err error) {
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	reg := registry.NewRedis(rdb)
	defer reg.Close()
	cli, err := rpc.NewClient(rpc.WithRegistry(reg), rpc.WithBalancer(b), rpc.WithTimeout(timeout))
	if err != nil {
		return 0, err
	}
	defer cli.Close()

	by := map[string]int{}
	for i := range n {
		if i > 0 && interval > 0 {
			time.Sleep(interval)
		}
		opts := []rpc.CallOption{}
		key := ""
		if hash {
			key = fmt.Sprintf("user-%d", i%4)
			opts = append(opts, rpc.WithHashKey(key))
		}
		args := calc.Args{A: i, B: i + 1}
		var r calc.Reply
		start := time.Now()
		err := cli.Call("Calc.Add", args, &r, opts...)
		took := time.Since(start).Round(10 * time.Microsecond)
		if key != "" {
			key = " key " + key
		}
		if err != nil {
			failed++
			fmt.Printf("call %d%s: Calc.Add(%d, %d) failed after %v: %v\n", i+1, key, args.A, args.B, took, err)
			if errors.Is(err, rpc.ErrNoInstances) {
				fmt.Println("  (no Calc server is registered: start one with go run ./example/server)")
			}
			continue
		}
		by[r.Server]++
		fmt.Printf("call %d%s: Calc.Add(%d, %d) = %d answered by %s in %v\n", i+1, key, args.A, args.B, r.Value, r.Server, took)
	}
	servers := make([]string, 0, len(by))
	for s, c := range by {
		servers = append(servers, fmt.Sprintf("%s (%d)", s, c))
	}
	sort.Strings(servers)
	fmt.Printf("%d calls with %s: %d ok, %d failed; answered by %s\n", n, b.Name(), n-failed, failed, strings.Join(servers, ", "))
	return failed, nil
}

// envOr returns the environment variable key, or def when it is empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
