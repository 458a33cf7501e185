package rpc

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/seedrpc/rpc/internal/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// FuzzSvc is a service with cheap, bounded methods for FuzzReadFrame.
type FuzzSvc struct{}

func (FuzzSvc) Add(args Args, reply *int) error { *reply = args.A + args.B; return nil }

func (FuzzSvc) Echo(b []byte, reply *[]byte) error { *reply = b; return nil }

func (FuzzSvc) Ints(v []int, reply *int) error { *reply = len(v); return nil }

func (FuzzSvc) Any(v any, reply *any) error { *reply = v; return nil }

func (FuzzSvc) Panic(_ int, _ *int) error { panic("fuzz") }

func (FuzzSvc) Map(m map[string]Args, reply *int) error { *reply = len(m); return nil }

// requestFrame builds a request frame with metadata.
func requestFrame(typ wire.Type, seq uint64, codecID byte, method string, meta, body []byte) []byte {
	b := make([]byte, wire.HeaderSize)
	wire.PutHeader(b, &wire.Header{Type: typ, Codec: codecID, Seq: seq, MethodLen: uint16(len(method)), MetaLen: uint32(len(meta)), BodyLen: uint32(len(body))})
	b = append(b, method...)
	b = append(b, meta...)
	return append(b, body...)
}

// FuzzReadFrame feeds arbitrary bytes to a real server connection over
// net.Pipe: the server must never panic, must close a connection that
// opens with garbage, and must stop cleanly.
func FuzzReadFrame(f *testing.F) {
	timeout := wire.AppendTimeout(nil, 50*time.Millisecond)
	hdr, _ := wire.AppendMeta(nil, "trace", []byte("x"))
	seeds := [][]byte{
		requestFrame(wire.TypeRequest, 1, 1, "FuzzSvc.Add", nil, []byte{0x82, 0xa1, 'A', 1, 0xa1, 'B', 2}),
		requestFrame(wire.TypeRequest, 2, 2, "FuzzSvc.Add", timeout, []byte(`{"A":1,"B":2}`)),
		requestFrame(wire.TypeOneway, 3, 1, "FuzzSvc.Echo", hdr, []byte{0xc4, 2, 'h', 'i'}),
		requestFrame(wire.TypeRequest, 4, 1, "FuzzSvc.Ints", nil, []byte{0xdd, 0xff, 0xff, 0xff, 0xff}),
		requestFrame(wire.TypeRequest, 5, 1, "FuzzSvc.Any", nil, []byte{0xdf, 0xff, 0xff, 0xff, 0xff}),
		requestFrame(wire.TypeRequest, 6, 1, "FuzzSvc.Panic", nil, []byte{1}),
		requestFrame(wire.TypeRequest, 7, 1, "Nope.Add", nil, nil),
		requestFrame(wire.TypeRequest, 8, 9, "FuzzSvc.Add", nil, nil),
		requestFrame(wire.TypeRequest, 9, 1, "FuzzSvc.Map", nil, []byte{0x81, 0xa1, 'k', 0x80}),
		append(requestFrame(wire.TypePing, 1, 0, "", nil, nil), requestFrame(wire.TypeCancel, 1, 0, "", nil, nil)...),
		append(requestFrame(wire.TypeRequest, 1, 1, "FuzzSvc.Add", nil, []byte{0x80}), requestFrame(wire.TypeRequest, 1, 1, "FuzzSvc.Add", nil, []byte{0x80})...),
		requestFrame(wire.TypeDraining, 0, 0, "", nil, nil),
		requestFrame(wire.TypeResponse, 1, 1, "", nil, []byte{0xc0}),
		requestFrame(wire.TypeRequest, 1, 1, "FuzzSvc.Add", []byte{0, 1, 2}, nil),
		requestFrame(wire.TypeRequest, 1, 1, "FuzzSvc.Add", nil, make([]byte, 100))[:40],
		[]byte("GET / HTTP/1.0\r\n\r\n"),
		[]byte(strings.Repeat("\xff", 64)),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		srv := NewServer(WithMaxFrameSize(64<<10), WithMaxCalls(0, 4))
		if err := srv.Register(FuzzSvc{}); err != nil {
			t.Fatal(err)
		}
		cc, sc := net.Pipe()
		go srv.ServeConn(sc) // returns when the server closes it
		closedByServer := make(chan struct{})
		go func() {
			defer close(closedByServer)
			io.Copy(io.Discard, cc) // everything the server answers
		}()
		cc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		cc.Write(data) // fails once the server has closed: fine
		// Garbage is closed at once, unless it opens like net/rpc's protocol,
		// which the server then waits to read on.
		if len(data) > 0 && wire.CheckPrefix(data[:min(len(data), 3)]) != nil && sniffPrefix(data[:min(len(data), 32)]) == sniffOther {
			select {
			case <-closedByServer:
			case <-time.After(5 * time.Second):
				t.Fatalf("server kept a connection open after garbage % x", data[:min(len(data), 16)])
			}
		}
		cc.Close()
		done := make(chan struct{})
		go func() {
			srv.Close()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Server.Close did not return")
		}
		<-closedByServer
	})
}

func TestServerWideCap(t *testing.T) {
	cli, calc, _ := newCalcPair(t, []ServerOption{WithMaxCalls(1, 0)})
	var r int
	first := cli.Go("Calc.Sleep", 500*time.Millisecond, &r, nil, WithTimeout(defaultTestTimeout))
	select {
	case <-calc.started:
	case <-time.After(defaultTestTimeout):
		t.Fatal("handler never started")
	}
	var sum int
	err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second))
	if !errors.Is(err, ErrOverloaded) {
		t.Errorf("second concurrent Call error = %v, want ErrOverloaded", err)
	}
	waitCall(t, first, defaultTestTimeout)
	if first.Error != nil {
		t.Errorf("first Call error = %v", first.Error)
	}
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil || sum != 3 {
		t.Errorf("Call after the first finished = %d, %v; want 3, nil", sum, err)
	}
}

func TestPerConnCap(t *testing.T) {
	cli, probe, _, _ := newProbePair(t, []ServerOption{WithMaxCalls(0, 2)}, WithPoolSize(1))
	const n = 10
	calls := make([]*Call, n)
	replies := make([]int, n)
	for i := range calls {
		calls[i] = cli.Go("Probe.Hold", 30*time.Millisecond, &replies[i], nil, WithTimeout(defaultTestTimeout))
	}
	for _, call := range calls {
		waitCall(t, call, defaultTestTimeout)
		if call.Error != nil {
			t.Fatalf("Go(Probe.Hold) error = %v", call.Error)
		}
	}
	if m := probe.maxRunning.Load(); m > 2 || m < 1 {
		t.Errorf("max concurrent handlers on one connection = %d, want 1..2", m)
	}
}

// TestPerConnCapKeepalive: while the reader waits at the per-connection cap
// it reads no pings either; the client must not take that for a dead peer.
func TestPerConnCapKeepalive(t *testing.T) {
	cli, _, _, _ := newProbePair(t, []ServerOption{WithMaxCalls(0, 1)}, WithPoolSize(1), WithKeepalive(100*time.Millisecond))
	var r1, r2 int
	c1 := cli.Go("Probe.Hold", 800*time.Millisecond, &r1, nil)
	c2 := cli.Go("Probe.Hold", 800*time.Millisecond, &r2, nil)
	waitCall(t, c1, defaultTestTimeout)
	waitCall(t, c2, defaultTestTimeout)
	if c1.Error != nil || c2.Error != nil {
		t.Errorf("calls queued at the per-connection cap failed: %v; %v", c1.Error, c2.Error)
	}
}

func TestGarbageConnections(t *testing.T) {
	var logs syncBuffer
	cli, _, _, addr := newProbePair(t, []ServerOption{WithLogger(newTextLogger(&logs))}, WithPoolSize(1))
	huge := frame(wire.TypeRequest, 1, "Calc.Add", nil)
	binary.BigEndian.PutUint32(huge[20:24], 0xffffffff)
	badVersion := frame(wire.TypeRequest, 1, "Calc.Add", nil)
	badVersion[2] = 9
	truncated := frame(wire.TypeRequest, 1, "Calc.Add", make([]byte, 100))[:wire.HeaderSize+20]
	response := frame(wire.TypeResponse, 1, "", []byte{0xc0})
	tests := []struct {
		name       string
		give       []byte
		closeWrite bool // half-close after sending (a truncated frame, then EOF)
	}{
		{name: "http", give: []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n")},
		{name: "short http", give: []byte("GET / HTTP/1.0\r\n\r\n")},
		{name: "0xff x 64", give: []byte(strings.Repeat("\xff", 64))},
		{name: "huge length", give: huge},
		{name: "bad version", give: badVersion},
		{name: "bad type", give: func() []byte { b := frame(wire.TypeRequest, 1, "", nil); b[3] = 99; return b }()},
		{name: "response from client", give: response},
		{name: "method on ping", give: func() []byte { b := frame(wire.TypeRequest, 1, "Calc.Add", nil); b[3] = byte(wire.TypePing); return b }()},
		{name: "truncated", give: truncated, closeWrite: true},
		{name: "bad metadata", give: func() []byte {
			b := frame(wire.TypeRequest, 1, "Calc.Add", nil)
			binary.BigEndian.PutUint32(b[16:20], 3)
			return append(b, 0, 1, 2)
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write(tt.give); err != nil {
				t.Fatalf("Write = %v", err)
			}
			if tt.closeWrite {
				nc.(*net.TCPConn).CloseWrite()
			}
			if got := expectClosed(t, nc, tt.name); len(got) > 0 {
				t.Errorf("server answered garbage with %d bytes % x", len(got), got[:min(len(got), 32)])
			}
			// Other connections keep working.
			var sum int
			if err := cli.Call("Calc.Add", Args{1, 2}, &sum, WithTimeout(5*time.Second)); err != nil || sum != 3 {
				t.Fatalf("Call(Calc.Add) after garbage = %d, %v; want 3, nil", sum, err)
			}
		})
	}
	if !strings.Contains(logs.String(), "bad frame") {
		t.Errorf("server log does not mention the bad frames:\n%s", logs.String())
	}
}

func TestAllocationBomb(t *testing.T) {
	cli, _, _, addr := newProbePair(t, nil)
	bomb := msgpack.RawMessage{0xdd, 0xff, 0xff, 0xff, 0xff} // array32 of 4G elements
	var n int
	err := cli.Call("Probe.Ints", bomb, &n, WithTimeout(5*time.Second))
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("Call(Probe.Ints, bomb) error = %v, want ErrBadRequest", err)
	}
	for _, b := range [][]byte{
		{0xdc, 0xff, 0xff},                    // array16
		{0xdf, 0xff, 0xff, 0xff, 0xff},        // map32 into []int
		{0xdb, 0xff, 0xff, 0xff, 0xff},        // str32
		{0xc6, 0x7f, 0xff, 0xff, 0xff},        // bin32
		{0x91, 0x91, 0x91, 0x91, 0x91, 0x91},  // nested, truncated
		[]byte(strings.Repeat("\x91", 10000)), // deep nesting
	} {
		err := cli.Call("Probe.Ints", msgpack.RawMessage(b), &n, WithTimeout(5*time.Second))
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("Call(Probe.Ints, % x) error = %v, want ErrBadRequest", b[:min(len(b), 8)], err)
		}
	}
	if err := cli.Call("Probe.Ints", []int{1, 2, 3}, &n); err != nil || n != 3 {
		t.Fatalf("Call(Probe.Ints) after bombs = %d, %v; want 3, nil", n, err)
	}

	// The same bomb in a hand-made frame gets a bad-request response.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(frame(wire.TypeRequest, 7, "Probe.Ints", bomb)); err != nil {
		t.Fatal(err)
	}
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(nc, hb[:]); err != nil {
		t.Fatalf("reading the response header: %v", err)
	}
	h, err := wire.ParseHeader(hb[:], wire.DefaultMaxFrameSize)
	if err != nil {
		t.Fatalf("ParseHeader(response) = %v", err)
	}
	if h.Type != wire.TypeResponse || h.Seq != 7 || h.Status != wire.StatusBadRequest {
		t.Errorf("response = %+v, want a bad-request response to seq 7", h)
	}
}

func TestHandlerPanic(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cli, _, _ := newCalcPair(t, []ServerOption{WithLogger(logger)})
	var r int
	err := cli.Call("Calc.Panic", 1, &r, WithTimeout(5*time.Second))
	if !errors.Is(err, ErrInternal) {
		t.Fatalf("Call(Calc.Panic) error = %v, want ErrInternal", err)
	}
	var se ServerError
	if errors.As(err, &se) {
		t.Errorf("Call(Calc.Panic) error = %v is a ServerError, want ErrInternal only", err)
	}
	for _, leak := range []string{"goroutine ", ".go:", "runtime/debug", "boom"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("Call(Calc.Panic) error %q contains %q (stack or panic value leaked)", err, leak)
		}
	}
	// The server keeps serving.
	if err := cli.Call("Calc.Add", Args{1, 2}, &r); err != nil || r != 3 {
		t.Fatalf("Call(Calc.Add) after panic = %d, %v; want 3, nil", r, err)
	}
	waitFor(t, "panic log", func() bool { return strings.Contains(logs.String(), "boom") })
	got := logs.String()
	for _, want := range []string{"Calc.Panic", "boom", "goroutine ", "helpers_test.go"} { // where Calc.Panic lives
		if !strings.Contains(got, want) {
			t.Errorf("server log lacks %q; log:\n%s", want, got)
		}
	}
}

func TestLargePayload(t *testing.T) {
	cli, _, _ := newCalcPair(t, nil)
	for _, size := range []int{1 << 20, 4<<20 + 17} {
		in := make([]byte, size)
		rand.Read(in)
		var out []byte
		if err := cli.Call("Calc.Echo", in, &out, WithTimeout(defaultTestTimeout)); err != nil {
			t.Fatalf("Call(Calc.Echo, %d bytes) = %v", size, err)
		}
		if !bytes.Equal(in, out) {
			t.Fatalf("Call(Calc.Echo, %d bytes) returned %d bytes, not the same", size, len(out))
		}
	}
}

// TestServerCallSize guards the size of the call state allocated for every
// request: 240 bytes is its allocation size class on 64-bit platforms, and
// a field that took it past would cost every call 16 bytes more garbage.
func TestServerCallSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are checked on 64-bit platforms")
	}
	if got := unsafe.Sizeof(serverCall{}); got > 240 {
		t.Errorf("serverCall is %d bytes, want at most 240 (its size class)", got)
	}
}
