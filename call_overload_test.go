package rpc

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
	"github.com/seedrpc/rpc/lb"
)

// overloadedServer answers every request with StatusOverloaded, as a
// server at its limit does, and counts the requests.
type overloadedServer struct {
	lis      net.Listener
	requests atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex // guards conns
	conns    []net.Conn
}

func startOverloadedServer(t testing.TB) *overloadedServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &overloadedServer{lis: lis}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(nc)
			}()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *overloadedServer) addr() string { return s.lis.Addr().String() }

func (s *overloadedServer) serve(nc net.Conn) {
	var hb [wire.HeaderSize]byte
	for {
		if _, err := io.ReadFull(nc, hb[:]); err != nil {
			return
		}
		h, err := wire.ParseHeader(hb[:], wire.DefaultMaxFrameSize)
		if err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, nc, int64(h.PayloadLen())); err != nil {
			return
		}
		var out []byte
		switch h.Type {
		case wire.TypeRequest:
			s.requests.Add(1)
			msg := "rpc: server overloaded (test)"
			out = make([]byte, wire.HeaderSize+len(msg))
			wire.PutHeader(out, &wire.Header{Type: wire.TypeResponse, Status: wire.StatusOverloaded, Seq: h.Seq, BodyLen: uint32(len(msg))})
			copy(out[wire.HeaderSize:], msg)
		case wire.TypePing:
			out = make([]byte, wire.HeaderSize)
			wire.PutHeader(out, &wire.Header{Type: wire.TypePong, Seq: h.Seq})
		default:
			continue
		}
		if _, err := nc.Write(out); err != nil {
			return
		}
	}
}

// TestOverloadedStaticFailsAtOnce: a client of one server hears
// "overloaded" from its one attempt; it never asks the same server again,
// retries asked for or not.
func TestOverloadedStaticFailsAtOnce(t *testing.T) {
	s := startOverloadedServer(t)
	cli, err := Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	for i, opts := range [][]CallOption{
		{WithTimeout(time.Second)},
		{WithTimeout(time.Second), WithRetries(3)},
	} {
		before := s.requests.Load()
		start := time.Now()
		err := cli.Call("Calc.Add", Args{1, 2}, new(int), opts...)
		el := time.Since(start)
		if !errors.Is(err, ErrOverloaded) {
			t.Fatalf("call %d: error %v, want ErrOverloaded", i, err)
		}
		if !strings.Contains(err.Error(), s.addr()) || strings.Count(err.Error(), "rpc:") != 1 {
			t.Errorf("call %d: error %q should name %s once prefixed", i, err, s.addr())
		}
		if got := s.requests.Load() - before; got != 1 {
			t.Errorf("call %d: the overloaded server got %d requests, want 1", i, got)
		}
		t.Logf("call %d: %v after %v", i, err, el.Round(time.Microsecond))
	}
}

// TestOverloadedFleet: a call refused as overloaded moves at once to an
// instance it has not tried, never back to one that refused it, and tries
// at most 1+maxOverloadRetries instances: with all overloaded it fails with
// ErrOverloaded, with one that has room it succeeds there.
func TestOverloadedFleet(t *testing.T) {
	for _, tc := range []struct {
		name       string
		overloaded int
		withRoom   bool
		want       int // requests to overloaded servers per call
	}{
		{"one instance", 1, false, 1},
		{"three all overloaded", 3, false, 3},
		{"five all overloaded", 5, false, 1 + maxOverloadRetries},
		{"two overloaded and one with room", 2, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := newMemoryRegistry(t)
			var over []*overloadedServer
			var addrs []string
			for range tc.overloaded {
				s := startOverloadedServer(t)
				over = append(over, s)
				addrs = append(addrs, s.addr())
				registerFake(t, mem, "Calc", s.addr())
			}
			var room *fleetServer
			if tc.withRoom {
				room = startFleetServer(t, mem, "Calc", 0)
				addrs = append(addrs, room.addr)
			}
			// Ordered: the overloaded instances are tried first, in turn.
			cli := newFleetClient(t, mem, WithBalancer(overloadFirst{room: room}))
			const calls = 6
			for i := range calls {
				before := make([]int64, len(over))
				for j, s := range over {
					before[j] = s.requests.Load()
				}
				var r FleetReply
				start := time.Now()
				err := cli.Call("Calc.Add", FleetArgs{A: i, B: 1}, &r, WithTimeout(2*time.Second), WithRetries(3))
				el := time.Since(start)
				total := 0
				for j, s := range over {
					n := int(s.requests.Load() - before[j])
					if n > 1 {
						t.Errorf("call %d: %s was asked %d times; an instance that refused must not be asked again", i, s.addr(), n)
					}
					total += n
				}
				if total != tc.want {
					t.Errorf("call %d: %d requests to overloaded instances, want %d", i, total, tc.want)
				}
				switch {
				case tc.withRoom && (err != nil || r.Addr != room.addr || r.Sum != i+1):
					t.Errorf("call %d: %+v, %v; want an answer from %s, which has room", i, r, err, room.addr)
				case !tc.withRoom && !errors.Is(err, ErrOverloaded):
					t.Errorf("call %d: error %v, want ErrOverloaded", i, err)
				}
				if i == 0 {
					t.Logf("%s: %v after %v", tc.name, err, el.Round(time.Microsecond))
				}
			}
			// Refusals are no failures of the instance: nothing was ejected.
			tg := cli.target("Calc")
			for _, a := range addrs {
				if h := tg.snap.Load().health[a]; h == nil || !h.ejectedUntil.IsZero() {
					t.Errorf("instance %s was ejected for answering overloaded", a)
				}
			}
		})
	}
}

// overloadFirst picks instances in address order, the one with room (if
// any) last, so that each call meets every overloaded instance first.
type overloadFirst struct{ room *fleetServer }

func (overloadFirst) Name() string { return "overload_first" }

func (b overloadFirst) Build(eps []lb.Endpoint) lb.Picker {
	var p orderedPicker
	var last []lb.Endpoint
	for _, ep := range eps {
		if b.room != nil && ep.Addr == b.room.addr {
			last = append(last, ep)
		} else {
			p = append(p, ep)
		}
	}
	return append(p, last...)
}
