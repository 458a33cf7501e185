// Command example is seedrpc's demo. Three Calc servers announce themselves
// in Redis; a client discovers them and calls them in all four styles, with
// round robin, a handler error and a per-call timeout; then one server shuts
// down gracefully and another crashes while calls carry on.
//
//	go run ./example                        # Redis at $REDIS_ADDR, else an in-process miniredis
//	go run ./example -redis 127.0.0.1:6379 -calls 1000 -ttl 3s -v
//
// It exits 0 when every claim it prints held, 1 otherwise.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc"
	"github.com/seedrpc/rpc/example/calc"
	"github.com/seedrpc/rpc/lb"
	"github.com/seedrpc/rpc/registry"
)

// config is what the flags set.
type config struct {
	redisAddr string        // Redis to use; "" starts an in-process miniredis
	redisFrom string        // where redisAddr came from, for the output
	calls     int           // calls made around each server's departure
	ttl       time.Duration // registry TTL
	log       *slog.Logger  // background logs of servers, client, registry; nil discards
}

func main() {
	cfg := config{redisAddr: os.Getenv("REDIS_ADDR"), redisFrom: "REDIS_ADDR"}
	flag.StringVar(&cfg.redisAddr, "redis", cfg.redisAddr, "Redis `address` (default $REDIS_ADDR; if both are empty, an in-process miniredis)")
	flag.IntVar(&cfg.calls, "calls", 400, "calls made by 4 concurrent callers around each server's departure (half before, half after)")
	flag.DurationVar(&cfg.ttl, "ttl", 2*time.Second, "registry TTL: a crashed server leaves Redis within it")
	verbose := flag.Bool("v", false, "log background events (dropped connections, registry) to stderr")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "redis" {
			cfg.redisFrom = "-redis"
		}
	})
	if *verbose {
		cfg.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		stop()
		os.Exit(1)
	}
}

// run is the whole demo; it writes its story to w.
func run(ctx context.Context, w io.Writer, cfg config) error {
	began := time.Now()
	if cfg.calls < 2 || cfg.ttl <= 0 {
		return fmt.Errorf("want -calls >= 2 and -ttl > 0, have %d and %v", cfg.calls, cfg.ttl)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute) // a safety net; every wait is bounded
	defer cancel()

	// Redis, and a key prefix of this run's own, apart from other fleets.
	addr := cfg.redisAddr
	if addr == "" {
		mr := miniredis.NewMiniRedis()
		mr.ClockTTL(true) // keys expire on the wall clock, as in Redis
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("start miniredis: %w", err)
		}
		defer mr.Close()
		addr = mr.Addr()
		fmt.Fprintf(w, "Redis: REDIS_ADDR not set, started an in-process miniredis at %s\n", addr)
	} else {
		fmt.Fprintf(w, "Redis: %s (from %s)\n", addr, cfg.redisFrom)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", addr, err)
	}
	regOpts := []registry.Option{
		registry.WithTTL(cfg.ttl),
		registry.WithPrefix(fmt.Sprintf("seedrpc-demo-%08x", rand.Uint32())),
		registry.WithLogger(cfg.log),
	}

	// Three servers, each registered in Redis by Serve.
	ev := make(events, 64)
	var nodes []*node
	defer func() {
		for _, n := range nodes {
			n.close()
		}
	}()
	var addrs, list []string
	for i := 1; i <= 3; i++ {
		n, err := startNode(fmt.Sprintf("s%d", i), rdb, regOpts, cfg.log, ev.observe)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		addrs = append(addrs, n.addr)
		list = append(list, n.name+" "+n.addr)
	}
	s1, s2, s3 := nodes[0], nodes[1], nodes[2]
	fmt.Fprintf(w, "servers: %s (registry TTL %v)\n", strings.Join(list, ", "), cfg.ttl)

	// A client that finds them in Redis.
	creg := registry.NewRedis(rdb, regOpts...)
	defer creg.Close()
	if _, err := waitInstances(ctx, creg, "Calc", addrs, 5*time.Second); err != nil {
		return err
	}
	cli, err := rpc.NewClient(rpc.WithRegistry(creg), rpc.WithBalancer(lb.RoundRobin()),
		rpc.WithTimeout(2*time.Second), rpc.WithLogger(cfg.log))
	if err != nil {
		return err
	}
	defer cli.Close()
	fmt.Fprintln(w, "client: found 3 instances of Calc in Redis; lb.RoundRobin, default timeout 2s")
	calls := 0

	fmt.Fprintln(w, "\nfour call modes:")
	var r1, r2, r3 calc.Reply
	if err := cli.Call("Calc.Add", calc.Args{A: 2, B: 3}, &r1); err != nil {
		return err
	}
	fmt.Fprintf(w, "  Call      %-20s answered by %s\n", fmt.Sprint("Calc.Add(2, 3) = ", r1.Value), r1.Server)
	if err := wait(ctx, cli.Go("Calc.Mul", calc.Args{A: 4, B: 5}, &r2, nil).Done); err != nil {
		return err
	}
	fmt.Fprintf(w, "  Go        %-20s answered by %s\n", fmt.Sprint("Calc.Mul(4, 5) = ", r2.Value), r2.Server)
	done := make(chan *rpc.Call, 1)
	cli.Callback("Calc.Add", calc.Args{A: 7, B: 8}, &r3, func(c *rpc.Call) { done <- c })
	if err := wait(ctx, done); err != nil {
		return err
	}
	fmt.Fprintf(w, "  Callback  %-20s answered by %s\n", fmt.Sprint("Calc.Add(7, 8) = ", r3.Value), r3.Server)
	if err := cli.Oneway("Calc.Note", calc.Note{Text: "hello"}); err != nil {
		return err
	}
	note, err := ev.wait(ctx, func(e calc.Event) bool { return e.Method == "Note" })
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  Oneway    %-20s received by %s\n", fmt.Sprintf("Calc.Note(%q)", note.Text), note.Server)
	var order []string
	for range 6 {
		var who string
		if err := cli.Call("Calc.Whoami", calc.Empty{}, &who); err != nil {
			return err
		}
		order = append(order, who)
	}
	fmt.Fprintf(w, "round robin: 6 more calls answered by %s\n", strings.Join(order, " "))
	calls += 10

	var r calc.Reply
	err = cli.Call("Calc.Div", calc.Args{A: 1, B: 0}, &r)
	if se := rpc.ServerError(""); !errors.As(err, &se) {
		return fmt.Errorf("Calc.Div(1, 0) = %v, want an rpc.ServerError", err)
	}
	fmt.Fprintf(w, "handler error: Calc.Div(1, 0) returned rpc.ServerError %q\n", err.Error())
	start := time.Now()
	err = cli.Call("Calc.Sleep", calc.SleepArgs{D: 2 * time.Second}, &r, rpc.WithTimeout(50*time.Millisecond))
	took := time.Since(start)
	if !errors.Is(err, rpc.ErrTimeout) {
		return fmt.Errorf("Calc.Sleep(2s) with WithTimeout(50ms) = %v, want rpc.ErrTimeout", err)
	}
	fmt.Fprintf(w, "timeout: Calc.Sleep(2s) with rpc.WithTimeout(50ms) failed after %v: errors.Is(err, rpc.ErrTimeout)\n", took.Round(time.Millisecond))
	gaveUp, err := ev.wait(ctx, func(e calc.Event) bool { return e.Method == "Sleep" && e.Text != "started" })
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "         and the handler on %s saw its ctx end: %s\n", gaveUp.Server, gaveUp.Text)
	calls += 2

	// Graceful: s1 deregisters, drains its connections, finishes its calls.
	fmt.Fprintf(w, "\ngraceful: %s.Shutdown while %d callers run and a 300ms call is in flight on %[1]s\n", s1.name, callers)
	ld := startLoad(cli)
	if err := ld.waitCalls(ctx, int64(cfg.calls/2)); err != nil {
		ld.finish()
		return err
	}
	var slow calc.Reply
	inflight := cli.Go("Calc.Sleep", calc.SleepArgs{D: 300 * time.Millisecond}, &slow, nil, rpc.WithFilter("name", s1.name))
	if _, err := ev.wait(ctx, func(e calc.Event) bool { return e.Server == s1.name && e.Text == "started" }); err != nil {
		ld.finish()
		return err
	}
	start = time.Now()
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	err = s1.srv.Shutdown(sctx)
	scancel()
	took = time.Since(start)
	base := ld.markNow()
	if err == nil {
		err = wait(ctx, inflight.Done)
	}
	if err == nil {
		err = ld.waitCalls(ctx, base+int64(cfg.calls/2))
	}
	n, failed, firstErr, after := ld.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  Shutdown returned after %v; the call in flight finished, answered by %s\n", took.Round(time.Millisecond), slow.Server)
	fmt.Fprintf(w, "  %d calls around it, %d failed; calls started after it went to %s\n", n, failed, after)
	if failed > 0 {
		return fmt.Errorf("%d calls failed around a graceful shutdown; first: %w", failed, firstErr)
	}
	calls += int(n) + 1

	// Crash: s2 vanishes without a word; its instance stays in Redis until
	// the TTL runs out. Calc is idempotent, so the callers allow retries.
	fmt.Fprintf(w, "\ncrash: %s drops its listener and connections, stops heartbeats, no deregister\n", s2.name)
	ld = startLoad(cli, rpc.WithRetries(2))
	if err := ld.waitCalls(ctx, int64(cfg.calls/2)); err != nil {
		ld.finish()
		return err
	}
	crashed := time.Now()
	s2.crash()
	base = ld.markNow()
	err = ld.waitCalls(ctx, base+int64(cfg.calls/2))
	n, failed, firstErr, after = ld.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  %d calls around it with rpc.WithRetries(2), %d failed; calls started after it went to %s\n", n, failed, after)
	if failed > 0 {
		return fmt.Errorf("%d calls failed around a crash; first: %w", failed, firstErr)
	}
	calls += int(n)
	if _, err := waitInstances(ctx, creg, "Calc", []string{s3.addr}, 2*cfg.ttl+2*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(w, "  Redis listed %s for %v after the crash, until its TTL ran out; Calc now: %s\n",
		s2.name, time.Since(crashed).Round(100*time.Millisecond), s3.name)

	fmt.Fprintf(w, "\ndone in %v: %d calls, 0 failed\n", time.Since(began).Round(100*time.Millisecond), calls)
	return nil
}
