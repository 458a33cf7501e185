package rpc

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// TestChunksSmallCallOvertakes: on a single connection, a small call made
// while an 8 MiB request (then an 8 MiB reply) is mid-flight completes
// before the large call does: the large body travels in chunks that other
// frames pass. The link is throttled so that the large transfer is
// certainly in progress; the test checks ordering, not time.
func TestChunksSmallCallOvertakes(t *testing.T) {
	cli, p := compressedPair(t, nil)
	cli.bulkMin = math.MaxUint32 // on the one connection, not one of its own
	p.throttle.Store(16 << 10)   // bytes per ms each way
	body := incompressible(8 << 20)
	up0, down0 := p.up.Load(), p.down.Load()
	var out []byte
	big := &Call{Done: make(chan *Call, 1)}
	go func() { // Go itself writes the request, as far as the writer lets it
		big.Error = cli.Call("Calc.Echo", body, &out, WithTimeout(2*time.Minute))
		big.Done <- big
	}()
	small := func(phase string) {
		t.Helper()
		var r int
		if err := cli.Call("Calc.Add", Args{2, 3}, &r, WithTimeout(time.Minute)); err != nil || r != 5 {
			t.Fatalf("%s: small call = %d, %v", phase, r, err)
		}
		select {
		case <-big.Done:
			t.Fatalf("%s: the small call completed only after the 8 MiB call (error %v): it waited behind the large body", phase, big.Error)
		default:
		}
	}
	waitFor(t, "the large request to be mid-flight", func() bool { return p.up.Load()-up0 > 1<<20 })
	small("request mid-flight")
	// Some of the request sat in socket buffers ahead of the small call;
	// the rest, still in the client, must not have.
	if n := p.up.Load() - up0; n >= int64(len(body)) {
		t.Fatalf("the small call completed only after the whole %d-byte request went (%d bytes): it waited behind it", len(body), n)
	}
	waitFor(t, "the large reply to be mid-flight", func() bool { return p.down.Load()-down0 > 1<<20 })
	small("reply mid-flight")
	p.throttle.Store(0)
	waitCall(t, big, time.Minute)
	if big.Error != nil || !bytes.Equal(out, body) {
		t.Fatalf("the 8 MiB echo = %d bytes, %v", len(out), big.Error)
	}
}

// TestChunksCompressedAndConcurrent: many large calls at once, compressed
// or not, some over the chunk limit per connection, all come back whole.
func TestChunksCompressedAndConcurrent(t *testing.T) {
	cli, _ := compressedPair(t, []ServerOption{WithCompression(1024)}, WithCompression(1024))
	calls := make([]*Call, 0, 24)
	bodies := make([][]byte, 0, 24)
	outs := make([][]byte, 24)
	for i := range 24 {
		var b []byte
		if i%2 == 0 {
			b = compressible(300<<10 + i*1000)
		} else {
			b = incompressible(300<<10 + i*1000)
		}
		bodies = append(bodies, b)
		calls = append(calls, cli.Go("Calc.Echo", b, &outs[i], nil, WithTimeout(time.Minute)))
	}
	for i, c := range calls {
		waitCall(t, c, time.Minute)
		if c.Error != nil || !bytes.Equal(outs[i], bodies[i]) {
			t.Errorf("echo %d of %d bytes = %d bytes, %v", i, len(bodies[i]), len(outs[i]), c.Error)
		}
	}
}

// TestChunksTooLarge: a chunked request whose pieces add up to more than
// the server's frame limit fails alone with ErrTooLarge, and so does a
// chunked reply over the client's; the connection goes on.
func TestChunksTooLarge(t *testing.T) {
	cli, p := compressedPair(t, []ServerOption{WithMaxFrameSize(1 << 20)}, WithMaxFrameSize(4<<20))
	var out []byte
	err := cli.Call("Calc.Echo", incompressible(2<<20), &out, WithTimeout(time.Minute))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("chunked 2 MiB request to a 1 MiB server = %v, want ErrTooLarge", err)
	}
	if err := cli.Call("Calc.Echo", []byte("hi"), &out); err != nil || string(out) != "hi" {
		t.Fatalf("call after a too-large chunked request = %q, %v", out, err)
	}
	_ = p

	// A server sends a chunked reply whose pieces go over the client's
	// limit: that call fails alone, the next one works.
	addr := oldServer(t, func(h wire.Header, method string, body []byte) []byte {
		if method != "Calc.Big" {
			return respFrame(h.Seq, 1, wire.StatusOK, body)
		}
		out := respFrame(h.Seq, 1|wire.FlagMore, wire.StatusOK, make([]byte, chunkSize))
		for i := range 3 {
			f := respFrame(h.Seq, wire.FlagMore, wire.StatusOK, make([]byte, 512<<10))
			f[3] = byte(wire.TypeContinuation)
			if i == 2 {
				f[4] = 0
			}
			out = append(out, f...)
		}
		return out
	})
	cli2, err := Dial("tcp", addr, WithMaxFrameSize(1<<20), WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	if err := cli2.Call("Calc.Big", []byte("x"), &out, WithTimeout(time.Minute)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("chunked 1.6 MiB reply to a 1 MiB client = %v, want ErrTooLarge", err)
	}
	if err := cli2.Call("Calc.Echo", []byte("hi"), &out, WithTimeout(time.Minute)); err != nil || string(out) != "hi" {
		t.Fatalf("call after a too-large chunked reply = %q, %v", out, err)
	}
}

// TestChunksAbandoned: a call that times out while its large request is
// being sent in chunks ends the message with an abort frame; the server
// drops it and the connection goes on.
func TestChunksAbandoned(t *testing.T) {
	cli, p := compressedPair(t, nil)
	p.throttle.Store(8 << 10)
	var out []byte
	err := cli.Call("Calc.Echo", incompressible(4<<20), &out, WithTimeout(100*time.Millisecond))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("4 MiB call with a 100 ms timeout on a slow link = %v, want ErrTimeout", err)
	}
	p.throttle.Store(0)
	var r int
	if err := cli.Call("Calc.Add", Args{1, 2}, &r, WithTimeout(time.Minute)); err != nil || r != 3 {
		t.Fatalf("call after an abandoned chunked request = %d, %v", r, err)
	}
}

// TestChunksDrainMidReply: a server shut down while a chunked reply is on
// its way finishes it; the client, told to drain, does not close the
// connection under it.
func TestChunksDrainMidReply(t *testing.T) {
	srv := NewServer()
	if err := srv.Register(&Calc{started: make(chan struct{}, 1)}); err != nil {
		t.Fatal(err)
	}
	p := newCountProxy(t, startServer(t, srv))
	cli := dialWarm(t, p.addr())
	body := incompressible(4 << 20)
	down0 := p.down.Load()
	p.throttle.Store(16 << 10)
	var out []byte
	big := cli.Go("Calc.Echo", body, &out, nil, WithTimeout(time.Minute))
	waitFor(t, "the reply to be mid-flight", func() bool { return p.down.Load()-down0 > 1<<20 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	waitCall(t, big, time.Minute)
	if big.Error != nil || !bytes.Equal(out, body) {
		t.Fatalf("4 MiB echo across a shutdown = %d bytes, %v", len(out), big.Error)
	}
	p.throttle.Store(0)
	if err := recvErr(t, done, "Shutdown"); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
}

// TestChunksOneway: a large oneway goes in chunks and runs once whole.
func TestChunksOneway(t *testing.T) {
	cli, probe, _, _ := newProbePair(t, nil, WithPoolSize(1))
	var r int
	if err := cli.Call("Probe.Note", "warm", &r); err != nil {
		t.Fatal(err)
	}
	select {
	case <-probe.oneway:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Probe.Note did not report")
	}
	big := string(compressible(300 << 10))
	if err := cli.Oneway("Probe.Note", big); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-probe.oneway:
		if got != big {
			t.Errorf("oneway of %d bytes arrived as %d bytes", len(big), len(got))
		}
	case <-time.After(defaultTestTimeout):
		t.Fatal("the large oneway did not run")
	}
}
