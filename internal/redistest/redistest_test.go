package redistest

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartKillRestart(t *testing.T) {
	s := Start(t)
	if got, err := s.Do("SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET = %q, %v, want OK", got, err)
	}
	s.Kill()
	if _, err := s.Do("PING"); err == nil {
		t.Fatal("PING after Kill succeeded, want error")
	}
	s.Restart()
	if got, err := s.Do("GET", "k"); err != nil || got != "" {
		t.Fatalf("GET after Restart = %q, %v, want empty", got, err)
	}
}

func TestFreezeThaw(t *testing.T) {
	s := Start(t)
	s.Freeze()
	if _, err := do(s.Addr(), nil, 100*time.Millisecond, "PING"); err == nil {
		t.Fatal("PING on a frozen server succeeded, want timeout")
	}
	s.Thaw()
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING after Thaw = %q, %v, want PONG", got, err)
	}
}

func TestStartCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if got := len(c.Addrs()); got != 3 {
		t.Fatalf("len(Addrs()) = %d, want 3", got)
	}
	for _, n := range c.Nodes() {
		info, err := n.Do("CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			t.Errorf("CLUSTER INFO on %s = %q, %v, want cluster_state:ok", n.Addr(), info, err)
		}
	}
}

func TestStartTLS(t *testing.T) {
	s := StartTLS(t)
	if got, err := s.Do("PING"); err != nil || got != "PONG" {
		t.Fatalf("PING over TLS = %q, %v, want PONG", got, err)
	}
	if _, err := do(s.Addr(), nil, 500*time.Millisecond, "PING"); err == nil {
		t.Fatal("plaintext PING on the TLS port succeeded, want error")
	}
}

func TestStartSentinel(t *testing.T) {
	sn := StartSentinel(t, 1, 3)
	old := sn.Master()
	if old != sn.Servers()[0] {
		t.Fatalf("Master() = %s, want the first server %s", old.Addr(), sn.Servers()[0].Addr())
	}
	if got, err := old.Do("SET", "k", "v"); err != nil || got != "OK" {
		t.Fatalf("SET on master = %q, %v", got, err)
	}
	if got, err := old.Do("WAIT", "1", "2000"); err != nil || got != "1" {
		t.Fatalf("WAIT 1 2000 = %q, %v, want 1 replica acknowledged", got, err)
	}
	old.Kill()
	m := sn.WaitFailover(old)
	if m == old {
		t.Fatal("WaitFailover returned the killed master")
	}
	if got, err := m.Do("GET", "k"); err != nil || got != "v" {
		t.Errorf("GET k on the promoted replica = %q, %v, want v (replicated before the failover)", got, err)
	}
}
