package middleware

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	rpc "github.com/seedrpc/rpc"
	"golang.org/x/time/rate"
)

func TestRateLimitEndToEnd(t *testing.T) {
	// One call per hour per method: the second fails fast, with the status
	// the client retries elsewhere (here there is no elsewhere).
	e, addr := serve(t, rpc.WithServerInterceptor(RateLimit(rate.Every(time.Hour), 1)))
	cli := dial(t, addr)
	if err := say(t, cli); err != nil {
		t.Fatalf("first call = %v, want nil", err)
	}
	start := time.Now()
	err := say(t, cli)
	if !errors.Is(err, rpc.ErrOverloaded) {
		t.Fatalf("second call error = %v, want ErrOverloaded", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("refused call took %v, want a fast failure", el)
	}
	var got string
	if err := cli.Call("Echo.Secret", "x", &got); err != nil {
		t.Errorf("another method's first call = %v, want nil (its own bucket)", err)
	}
	if n := e.calls.Load(); n != 2 {
		t.Errorf("handler ran %d times, want 2", n)
	}
}

func TestRateLimitBuckets(t *testing.T) {
	peer := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 1} }
	call := func(ic rpc.ServerInterceptor, method string, p net.Addr) error {
		_, err := ic(context.Background(), &rpc.Request{ServiceMethod: method, Peer: p}, (&stubNext{}).handle)
		return err
	}
	every := rate.Every(time.Hour)

	shared := RateLimit(every, 2)
	for i, want := range []bool{true, true, false} {
		if err := call(shared, "Calc.Add", peer("10.0.0."+string(rune('1'+i)))); (err == nil) != want {
			t.Errorf("shared bucket, call %d = %v, want allowed %v", i+1, err, want)
		}
	}

	perPeer := RateLimit(every, 1, PerPeer(100), ForMethods("Calc.Cheap*", rate.Inf, 0))
	if err := call(perPeer, "Calc.Add", peer("10.0.0.1")); err != nil {
		t.Errorf("per peer: first call from .1 = %v", err)
	}
	if err := call(perPeer, "Calc.Add", peer("10.0.0.1")); !errors.Is(err, rpc.ErrOverloaded) {
		t.Errorf("per peer: second call from .1 = %v, want ErrOverloaded", err)
	}
	if err := call(perPeer, "Calc.Add", peer("10.0.0.2")); err != nil {
		t.Errorf("per peer: first call from .2 = %v, want nil (its own bucket)", err)
	}
	for i := range 5 {
		if err := call(perPeer, "Calc.CheapGet", peer("10.0.0.1")); err != nil {
			t.Errorf("ForMethods(rate.Inf): call %d = %v, want nil", i+1, err)
		}
	}
}

func TestRateLimitPeerMapBounded(t *testing.T) {
	l := newLimiter(rate.Every(time.Hour), 1, rateConfig{maxPeers: 3})
	req := func(i int) *rpc.Request {
		return &rpc.Request{ServiceMethod: "Calc.Add", Peer: &net.TCPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 1}}
	}
	for i := range 1000 {
		if !l.bucket(req(i)).Allow() {
			t.Fatalf("peer %d's first call refused", i)
		}
	}
	l.mu.Lock()
	n, m := len(l.peers), l.lru.Len()
	l.mu.Unlock()
	if n != 3 || m != 3 {
		t.Errorf("after 1000 peers the limiter holds %d buckets (lru %d), want 3", n, m)
	}
	// The most recent peers keep their (empty) buckets.
	if l.bucket(req(999)).Allow() {
		t.Error("peer 999's second call allowed: its bucket was dropped")
	}
	// The oldest was evicted and starts full again.
	if !l.bucket(req(0)).Allow() {
		t.Error("peer 0, evicted long ago, refused")
	}
}
