package rpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/codec"
	"github.com/seedrpc/rpc/internal/compress"
	"github.com/seedrpc/rpc/internal/wire"
)

// compressible returns n bytes of text-like, compressible data.
func compressible(n int) []byte {
	words := strings.Fields("order payment invoice customer shipment warehouse product price discount latency")
	r := rand.New(rand.NewPCG(uint64(n), 1))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "%s %s #%d; ", words[r.IntN(len(words))], words[r.IntN(len(words))], r.IntN(1e5))
	}
	return b.Bytes()[:n]
}

// incompressible returns n random bytes.
func incompressible(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 2))
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// compressedPair returns a client of a Calc server reached through a
// counting proxy, after one call (so the hellos have been exchanged).
func compressedPair(t *testing.T, sopts []ServerOption, copts ...ClientOption) (*Client, *tcpProxy) {
	t.Helper()
	srv := NewServer(sopts...)
	if err := srv.Register(&Calc{started: make(chan struct{}, 1)}); err != nil {
		t.Fatal(err)
	}
	p := newCountProxy(t, startServer(t, srv))
	return dialWarm(t, p.addr(), copts...), p
}

// echo calls Calc.Echo with body and returns the bytes the call put on the
// wire in each direction.
func echo(t *testing.T, cli *Client, p *tcpProxy, body []byte) (up, down int64) {
	t.Helper()
	up0, down0 := p.up.Load(), p.down.Load()
	var out []byte
	if err := cli.Call("Calc.Echo", body, &out, WithTimeout(defaultTestTimeout)); err != nil {
		t.Fatalf("Call(Calc.Echo, %d bytes) = %v", len(body), err)
	}
	if !bytes.Equal(out, body) {
		t.Fatalf("Call(Calc.Echo, %d bytes) returned %d different bytes", len(body), len(out))
	}
	// The reply has been read by the client, so the proxy forwarded it.
	return p.up.Load() - up0, p.down.Load() - down0
}

// TestCompressionThreshold: bodies under the threshold travel as they are,
// bodies at or over it are compressed in both directions (bytes counted on
// the wire), and a server without the option answers uncompressed.
func TestCompressionThreshold(t *testing.T) {
	const minSize = 4 << 10
	cli, p := compressedPair(t, []ServerOption{WithCompression(minSize)}, WithCompression(minSize))
	small := compressible(minSize - 100)
	up, down := echo(t, cli, p, small)
	if up < int64(len(small)) || down < int64(len(small)) {
		t.Errorf("a %d-byte body under the %d threshold took %d bytes up, %d down: compressed, want raw", len(small), minSize, up, down)
	}
	big := compressible(64 << 10)
	up, down = echo(t, cli, p, big)
	if up > int64(len(big))/2 || down > int64(len(big))/2 {
		t.Errorf("a %d-byte compressible body took %d bytes up, %d down; want under half", len(big), up, down)
	}

	cli2, p2 := compressedPair(t, nil, WithCompression(minSize)) // server without compression
	up, down = echo(t, cli2, p2, big)
	if up > int64(len(big))/2 {
		t.Errorf("request of %d compressible bytes took %d bytes to a server that accepts compression", len(big), up)
	}
	if down < int64(len(big)) {
		t.Errorf("server without WithCompression answered %d bytes with %d: compressed", len(big), down)
	}
}

// TestCompressionRatio: compressible bodies shrink several times;
// incompressible ones are sent raw (not paid twice).
func TestCompressionRatio(t *testing.T) {
	cli, p := compressedPair(t, []ServerOption{WithCompression(1024)}, WithCompression(1024))
	body := compressible(1 << 20)
	up, down := echo(t, cli, p, body)
	t.Logf("1 MiB compressible: %d bytes up (ratio %.1f), %d down", up, float64(len(body))/float64(up), down)
	if up*2 > int64(len(body)) || down*2 > int64(len(body)) {
		t.Errorf("1 MiB of compressible text took %d bytes up, %d down; want under half", up, down)
	}
	rnd := incompressible(1 << 20)
	up, down = echo(t, cli, p, rnd)
	if up < int64(len(rnd)) || up > int64(len(rnd))+1024 || down < int64(len(rnd)) || down > int64(len(rnd))+1024 {
		t.Errorf("1 MiB of random bytes took %d bytes up, %d down; want raw (about 1 MiB)", up, down)
	}
}

// bomb returns a compressed body of n zero bytes.
func bomb(t testing.TB, n int) []byte {
	t.Helper()
	enc, ok := compress.Compress(nil, make([]byte, n))
	if !ok {
		t.Fatal("zeros did not compress")
	}
	return enc
}

// heapAfterGC returns the live heap after a collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestCompressionBombServer: a request whose compressed body inflates past
// the server's frame limit is answered with status 20 without being
// inflated (memory stays flat) and the connection goes on serving.
func TestCompressionBombServer(t *testing.T) {
	srv := NewServer(WithMaxFrameSize(1 << 20))
	if err := srv.Register(&Calc{started: make(chan struct{}, 1)}); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	body := bomb(t, 15<<20)
	t.Logf("15 MiB of zeros compress to %d bytes", len(body))
	var ms0 runtime.MemStats
	heap0 := heapAfterGC()
	runtime.ReadMemStats(&ms0)
	f := frame(wire.TypeRequest, 7, "Calc.Echo", body)
	f[4] |= wire.CompressS2
	if _, err := nc.Write(f); err != nil {
		t.Fatal(err)
	}
	h, msg := readResponse(t, nc)
	if h.Seq != 7 || h.Status != wire.StatusTooLarge {
		t.Fatalf("answer to a compression bomb = seq %d status %d (%s), want seq 7 status %d", h.Seq, h.Status, msg, wire.StatusTooLarge)
	}
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	heap1 := heapAfterGC()
	if alloc := ms1.TotalAlloc - ms0.TotalAlloc; alloc > 4<<20 {
		t.Errorf("the server allocated %d bytes for a bomb of %d bytes, want well under the 15 MiB it claims", alloc, len(body))
	}
	t.Logf("heap %d -> %d bytes; %d bytes allocated meanwhile", heap0, heap1, ms1.TotalAlloc-ms0.TotalAlloc)
	if !strings.Contains(string(msg), "Calc.Echo") {
		t.Errorf("bomb refusal %q does not name the method", msg)
	}
	// The same connection goes on: a well-formed compressed request works.
	payload := compressible(8 << 10)
	args, _ := codec.Msgpack{}.AppendMarshal(nil, payload)
	enc, ok := compress.Compress(nil, args)
	if !ok {
		t.Fatal("args did not compress")
	}
	f = frame(wire.TypeRequest, 8, "Calc.Echo", enc)
	f[4] |= wire.CompressS2
	if _, err := nc.Write(f); err != nil {
		t.Fatal(err)
	}
	h, reply := readResponse(t, nc)
	if h.Seq != 8 || h.Status != wire.StatusOK {
		t.Fatalf("compressed request after the bomb = seq %d status %d (%s), want 8 OK", h.Seq, h.Status, reply)
	}
	if h.Codec&wire.CompressMask != 0 {
		t.Errorf("server without WithCompression answered with codec byte %#x", h.Codec)
	}
	var got []byte
	if err := (codec.Msgpack{}).Unmarshal(reply[h.MetaLen:], &got); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("echo of a compressed request = %d bytes, %v; want the %d sent", len(got), err, len(payload))
	}
}

// TestCompressionBombClient: a reply that would inflate past the client's
// frame limit fails its call alone with ErrTooLarge; the connection goes on.
func TestCompressionBombClient(t *testing.T) {
	body := bomb(t, 15<<20)
	addr := oldServer(t, func(h wire.Header, method string, body []byte) []byte {
		if method == "Calc.Bomb" {
			return respFrame(h.Seq, 1|wire.CompressS2, wire.StatusOK, bomb(t, 15<<20))
		}
		return respFrame(h.Seq, 1, wire.StatusOK, body)
	})
	cli, err := Dial("tcp", addr, WithMaxFrameSize(1<<20), WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	heap0 := heapAfterGC()
	var out []byte
	err = cli.Call("Calc.Bomb", []byte("x"), &out, WithTimeout(defaultTestTimeout))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("call answered with a %d-byte bomb = %v, want ErrTooLarge", len(body), err)
	}
	heap1 := heapAfterGC()
	if heap1 > heap0+4<<20 {
		t.Errorf("heap grew from %d to %d bytes after a bomb", heap0, heap1)
	}
	if err := cli.Call("Calc.Echo", []byte("hi"), &out, WithTimeout(defaultTestTimeout)); err != nil || string(out) != "hi" {
		t.Errorf("call after the bomb = %q, %v; want hi on the same connection", out, err)
	}
}

// oldServer serves an old-style (or scripted) peer on loopback: it answers
// pings with empty pongs, skipping their payload like servers before
// compression, and each request with the frames answer returns.
func oldServer(t testing.TB, answer func(h wire.Header, method string, body []byte) []byte) string {
	t.Helper()
	lis := listenLoopback(t)
	var wg sync.WaitGroup
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				var hb [wire.HeaderSize]byte
				for {
					if _, err := io.ReadFull(nc, hb[:]); err != nil {
						return
					}
					h, err := wire.ParseHeader(hb[:], 64<<20)
					if err != nil {
						return
					}
					payload := make([]byte, h.PayloadLen())
					if _, err := io.ReadFull(nc, payload); err != nil {
						return
					}
					var out []byte
					switch h.Type {
					case wire.TypePing:
						out = frame(wire.TypePong, h.Seq, "", nil)
					case wire.TypeRequest:
						out = answer(h, string(payload[:h.MethodLen]), payload[int(h.MethodLen)+int(h.MetaLen):])
					default:
						continue
					}
					if _, err := nc.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return lis.Addr().String()
}

// TestCompressionOldServer: a client with compression on talks to a server
// that predates it (no hello answer): it never sends compressed bodies, nor
// chunks.
func TestCompressionOldServer(t *testing.T) {
	var compressed atomic.Int32
	addr := oldServer(t, func(h wire.Header, _ string, body []byte) []byte {
		if h.Codec != 1 {
			compressed.Add(1)
			return respFrame(h.Seq, 0, wire.StatusBadRequest, []byte("unknown codec"))
		}
		return respFrame(h.Seq, 1, wire.StatusOK, body)
	})
	cli, err := Dial("tcp", addr, WithCompression(1), WithPoolSize(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	body := compressible(200 << 10) // over a chunk: it must go whole
	for range 3 {
		var out []byte
		if err := cli.Call("Calc.Echo", body, &out, WithTimeout(defaultTestTimeout)); err != nil || !bytes.Equal(out, body) {
			t.Fatalf("Call(Calc.Echo) to an old server = %d bytes, %v", len(out), err)
		}
	}
	if n := compressed.Load(); n > 0 {
		t.Errorf("client sent %d compressed requests to a server that never announced support", n)
	}
}

// TestCompressionOldClient: a client that predates compression (raw
// frames, no hello) gets uncompressed replies from a server with
// compression on; its unknown codec byte in a request is answered with
// status 4 on a connection that stays open.
func TestCompressionOldClient(t *testing.T) {
	srv := NewServer(WithCompression(1))
	if err := srv.Register(&Calc{started: make(chan struct{}, 1)}); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", startServer(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	payload := compressible(32 << 10)
	args, _ := codec.Msgpack{}.AppendMarshal(nil, payload)
	if _, err := nc.Write(frame(wire.TypeRequest, 1, "Calc.Echo", args)); err != nil {
		t.Fatal(err)
	}
	h, reply := readResponse(t, nc)
	if h.Status != wire.StatusOK || h.Codec != 1 {
		t.Fatalf("reply to an old client: status %d codec byte %#x, want 0 and 0x01 (uncompressed)", h.Status, h.Codec)
	}
	var got []byte
	if err := (codec.Msgpack{}).Unmarshal(reply[h.MetaLen:], &got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("reply = %d bytes, %v", len(got), err)
	}
	f := frame(wire.TypeRequest, 2, "Calc.Echo", args)
	f[4] = 1 | 0x30 // a compression this server does not know
	if _, err := nc.Write(f); err != nil {
		t.Fatal(err)
	}
	if h, msg := readResponse(t, nc); h.Seq != 2 || h.Status != wire.StatusBadRequest {
		t.Fatalf("unknown compression: seq %d status %d (%s), want 2 and %d", h.Seq, h.Status, msg, wire.StatusBadRequest)
	}
	// A hello is answered with the server's features.
	if _, err := nc.Write(helloFrame); err != nil {
		t.Fatal(err)
	}
	var hb [wire.HeaderSize]byte
	nc.SetReadDeadline(time.Now().Add(defaultTestTimeout))
	if _, err := io.ReadFull(nc, hb[:]); err != nil {
		t.Fatal(err)
	}
	ph, _ := wire.ParseHeader(hb[:], 1<<20)
	meta := make([]byte, ph.PayloadLen())
	if _, err := io.ReadFull(nc, meta); err != nil {
		t.Fatal(err)
	}
	if h := wire.ParseHello(meta); ph.Type != wire.TypePong || !h.S2 || h.ConnCalls != 256 {
		t.Errorf("answer to a hello: %s with metadata %q, want a pong listing s2 and the limit of 256 calls per connection", ph.Type, meta)
	}
}

// respFrame builds a response frame.
func respFrame(seq uint64, codecByte byte, status wire.Status, body []byte) []byte {
	out := make([]byte, wire.HeaderSize, wire.HeaderSize+len(body))
	wire.PutHeader(out, &wire.Header{Type: wire.TypeResponse, Codec: codecByte, Status: status, Seq: seq, BodyLen: uint32(len(body))})
	return append(out, body...)
}
