package main

// regsim: the registry at fleet scale, on a real redis-server.
//
//	go run . regsim                                  # 10,000 instances, 100 services, 1,000 watchers
//	go run . regsim -instances 2000 -services 50 -watchers 100 -watched 5 -watch 5
//
// Every server and every watcher is its own registry with its own go-redis
// client, as separate processes would be. Servers register the instances
// (spread over one heartbeat interval, so heartbeats are spread too) and
// heartbeat at the default TTL; each watcher watches -watch services. The
// run then measures, on Redis's own counters (INFO):
//
//   - steady state: connections, commands/s (scripts' inner commands
//     included), CPU, bytes out/s, memory;
//   - single changes: for -changes services an instance is added, then
//     removed; the time until every watcher of the service has it (p50, p99,
//     max over all watchers and changes), and the commands and bytes Redis
//     spent per change above the steady-state rate;
//   - a rolling restart of one service: each instance deregistered and
//     registered again, -restart-pace apart; the same figures.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc/registry"
)

type regsimConfig struct {
	instances, services, servers int
	watchers, watch, watched     int
	ttl                          time.Duration
	settle, steady               time.Duration
	changes                      int
	restartPace                  time.Duration
	redisAddr                    string
	trace                        bool
	opTimeout                    time.Duration
	cpuProfile                   string
	ramp                         time.Duration
}

// runRegsim is the "regsim" mode of the bench command.
func runRegsim(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench regsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c regsimConfig
	fs.IntVar(&c.instances, "instances", 10000, "instances registered")
	fs.IntVar(&c.services, "services", 100, "services the instances are spread over")
	fs.IntVar(&c.servers, "servers", 1000, "server registries (processes) the instances are spread over")
	fs.IntVar(&c.watchers, "watchers", 1000, "watcher registries (client processes)")
	fs.IntVar(&c.watch, "watch", 5, "services each watcher watches")
	fs.IntVar(&c.watched, "watched", 0, "watchers pick their services among the first N (0: all services)")
	fs.DurationVar(&c.ttl, "ttl", 10*time.Second, "registry TTL (heartbeat TTL/3)")
	fs.DurationVar(&c.ramp, "ramp", 20*time.Second, "start the watcher registries evenly over this time (a fleet does not start in one instant)")
	fs.DurationVar(&c.settle, "settle", 15*time.Second, "wait after setup before measuring")
	fs.DurationVar(&c.steady, "steady", 20*time.Second, "steady-state measurement window")
	fs.IntVar(&c.changes, "changes", 20, "single adds (and removals) measured, each in another service")
	fs.DurationVar(&c.restartPace, "restart-pace", 200*time.Millisecond, "rolling restart: time between two instances")
	fs.DurationVar(&c.opTimeout, "op-timeout", 2*time.Second, "registry.WithOpTimeout of every registry")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the simulated fleet's steady state to this file")
	fs.BoolVar(&c.trace, "trace", false, "print Redis's and the fleet's figures every second, to stderr")
	fs.StringVar(&c.redisAddr, "redis", "", "use this redis-server instead of starting one (its counters are read, not reset)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.watched <= 0 || c.watched > c.services {
		c.watched = c.services
	}
	if c.instances < c.services || c.services <= 0 || c.servers <= 0 || c.watchers <= 0 || c.watch <= 0 || c.watch > c.watched {
		return errors.New("bench regsim: need instances >= services > 0, servers > 0, watchers > 0, 0 < watch <= watched")
	}
	if c.changes > c.watched {
		c.changes = c.watched
	}
	nofile := raiseNoFile()
	// Thousands of registries in one process: collect garbage less often, so
	// the collector does not starve them past their op timeouts.
	debug.SetGCPercent(400)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := c.redisAddr
	if addr == "" {
		srv, err := startRedis()
		if err != nil {
			return err
		}
		defer srv.stop()
		addr = srv.addr
	}
	fmt.Fprintf(stdout, "regsim: %d instances over %d services, %d server registries, %d watcher registries x %d services (among %d), TTL %v; redis %s %s; RLIMIT_NOFILE %d\n",
		c.instances, c.services, c.servers, c.watchers, c.watch, c.watched, c.ttl, addr, redisVersion(addr), nofile)
	return simulate(ctx, c, addr, stdout, stderr)
}

// simulate builds the fleet, measures it and tears it down.
func simulate(ctx context.Context, c regsimConfig, addr string, stdout, stderr io.Writer) error {
	admin := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer admin.Close()
	memEmpty := infoInt(ctx, admin, "memory", "used_memory")
	datasetEmpty := infoInt(ctx, admin, "memory", "used_memory_dataset")
	logs := &logCounter{counts: make(map[string]int)}
	opts := []registry.Option{registry.WithTTL(c.ttl), registry.WithPrefix("regsim"), registry.WithLogger(slog.New(logs)), registry.WithOpTimeout(c.opTimeout)}
	defer logs.print(stdout)
	var clients []*redis.Client
	var regs []*registry.Redis
	newReg := func() *registry.Redis {
		rdb := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true, PoolSize: 4})
		reg := registry.NewRedis(rdb, opts...)
		clients = append(clients, rdb)
		regs = append(regs, reg)
		return reg
	}
	defer func() {
		var wg sync.WaitGroup
		for _, r := range regs {
			wg.Add(1)
			go func() { defer wg.Done(); r.Close() }()
		}
		wg.Wait()
		for _, rdb := range clients {
			rdb.Close()
		}
	}()

	if c.trace {
		tctx, stopTrace := context.WithCancel(ctx)
		var traced sync.WaitGroup
		traced.Add(1)
		go func() { defer traced.Done(); trace(tctx, admin, logs, stderr) }()
		defer traced.Wait()
		defer stopTrace()
	}

	// Servers: instance i is in service i%services, on server i%servers.
	servers := make([]*registry.Redis, c.servers)
	for i := range servers {
		servers[i] = newReg()
	}
	start := time.Now()
	spread := c.ttl / 3
	err := parallel(64, c.instances, func(i int) error {
		// Spread the registrations over one heartbeat interval, so the
		// heartbeats are spread too, as in a fleet started over time.
		time.Sleep(time.Until(start.Add(spread * time.Duration(i) / time.Duration(c.instances))))
		var err error
		for try := range 5 { // as a starting server would
			if err = servers[i%c.servers].Register(ctx, simInstance(i%c.services, i)); err == nil {
				return nil
			}
			time.Sleep(100 * time.Millisecond << try)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("bench regsim: register: %w", err)
	}
	memInstances := infoInt(ctx, admin, "memory", "used_memory")
	fmt.Fprintf(stdout, "registered %d instances in %v\n", c.instances, time.Since(start).Round(time.Millisecond))

	// Watchers.
	tr := newTracker()
	var consumers sync.WaitGroup
	defer consumers.Wait()
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchersOf := make([]int, c.services)
	start = time.Now()
	var mu sync.Mutex
	var watchRetries atomic.Int64
	wregs := make([]*registry.Redis, c.watchers)
	for j := range wregs {
		wregs[j] = newReg()
	}
	err = parallel(64, c.watchers, func(j int) error {
		time.Sleep(time.Until(start.Add(c.ramp * time.Duration(j) / time.Duration(c.watchers))))
		for k := range c.watch {
			svc := (j*c.watch + k) % c.watched
			// Like a discovering client, retry a Watch that failed (Redis
			// busy beyond the op timeout).
			var ch <-chan []registry.Instance
			var err error
			for try := 0; ; try++ {
				if ch, err = wregs[j].Watch(wctx, simService(svc)); err == nil {
					break
				}
				watchRetries.Add(1)
				if try == 8 {
					return err
				}
				time.Sleep(100 * time.Millisecond << try)
			}
			mu.Lock()
			watchersOf[svc]++
			mu.Unlock()
			consumers.Add(1)
			go func() { defer consumers.Done(); tr.consume(simService(svc), ch) }()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bench regsim: watch: %w", err)
	}
	memWatchers := infoInt(ctx, admin, "memory", "used_memory")
	fmt.Fprintf(stdout, "%d watches started in %v (%d retried); settling %v\n", c.watchers*c.watch, time.Since(start).Round(time.Millisecond), watchRetries.Load(), c.settle)
	time.Sleep(c.settle)

	// Steady state.
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	s0 := readStats(ctx, admin)
	u0, _ := readUsage()
	time.Sleep(c.steady)
	s1 := readStats(ctx, admin)
	u1, _ := readUsage()
	base := s1.rates(s0)
	fmt.Fprintf(stdout, "\nsteady state over %v:\n", c.steady)
	fmt.Fprintf(stdout, "  connections %d (pub/sub %d; %.1f new/s), commands/s %.0f (scripts run/s %.0f), Redis CPU %.1f%% of a core, out %.1f KB/s, in %.1f KB/s\n",
		s1.clients, countPubSub(ctx, admin), float64(s1.accepted-s0.accepted)/c.steady.Seconds(), base.commands, base.scripts, 100*base.cpu, base.out/1e3, base.in/1e3)
	fmt.Fprintf(stdout, "  top commands/s: %s\n", base.top(8))
	fmt.Fprintf(stdout, "  the simulated fleet itself (all registries, one process): %.1f%% of a core\n", 100*u1.sub(u0).cpu.Seconds()/c.steady.Seconds())
	fmt.Fprintf(stdout, "  memory: %.0f B per instance, %.0f B per watcher registry (used_memory %0.1f MB)\n",
		float64(memInstances-memEmpty)/float64(c.instances), float64(memWatchers-memInstances)/float64(c.watchers), float64(s1.memory)/1e6)
	dataset := infoInt(ctx, admin, "memory", "used_memory_dataset") - datasetEmpty
	clientsMem := infoInt(ctx, admin, "memory", "mem_clients_normal")
	fmt.Fprintf(stdout, "  of which: data %.0f B per instance (used_memory_dataset), connections %.0f B each (mem_clients_normal / connected_clients)\n",
		float64(dataset)/float64(c.instances), float64(clientsMem)/float64(max(s1.clients, 1)))

	// Single changes: add then remove one instance in -changes services.
	// A plain subscriber on the first service's channel sees the messages.
	spy := admin.Subscribe(ctx, "{regsim:"+simService(0)+"}:changes")
	defer spy.Close()
	if _, err := spy.ReceiveTimeout(ctx, 5*time.Second); err != nil {
		return fmt.Errorf("bench regsim: subscribe: %w", err)
	}
	var adds, removes []time.Duration
	var missed int
	extra := newReg()
	w0 := readStats(ctx, admin)
	for n := range c.changes {
		svc := n % c.watched
		inst := registry.Instance{Service: simService(svc), Addr: fmt.Sprintf("10.255.%d.%d:9000", n/250, n%250)}
		ev := tr.expect(inst.Service, inst.Addr, true, watchersOf[svc])
		if err := extra.Register(ctx, inst); err != nil {
			return err
		}
		lat, miss := ev.wait(5 * time.Second)
		adds, missed = append(adds, lat...), missed+miss
		ev = tr.expect(inst.Service, inst.Addr, false, watchersOf[svc])
		if err := extra.Deregister(ctx, inst); err != nil {
			return err
		}
		lat, miss = ev.wait(5 * time.Second)
		removes, missed = append(removes, lat...), missed+miss
	}
	w1 := readStats(ctx, admin)
	fmt.Fprintf(stdout, "\nsingle changes (%d adds, %d removals, each seen by the service's %d watchers):\n", c.changes, c.changes, watchersOf[0])
	fmt.Fprintf(stdout, "  add to all watchers:     %s\n", quantiles(adds))
	fmt.Fprintf(stdout, "  removal to all watchers: %s\n", quantiles(removes))
	perChange(stdout, w1.sub(w0), base, 2*c.changes)
	var sizes []int
	for {
		msg, err := spy.ReceiveTimeout(ctx, 100*time.Millisecond)
		if err != nil {
			break
		}
		if m, ok := msg.(*redis.Message); ok {
			sizes = append(sizes, len(m.Payload))
		}
	}
	if len(sizes) > 0 {
		fmt.Fprintf(stdout, "  messages on %s's channel meanwhile: %d, payload %d..%d bytes (plus ~%d of framing and channel name per subscriber)\n",
			simService(0), len(sizes), slices.Min(sizes), slices.Max(sizes), len("{regsim:Svc0}:changes")+30)
	}
	if missed > 0 {
		fmt.Fprintf(stdout, "  MISSED: %d watcher observations never arrived within 5s\n", missed)
	}

	// Rolling restart of service 0: every instance out and back in.
	var rAdds, rRemoves []time.Duration
	missed = 0
	var evs []*event
	var restartErr atomic.Value
	r0 := readStats(ctx, admin)
	began := time.Now()
	for i := 0; i < c.instances; i += c.services { // the instances of service 0
		inst := simInstance(0, i)
		reg := servers[i%c.servers]
		evs = append(evs, tr.expect(inst.Service, inst.Addr, false, watchersOf[0]))
		if err := reg.Deregister(ctx, inst); err != nil {
			restartErr.Store(err)
		}
		time.Sleep(c.restartPace / 2)
		evs = append(evs, tr.expect(inst.Service, inst.Addr, true, watchersOf[0]))
		if err := reg.Register(ctx, inst); err != nil {
			restartErr.Store(err)
		}
		time.Sleep(c.restartPace / 2)
	}
	restartDur := time.Since(began)
	for k, ev := range evs {
		lat, miss := ev.wait(5 * time.Second)
		missed += miss
		if k%2 == 0 {
			rRemoves = append(rRemoves, lat...)
		} else {
			rAdds = append(rAdds, lat...)
		}
	}
	r1 := readStats(ctx, admin)
	d := r1.rates(r0)
	fmt.Fprintf(stdout, "\nrolling restart of %s (%d instances, %v apart, %v, %d watchers):\n", simService(0), len(evs)/2, c.restartPace, restartDur.Round(time.Millisecond), watchersOf[0])
	fmt.Fprintf(stdout, "  add to all watchers:     %s\n", quantiles(rAdds))
	fmt.Fprintf(stdout, "  removal to all watchers: %s\n", quantiles(rRemoves))
	fmt.Fprintf(stdout, "  during it: commands/s %.0f, Redis CPU %.1f%% of a core, out %.1f KB/s\n", d.commands, 100*d.cpu, d.out/1e3)
	perChange(stdout, r1.sub(r0), base, len(evs))
	if missed > 0 {
		fmt.Fprintf(stdout, "  MISSED: %d watcher observations never arrived within 5s (in a restart, a reader that fell behind may also have skipped a removal and re-add of one address: its channel keeps only the newest list)\n", missed)
	}
	if err, ok := restartErr.Load().(error); ok {
		return fmt.Errorf("bench regsim: rolling restart: %w", err)
	}
	stopWatch()
	return nil
}

func simService(s int) string { return "Svc" + strconv.Itoa(s) }

func simInstance(svc, i int) registry.Instance {
	return registry.Instance{
		Service: simService(svc),
		Addr:    fmt.Sprintf("10.%d.%d.%d:9000", i/65536%256, i/256%256, i%256),
		Weight:  1 + i%3,
		Meta:    map[string]string{"zone": "z" + strconv.Itoa(i%3), "version": "1.4.2"},
	}
}

// parallel runs f(0..n-1) on up to workers goroutines and returns the first
// error.
func parallel(workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || first.Load() != nil {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

// simRedis is a redis-server started for the simulation.
type simRedis struct {
	addr string
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// startRedis starts redis-server on a free loopback port, persistence off,
// with room for the simulation's connections.
func startRedis() (*simRedis, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "regsim")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		// A thousand registries connecting at once overflow the default
		// listen backlog (511): dropped SYNs cost a second each, past the
		// op timeout, and the timed-out connections are dialled again.
		"--save", "", "--appendonly", "no", "--maxclients", "20000", "--tcp-backlog", "4096", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"))
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench regsim: start redis-server (apt-get install redis-server): %w", err)
	}
	s := &simRedis{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	rdb := redis.NewClient(&redis.Options{Addr: s.addr})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if rdb.Ping(context.Background()).Err() == nil {
			return s, nil
		}
		select {
		case <-s.done:
			os.RemoveAll(dir)
			return nil, errors.New("bench regsim: redis-server exited at start")
		default:
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, errors.New("bench regsim: redis-server not answering PING")
		}
	}
}

func (s *simRedis) stop() {
	_ = s.cmd.Process.Kill()
	<-s.done
	os.RemoveAll(s.dir)
}
