package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc"
	"github.com/seedrpc/rpc/example/calc"
	"github.com/seedrpc/rpc/registry"
)

// node is one Calc server of the demo. It has a registry handle of its own,
// so that crash can stop its heartbeats without deregistering, exactly as
// when a server process dies.
type node struct {
	name   string
	addr   string
	srv    *rpc.Server
	reg    *registry.Redis
	lis    *crashListener
	served chan error // receives Serve's result
}

// startNode listens on a free loopback port and serves a Calc there,
// registered in Redis through rdb. Serve registers it asynchronously.
func startNode(name string, rdb redis.UniversalClient, regOpts []registry.Option, log *slog.Logger, observe func(calc.Event)) (*node, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	n := &node{
		name:   name,
		addr:   l.Addr().String(),
		reg:    registry.NewRedis(rdb, regOpts...),
		lis:    &crashListener{Listener: l},
		served: make(chan error, 1),
	}
	n.srv = rpc.NewServer(rpc.WithRegistry(n.reg), rpc.WithInstance(registry.Instance{Meta: map[string]string{"name": name}}), rpc.WithLogger(log))
	if err := n.srv.Register(calc.New(name, observe)); err != nil {
		l.Close()
		n.reg.Close()
		return nil, err
	}
	go func() { n.served <- n.srv.Serve(n.lis) }()
	return n, nil
}

// crash makes the server vanish the way a killed process does: its
// heartbeats stop (its instance stays in Redis until the TTL runs out) and
// its listener and connections close at once, with no draining.
func (n *node) crash() {
	n.reg.Close() // stops the heartbeats; does not deregister
	n.lis.crash()
}

// close releases whatever the node still holds and waits for Serve.
func (n *node) close() {
	n.srv.Close()
	<-n.served
	n.reg.Close()
}

// crashListener remembers the connections it accepted so that crash can
// drop them all at once.
type crashListener struct {
	net.Listener

	mu sync.Mutex // guards conns, crashed
	// conns accepted so far.
	conns   []net.Conn
	crashed bool
}

// Accept accepts a connection and remembers it.
func (l *crashListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.crashed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns = append(l.conns, c)
	return c, nil
}

func (l *crashListener) crash() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.crashed = true
	l.Listener.Close()
	for _, c := range l.conns {
		c.Close()
	}
}

// load keeps several callers making Calc.Add calls until finish, and counts
// what happened.
type load struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	calls atomic.Int64 // calls finished
	mark  atomic.Int64 // unix ns: count answers of calls started after it

	mu sync.Mutex // guards the fields below
	// failed counts failed calls; firstErr is the first failure.
	failed   int
	firstErr error
	// after counts, by server, the answers to calls started after mark.
	after map[string]int
}

// callers is how many goroutines a load runs; each pauses between calls.
const (
	callers = 4
	pause   = 500 * time.Microsecond
)

// startLoad starts callers goroutines calling Calc.Add on cli with opts.
func startLoad(cli *rpc.Client, opts ...rpc.CallOption) *load {
	l := &load{stop: make(chan struct{}), after: make(map[string]int)}
	l.mark.Store(time.Now().UnixNano())
	for i := range callers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for j := 0; ; j++ {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now().UnixNano()
				var r calc.Reply
				err := cli.Call("Calc.Add", calc.Args{A: i, B: j}, &r, opts...)
				if err == nil && r.Value != i+j {
					err = fmt.Errorf("Calc.Add(%d, %d) = %d", i, j, r.Value)
				}
				l.mu.Lock()
				switch {
				case err != nil:
					l.failed++
					if l.firstErr == nil {
						l.firstErr = err
					}
				case start >= l.mark.Load():
					l.after[r.Server]++
				}
				l.mu.Unlock()
				l.calls.Add(1)
				time.Sleep(pause) // leave CPU to heartbeats and watchers on small machines
			}
		}()
	}
	return l
}

// waitCalls waits until n calls have finished in all.
func (l *load) waitCalls(ctx context.Context, n int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for l.calls.Load() < n {
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %d calls (made %d): %w", n, l.calls.Load(), err)
		}
	}
	return nil
}

// markNow starts counting answers of the calls that start from now on and
// returns how many calls finished before.
func (l *load) markNow() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.after = make(map[string]int)
	l.mark.Store(time.Now().UnixNano())
	return l.calls.Load()
}

// finish stops the callers and summarises their calls.
func (l *load) finish() (calls int64, failed int, firstErr error, after string) {
	close(l.stop)
	l.wg.Wait()
	return l.calls.Load(), l.failed, l.firstErr, countBy(l.after)
}

// countBy formats per-server counts as "s2 (98), s3 (102)".
func countBy(m map[string]int) string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s (%d)", name, m[name])
	}
	return strings.Join(parts, ", ")
}

// events collects what the Calc servers observed, for the demo to wait on.
type events chan calc.Event

// observe is the Calc observer; it never blocks a handler.
func (e events) observe(ev calc.Event) {
	select {
	case e <- ev:
	default:
	}
}

// wait returns the first event that match accepts, skipping others.
func (e events) wait(ctx context.Context, match func(calc.Event) bool) (calc.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		select {
		case ev := <-e:
			if match(ev) {
				return ev, nil
			}
		case <-ctx.Done():
			return calc.Event{}, fmt.Errorf("waiting for a server event: %w", ctx.Err())
		}
	}
}

// waitInstances polls reg until the addresses of service's instances are
// exactly want, and returns how long that took.
func waitInstances(ctx context.Context, reg registry.Registry, service string, want []string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	sort.Strings(want)
	var got []string
	for {
		insts, err := reg.Lookup(ctx, service)
		if err == nil {
			got = got[:0]
			for _, in := range insts {
				got = append(got, in.Addr)
			}
			if strings.Join(got, " ") == strings.Join(want, " ") {
				return time.Since(start), nil
			}
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return 0, fmt.Errorf("waiting for instances %v of %s (have %v): %w", want, service, got, err)
		}
	}
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait waits for a call to arrive on done (a Go call's Done channel, or
// one a Callback sends to) and returns its error, or ctx's.
func wait(ctx context.Context, done <-chan *rpc.Call) error {
	select {
	case call := <-done:
		return call.Error
	case <-ctx.Done():
		return fmt.Errorf("waiting for a call: %w", ctx.Err())
	}
}
