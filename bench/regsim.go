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
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
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

// logCounter is a slog.Handler that counts the registries' log records by
// message and reason, to show why watchers read or reconnect.
type logCounter struct {
	mu     sync.Mutex // guards counts
	counts map[string]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCounter) WithGroup(string) slog.Handler            { return l }

func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	key := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "reason":
			key += " reason=" + a.Value.String()
		case "err": // the cause only: the rest names services and addresses
			e := a.Value.String()
			key += " err=" + e[strings.LastIndex(e, ": ")+1:]
		}
		return true
	})
	l.mu.Lock()
	l.counts[key]++
	l.mu.Unlock()
	return nil
}

// warnings returns the number of warnings so far.
func (l *logCounter) warnings() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k, c := range l.counts {
		if strings.HasPrefix(k, "WARN") {
			n += c
		}
	}
	return n
}

func (l *logCounter) print(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := slices.Sorted(maps.Keys(l.counts))
	if len(keys) > 0 {
		fmt.Fprintln(w, "\nregistry log records over the whole run:")
	}
	for _, k := range keys {
		fmt.Fprintf(w, "  %6d  %s\n", l.counts[k], k)
	}
}

// trace prints, every second until ctx ends, what Redis and the fleet did.
func trace(ctx context.Context, admin *redis.Client, logs *logCounter, w io.Writer) {
	prev, pu := readStats(ctx, admin), usage{}
	pu, _ = readUsage()
	prevWarn := logs.warnings()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := readStats(ctx, admin)
		cu, _ := readUsage()
		warn := logs.warnings()
		r := cur.rates(prev)
		fmt.Fprintf(w, "%s  cmds/s %6.0f  scripts/s %5.0f  publish/s %5.0f  hgetall/s %5.0f  redis cpu %3.0f%%  fleet cpu %3.0f%%  conns %5d  new conns %4d  warnings %5d\n",
			time.Now().Format("15:04:05"), r.commands, r.scripts, r.cmd["publish"], r.cmd["hgetall"], 100*r.cpu,
			100*cu.sub(pu).cpu.Seconds()/cur.at.Sub(prev.at).Seconds(), cur.clients, cur.accepted-prev.accepted, warn-prevWarn)
		prev, pu, prevWarn = cur, cu, warn
	}
}

// perChange prints what Redis spent per change above the steady state.
func perChange(w io.Writer, d statsDelta, base rates, changes int) {
	secs := d.dur.Seconds()
	cmds := (float64(d.commands) - base.commands*secs) / float64(changes)
	out := (float64(d.out) - base.out*secs) / float64(changes)
	above := func(names ...string) float64 {
		n := 0.0
		for _, name := range names {
			n += float64(d.cmd[name]) - base.cmd[name]*secs
		}
		return n / float64(changes)
	}
	fmt.Fprintf(w, "  per change, above steady state: ~%.0f commands (noisy: heartbeats run meanwhile), %.1f HGET/HGETALL, %.1f PUBLISH, %.1f KB sent by Redis\n",
		cmds, above("hgetall", "hget"), above("publish"), out/1e3)
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

// tracker times when each watcher sees an expected change.
type tracker struct {
	mu      sync.Mutex // guards pending
	pending map[evKey]*event
}

type evKey struct {
	service, addr string
	added         bool
}

// event is one expected change: want watchers should see it.
type event struct {
	start time.Time
	want  int
	mu    sync.Mutex // guards lat
	lat   []time.Duration
	done  chan struct{}
}

func newTracker() *tracker { return &tracker{pending: make(map[evKey]*event)} }

// expect registers a change about to be made.
func (tr *tracker) expect(service, addr string, added bool, want int) *event {
	ev := &event{start: time.Now(), want: want, done: make(chan struct{})}
	if want == 0 {
		close(ev.done)
	}
	tr.mu.Lock()
	tr.pending[evKey{service, addr, added}] = ev
	tr.mu.Unlock()
	return ev
}

// consume follows one watch and reports every address that came or went.
func (tr *tracker) consume(service string, ch <-chan []registry.Instance) {
	var prev map[string]bool
	for insts := range ch {
		at := time.Now()
		cur := make(map[string]bool, len(insts))
		for _, in := range insts {
			cur[in.Addr] = true
			if prev != nil && !prev[in.Addr] {
				tr.observe(evKey{service, in.Addr, true}, at)
			}
		}
		for a := range prev {
			if !cur[a] {
				tr.observe(evKey{service, a, false}, at)
			}
		}
		prev = cur
	}
}

func (tr *tracker) observe(k evKey, at time.Time) {
	tr.mu.Lock()
	ev := tr.pending[k]
	tr.mu.Unlock()
	if ev == nil {
		return
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if len(ev.lat) < ev.want {
		ev.lat = append(ev.lat, at.Sub(ev.start))
		if len(ev.lat) == ev.want {
			close(ev.done)
		}
	}
}

// wait returns the latencies seen within timeout and how many are missing.
func (ev *event) wait(timeout time.Duration) ([]time.Duration, int) {
	select {
	case <-ev.done:
	case <-time.After(timeout):
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return slices.Clone(ev.lat), ev.want - len(ev.lat)
}

func quantiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("p50 %v  p99 %v  max %v  (%d samples)", q(0.5).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), s[len(s)-1].Round(10*time.Microsecond), len(s))
}

// redisStats is one reading of Redis's counters.
type redisStats struct {
	at                time.Time
	commands, out, in int64
	cpu               float64 // seconds, user+sys
	clients           int64
	accepted          int64 // connections accepted so far
	memory            int64
	cmd               map[string]int64 // calls per command
	scripts           int64
}

type statsDelta struct {
	dur                    time.Duration
	commands, out, scripts int64
	cpu                    float64
	cmd                    map[string]int64
}

type rates struct {
	commands, out, in, scripts, cpu float64 // per second
	cmd                             map[string]float64
}

func readStats(ctx context.Context, rdb *redis.Client) redisStats {
	info, err := rdb.Info(ctx, "stats", "cpu", "clients", "memory", "commandstats").Result()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench regsim: INFO: %v\n", err)
	}
	s := redisStats{at: time.Now(), cmd: make(map[string]int64)}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "total_commands_processed":
			s.commands = n
		case "total_net_output_bytes":
			s.out = n
		case "total_net_input_bytes":
			s.in = n
		case "connected_clients":
			s.clients = n
		case "total_connections_received":
			s.accepted = n
		case "used_memory":
			s.memory = n
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			s.cpu += f
		}
		if name, ok := strings.CutPrefix(k, "cmdstat_"); ok {
			calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			c, _ := strconv.ParseInt(calls, 10, 64)
			s.cmd[name] = c
			if name == "evalsha" || name == "eval" {
				s.scripts += c
			}
		}
	}
	return s
}

func (s redisStats) sub(o redisStats) statsDelta {
	d := statsDelta{dur: s.at.Sub(o.at), commands: s.commands - o.commands, out: s.out - o.out, scripts: s.scripts - o.scripts, cpu: s.cpu - o.cpu, cmd: make(map[string]int64)}
	for k, v := range s.cmd {
		d.cmd[k] = v - o.cmd[k]
	}
	return d
}

func (s redisStats) rates(o redisStats) rates {
	d := s.sub(o)
	secs := d.dur.Seconds()
	r := rates{commands: float64(d.commands) / secs, out: float64(d.out) / secs, in: float64(s.in-o.in) / secs, scripts: float64(d.scripts) / secs, cpu: d.cpu / secs, cmd: make(map[string]float64)}
	for k, v := range d.cmd {
		r.cmd[k] = float64(v) / secs
	}
	return r
}

// top lists the n busiest commands.
func (r rates) top(n int) string {
	names := make([]string, 0, len(r.cmd))
	for k, v := range r.cmd {
		if v > 0 {
			names = append(names, k)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case r.cmd[a] > r.cmd[b]:
			return -1
		case r.cmd[a] < r.cmd[b]:
			return 1
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range names[:min(n, len(names))] {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, r.cmd[k]))
	}
	return strings.Join(parts, ", ")
}

func infoInt(ctx context.Context, rdb *redis.Client, section, field string) int64 {
	info, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

func countPubSub(ctx context.Context, rdb *redis.Client) int {
	list, err := rdb.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		return -1
	}
	return strings.Count(list, "\n")
}

func redisVersion(addr string) string {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	v := infoString(rdb, "server", "redis_version")
	if v == "" {
		return "(version unknown)"
	}
	return "v" + v
}

func infoString(rdb *redis.Client, section, field string) string {
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
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
