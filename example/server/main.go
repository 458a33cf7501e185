// Command server serves Calc and announces it in Redis, for running seedrpc
// across processes or machines. Start as many as you like, then call them
// with example/client:
//
//	go run ./example/server -listen 127.0.0.1:9001 -meta zone=a
//	go run ./example/server -listen 0.0.0.0:9002 -advertise 10.0.0.5:9002 -weight 3
//	go run ./example/client -n 10
//
// SIGINT or SIGTERM shuts it down gracefully: it leaves the registry, tells
// its clients it is draining, finishes the calls in flight and exits. A
// second signal during that time kills it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc"
	"github.com/seedrpc/rpc/example/calc"
	"github.com/seedrpc/rpc/registry"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "`address` to listen on")
	advertise := flag.String("advertise", "", "`address` clients dial, registered in Redis (default: the listener's; required when listening on 0.0.0.0 or [::])")
	redisAddr := flag.String("redis", envOr("REDIS_ADDR", "127.0.0.1:6379"), "Redis `address`; $REDIS_ADDR sets the default")
	weight := flag.Int("weight", 1, "instance weight for weighted balancers")
	meta := metaFlag{}
	flag.Var(meta, "meta", "instance label `key=value` (repeatable), e.g. -meta zone=a")
	name := flag.String("name", "", "name in Calc replies (default: the advertised address)")
	ttl := flag.Duration("ttl", 10*time.Second, "registry TTL: if this process dies, clients stop seeing it within the TTL")
	grace := flag.Duration("grace", 30*time.Second, "longest wait for calls in flight on shutdown")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := serve(log, *listen, *advertise, *redisAddr, *weight, meta, *name, *ttl, *grace)
	if err != nil {
		log.Error("server failed", "err", err)
		os.Exit(1)
	}
}

func serve(log *slog.Logger, listen, advertise, redisAddr string, weight int, meta metaFlag, name string, ttl, grace time.Duration) error {
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	reg := registry.NewRedis(rdb, registry.WithTTL(ttl), registry.WithLogger(log))
	defer reg.Close()

	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	adv := advertise
	if adv == "" {
		adv = lis.Addr().String()
	}
	if name == "" {
		name = adv
	}
	srv := rpc.NewServer(rpc.WithRegistry(reg), rpc.WithLogger(log),
		rpc.WithInstance(registry.Instance{Addr: advertise, Weight: weight, Meta: meta}))
	observe := func(e calc.Event) { log.Info("calc event", "method", e.Method, "text", e.Text) }
	if err := srv.Register(calc.New(name, observe)); err != nil {
		lis.Close()
		return err
	}

	// The shape of net/http's ExampleServer_Shutdown: Serve until a signal,
	// then Shutdown, and wait for Serve to return.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	log.Info("starting Calc server", "listen", lis.Addr().String(), "advertise", adv, "name", name,
		"redis", redisAddr, "weight", weight, "meta", meta.String(), "ttl", ttl)
	select {
	case err := <-served: // it never started: Redis unreachable, unspecified address, ...
		srv.Close()
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills the process at once
	log.Info("shutting down: deregistering, draining connections", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, rpc.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err == nil {
		log.Info("shut down cleanly")
	}
	return err
}

// metaFlag collects -meta key=value flags.
type metaFlag map[string]string

func (m metaFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, have %q", s)
	}
	m[k] = v
	return nil
}

func (m metaFlag) String() string {
	kv := make([]string, 0, len(m))
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// envOr returns the environment variable key, or def when it is empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
