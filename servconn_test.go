package rpc

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// FuzzSvc is a service with cheap, bounded methods for FuzzReadFrame.
type FuzzSvc struct{}

func (FuzzSvc) Add(args Args, reply *int) error         { *reply = args.A + args.B; return nil }
func (FuzzSvc) Echo(b []byte, reply *[]byte) error      { *reply = b; return nil }
func (FuzzSvc) Ints(v []int, reply *int) error          { *reply = len(v); return nil }
func (FuzzSvc) Any(v any, reply *any) error             { *reply = v; return nil }
func (FuzzSvc) Panic(_ int, _ *int) error               { panic("fuzz") }
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
		srv.ServeConn(sc)
		closedByServer := make(chan struct{})
		go func() {
			defer close(closedByServer)
			io.Copy(io.Discard, cc) // everything the server answers
		}()
		cc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		cc.Write(data) // fails once the server has closed: fine
		if len(data) > 0 && wire.CheckPrefix(data[:min(len(data), 3)]) != nil {
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
