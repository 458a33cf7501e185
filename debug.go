package rpc

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/seedrpc/rpc/registry"
)

// DebugHandler returns an HTTP handler showing what the server is doing:
// its services and methods with calls, errors and latency percentiles per
// method, its connections and calls in flight, and whether its instances
// are in the registry (checked with a lookup when the page is rendered).
// It serves an HTML page, or the same data as JSON when the query has
// format=json. Mount it where only operators can reach it:
//
//	http.Handle("/debug/seedrpc", srv.DebugHandler())
//
// Counting costs the server an atomic add per call (two for a failed one),
// whether or not the page is ever rendered: a call's duration is measured
// anyway, to decide where calls run.
func (s *Server) DebugHandler() http.Handler { return debugHandler{s} }

type debugHandler struct{ srv *Server }

// debugTimeout bounds the registry lookups one rendering makes.
const debugTimeout = 2 * time.Second

// debugMaxConns is how many connections the page lists.
const debugMaxConns = 200

func (h debugHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), debugTimeout)
	defer cancel()
	info := h.srv.debugInfo(ctx)
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("format") == "json" {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(info) // a failed write means the client left
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = debugPage.Execute(w, info)
}

// debugInfo is what the page shows; its JSON is the format=json answer.
type debugInfo struct {
	Time         time.Time      `json:"time"`
	ShuttingDown bool           `json:"shutting_down"`
	Connections  int            `json:"connections"`
	InFlight     int64          `json:"in_flight"` // calls running on the whole server
	Services     []debugService `json:"services"`
	Conns        []debugConn    `json:"conns"`    // at most debugMaxConns, by remote address
	Registry     *debugRegistry `json:"registry"` // null without WithRegistry
}

type debugService struct {
	Name    string        `json:"name"`
	Methods []debugMethod `json:"methods"`
}

type debugMethod struct {
	Name   string  `json:"name"`
	Calls  uint64  `json:"calls"`  // completed calls
	Errors uint64  `json:"errors"` // of which answered with an error
	P50    float64 `json:"p50_seconds"`
	P99    float64 `json:"p99_seconds"`
	Args   string  `json:"args"`  // the shape of the args (internal/schema notation)
	Reply  string  `json:"reply"` // the shape of the reply
}

type debugConn struct {
	Remote   string `json:"remote"`
	InFlight int64  `json:"in_flight"`
	Draining bool   `json:"draining"`
}

type debugRegistry struct {
	// Instances are those announced by Serve; empty before Serve and
	// after Shutdown.
	Instances []debugInstance `json:"instances"`
}

type debugInstance struct {
	Service string `json:"service"`
	Addr    string `json:"addr"`
	// Listed is whether a lookup made for this rendering found the instance.
	Listed bool `json:"listed"`
	// LookupError is that lookup's error.
	LookupError string `json:"lookup_error,omitempty"`
	// LastHeartbeat and HeartbeatError come from registries that report
	// their heartbeats (heartbeatReporter).
	LastHeartbeat  *time.Time `json:"last_heartbeat,omitempty"`
	HeartbeatError string     `json:"heartbeat_error,omitempty"`
}

// heartbeatReporter is implemented by registries that can tell when an
// instance's heartbeat last succeeded (zero if never) and the error of the
// latest one if it failed; the debug page shows it when the server's
// registry does.
type heartbeatReporter interface {
	LastHeartbeat(service, addr string) (succeeded time.Time, err error)
}

func (s *Server) debugInfo(ctx context.Context) *debugInfo {
	info := &debugInfo{
		Time:         time.Now(),
		ShuttingDown: s.shuttingDown.Load(),
		InFlight:     s.running.Load(),
	}
	services := *s.services.Load()
	for _, name := range sortedServiceNames(services) {
		info.Services = append(info.Services, debugServiceOf(services[name]))
	}

	s.mu.Lock()
	info.Connections = len(s.conns)
	for c := range s.conns {
		info.Conns = append(info.Conns, debugConn{
			Remote:   c.nc.RemoteAddr().String(),
			InFlight: c.running.Load(),
			Draining: c.draining.Load(),
		})
	}
	insts := slices.Clone(s.instances)
	s.mu.Unlock()
	slices.SortFunc(info.Conns, func(a, b debugConn) int { return cmp.Compare(a.Remote, b.Remote) })
	info.Conns = info.Conns[:min(len(info.Conns), debugMaxConns)]

	if s.opts.registry != nil {
		info.Registry = debugRegistryOf(ctx, s.opts.registry, insts)
	}
	return info
}

func debugServiceOf(svc *service) debugService {
	out := debugService{Name: svc.name}
	for _, m := range describeService(svc).Methods {
		mt := svc.methods[m.Name]
		dm := debugMethod{Name: m.Name, Args: m.Args.String(), Reply: m.Reply.String()}
		if st := mt.stats; st != nil {
			counts, total := st.latency.snapshot()
			dm.Calls = total
			dm.Errors = min(st.errors.Load(), total)
			dm.P50 = percentile(&counts, total, 0.50).Seconds()
			dm.P99 = percentile(&counts, total, 0.99).Seconds()
		}
		out.Methods = append(out.Methods, dm)
	}
	return out
}

// debugRegistryOf checks each announced instance with one lookup per
// service.
func debugRegistryOf(ctx context.Context, reg registry.Registry, insts []registry.Instance) *debugRegistry {
	out := &debugRegistry{Instances: []debugInstance{}}
	type result struct {
		addrs map[string]bool
		err   error
	}
	lookups := make(map[string]result)
	hb, _ := reg.(heartbeatReporter)
	for _, inst := range insts {
		r, ok := lookups[inst.Service]
		if !ok {
			found, err := reg.Lookup(ctx, inst.Service)
			r = result{addrs: make(map[string]bool), err: err}
			for _, f := range found {
				r.addrs[f.Addr] = true
			}
			lookups[inst.Service] = r
		}
		di := debugInstance{Service: inst.Service, Addr: inst.Addr, Listed: r.addrs[inst.Addr]}
		if r.err != nil {
			di.LookupError = r.err.Error()
		}
		if hb != nil {
			at, err := hb.LastHeartbeat(inst.Service, inst.Addr)
			if !at.IsZero() {
				di.LastHeartbeat = &at
			}
			if err != nil {
				di.HeartbeatError = err.Error()
			}
		}
		out.Instances = append(out.Instances, di)
	}
	slices.SortFunc(out.Instances, func(a, b debugInstance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Addr, b.Addr))
	})
	return out
}
