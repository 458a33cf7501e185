package redistest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sentinelDownAfter is how long a master must be silent before the
// sentinels call it down; short, so failover tests stay quick.
const sentinelDownAfter = 500 * time.Millisecond

// Sentinel is a Redis master with replicas, watched by redis-sentinel
// processes that fail over to a replica when the master dies.
type Sentinel struct {
	t         testing.TB
	name      string
	servers   []*Server // servers[0] started as the master
	sentinels []*Server
}

// StartSentinel starts a master, replicas (at least 1) replicating it, and
// sentinels (1 to 5) monitoring it with a quorum of a majority of them. It
// returns once every replica is in sync and every sentinel knows the
// replicas and the other sentinels, so a failover can start as soon as the
// master dies. Everything is stopped when the test ends.
func StartSentinel(t testing.TB, replicas, sentinels int) *Sentinel {
	t.Helper()
	requireBinaries(t, "redis-server", "redis-sentinel")
	if replicas < 1 || sentinels < 1 || sentinels > 5 {
		t.Fatalf("redistest: StartSentinel(%d, %d): want at least 1 replica and 1 to 5 sentinels", replicas, sentinels)
	}
	sn := &Sentinel{t: t, name: "seedrpc-test"}
	master := start(t, &Server{dir: t.TempDir(), extra: []string{"--repl-diskless-sync-delay", "0"}}, false)
	sn.servers = append(sn.servers, master)
	for range replicas {
		extra := []string{
			"--replicaof", "127.0.0.1", strconv.Itoa(master.port),
			"--repl-diskless-sync-delay", "0",
		}
		sn.servers = append(sn.servers, start(t, &Server{dir: t.TempDir(), extra: extra}, false))
	}
	quorum := sentinels/2 + 1
	for range sentinels {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d\n"+
			"sentinel down-after-milliseconds %s %d\n"+
			"sentinel failover-timeout %s 10000\n"+
			"sentinel parallel-syncs %s 1\n",
			sn.name, master.port, quorum, sn.name, sentinelDownAfter.Milliseconds(), sn.name, sn.name)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		sn.sentinels = append(sn.sentinels, start(t, &Server{dir: dir, bin: "redis-sentinel", pre: []string{conf}}, false))
	}
	deadline := time.Now().Add(clusterTimeout)
	for _, r := range sn.servers[1:] {
		sn.waitUntil(deadline, "replica "+r.Addr()+" in sync", func() bool {
			info, err := r.Do("INFO", "replication")
			return err == nil && strings.Contains(info, "master_link_status:up")
		})
	}
	for _, s := range sn.sentinels {
		sn.waitUntil(deadline, "sentinel "+s.Addr()+" knows the replicas and the other sentinels", func() bool {
			info, err := s.Do("SENTINEL", "MASTER", sn.name)
			if err != nil {
				return false
			}
			f := fields(info)
			return f["num-slaves"] == strconv.Itoa(replicas) && f["num-other-sentinels"] == strconv.Itoa(sentinels-1)
		})
	}
	return sn
}

// MasterName is the name the sentinels monitor the master under.
func (sn *Sentinel) MasterName() string { return sn.name }

// Addrs returns the sentinels' "127.0.0.1:port" addresses.
func (sn *Sentinel) Addrs() []string {
	addrs := make([]string, len(sn.sentinels))
	for i, s := range sn.sentinels {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Servers returns the master and the replicas, the initial master first.
func (sn *Sentinel) Servers() []*Server { return sn.servers }

// Master returns the server the first sentinel that answers names as master.
func (sn *Sentinel) Master() *Server {
	sn.t.Helper()
	addr, err := sn.masterAddr()
	if err != nil {
		sn.t.Fatalf("redistest: master of %s: %v", sn.name, err)
	}
	for _, s := range sn.servers {
		if s.Addr() == addr {
			return s
		}
	}
	sn.t.Fatalf("redistest: sentinels name %s master, not one of ours", addr)
	return nil
}

func (sn *Sentinel) masterAddr() (string, error) {
	var err error
	for _, s := range sn.sentinels {
		var reply string
		reply, err = s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", sn.name)
		if err != nil {
			continue
		}
		hp := strings.Split(reply, "\n")
		if len(hp) != 2 {
			err = fmt.Errorf("unexpected reply %q", reply)
			continue
		}
		return net.JoinHostPort(hp[0], hp[1]), nil
	}
	return "", err
}

// WaitFailover waits (bounded) until every sentinel names a master other than
// old and that server reports role:master, and returns it.
func (sn *Sentinel) WaitFailover(old *Server) *Server {
	sn.t.Helper()
	var m *Server
	sn.waitUntil(time.Now().Add(clusterTimeout), "failover away from "+old.Addr(), func() bool {
		for _, s := range sn.sentinels {
			reply, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", sn.name)
			hp := strings.Split(reply, "\n")
			if err != nil || len(hp) != 2 || net.JoinHostPort(hp[0], hp[1]) == old.Addr() {
				return false
			}
		}
		addr, err := sn.masterAddr()
		if err != nil {
			return false
		}
		for _, s := range sn.servers {
			if s.Addr() == addr {
				info, err := s.Do("INFO", "replication")
				if err == nil && strings.Contains(info, "role:master") {
					m = s
					return true
				}
			}
		}
		return false
	})
	return m
}

func (sn *Sentinel) waitUntil(deadline time.Time, what string, cond func() bool) {
	sn.t.Helper()
	for !cond() {
		if time.Now().After(deadline) {
			sn.t.Fatalf("redistest: timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fields turns a flattened field/value reply into a map.
func fields(reply string) map[string]string {
	kv := strings.Split(reply, "\n")
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
