package main

// Measuring the simulated fleet: Redis's counters, when each watcher saw
// each change, and the registries' log records.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/seedrpc/rpc/registry"
)

// logCounter is a slog.Handler that counts the registries' log records by
// message and reason, to show why watchers read or reconnect.
type logCounter struct {
	mu     sync.Mutex // guards counts
	counts map[string]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }

func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }

func (l *logCounter) WithGroup(string) slog.Handler { return l }

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
