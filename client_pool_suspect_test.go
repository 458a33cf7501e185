package rpc

import (
	"errors"
	"testing"

	"github.com/seedrpc/rpc/internal/wire"
)

// TestPoolSuspectAddress: after a connection broke abruptly, the address
// is suspect: calls that can go elsewhere are told so at once; a
// connection dialled meanwhile is suspect too and probed; a response read
// meanwhile proves nothing; only the pong to a ping sent since clears it.
// A call with nowhere else to go uses a suspect connection rather than
// dialling more.
func TestPoolSuspectAddress(t *testing.T) {
	p, d, _ := newFakePool(t, WithPoolSize(2))
	ctx := t.Context()
	cc1, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.peer(0).close() // the server resets
	poll(t, defaultTestTimeout, "the broken connection to go", func() bool { return cc1.dead.Load() })

	if _, err := p.getConn(ctx, true); !errors.Is(err, errSuspect) {
		t.Fatalf("getConn(canSkip) on a suspect address = %v, want errSuspect", err)
	}
	// That started a dial to probe the address; its connection is born
	// suspect and pings.
	poll(t, defaultTestTimeout, "a probing connection", func() bool { return d.count() == 2 })
	ping := d.peer(1).expect(t, wire.TypePing)
	if ping.Seq == 0 {
		t.Errorf("probe ping with seq 0; want a seq its pong can be matched by")
	}
	var cc2 *clientConn
	poll(t, defaultTestTimeout, "the probing connection in the pool", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.conns) == 1 {
			cc2 = p.conns[0]
		}
		return cc2 != nil
	})
	if !cc2.suspect.Load() {
		t.Error("a connection dialled while the address is suspect is not suspect")
	}
	if _, err := p.getConn(ctx, true); !errors.Is(err, errSuspect) {
		t.Errorf("getConn(canSkip) while the probe is unanswered = %v, want errSuspect", err)
	}
	if got, err := p.getConn(ctx, false); err != nil || got != cc2 {
		t.Errorf("getConn(no other instance) = %p, %v; want the suspect connection %p, no new dial", got, err, cc2)
	}
	if n := d.count(); n != 2 {
		t.Errorf("%d dials, want 2", n)
	}

	// A stale response, or a pong to another ping, proves nothing.
	if err := d.peer(1).send(wire.TypeResponse, 12345); err != nil {
		t.Fatal(err)
	}
	if err := d.peer(1).send(wire.TypePong, 0); err != nil {
		t.Fatal(err)
	}
	// A ping from the server: once the client answers, it has read the
	// frames before.
	if err := d.peer(1).send(wire.TypePing, 777); err != nil {
		t.Fatal(err)
	}
	d.peer(1).expect(t, wire.TypePong)
	if !cc2.suspect.Load() {
		t.Error("a stale response or an unrelated pong cleared the suspicion")
	}
	if _, err := p.getConn(ctx, true); !errors.Is(err, errSuspect) {
		t.Errorf("getConn(canSkip) after a stale response = %v, want errSuspect", err)
	}
	if err := d.peer(1).send(wire.TypePong, ping.Seq); err != nil {
		t.Fatal(err)
	}
	poll(t, defaultTestTimeout, "the probe's pong to clear the suspicion", func() bool {
		cc, err := p.getConn(ctx, true)
		return err == nil && cc == cc2
	})
}
