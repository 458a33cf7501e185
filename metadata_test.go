package rpc

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// Meta is a service whose handlers set response headers.
type Meta struct{}

// Set sets a=3 (after a=1: the last wins), b=2, and invalid headers that
// must be dropped.
func (Meta) Set(ctx context.Context, n int, reply *int) error {
	SetHeader(ctx, "a", "1")
	SetHeader(ctx, "b", "2")
	SetHeader(ctx, "a", "3")
	SetHeader(ctx, ":code", "reserved")
	SetHeader(ctx, "", "empty key")
	SetHeader(ctx, strings.Repeat("k", 256), "key too long")
	SetHeader(ctx, "big", strings.Repeat("v", 1<<16))
	*reply = n
	return nil
}

// Fail sets a header and fails.
func (Meta) Fail(ctx context.Context, n int, reply *int) error {
	SetHeader(ctx, "why", "testing")
	return errors.New("failed on purpose")
}

// None sets no header.
func (Meta) None(ctx context.Context, n int, reply *int) error { *reply = n; return nil }

var wantMeta = map[string]string{"a": "3", "b": "2"}

func newMetaPair(t testing.TB, sopts []ServerOption, copts ...ClientOption) (*Client, string) {
	t.Helper()
	srv := NewServer(sopts...)
	if err := srv.Register(&Meta{}); err != nil {
		t.Fatal(err)
	}
	return serveAndDial(t, srv, copts...)
}

func TestResponseHeaderAllModes(t *testing.T) {
	pass := func(ctx context.Context, call *Call, next Invoker) error { return next(ctx, call) }
	for _, tt := range []struct {
		name  string
		copts []ClientOption
	}{
		{name: "direct"},
		{name: "intercepted", copts: []ClientOption{WithClientInterceptor(pass)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli, _ := newMetaPair(t, nil, tt.copts...)
			var n int
			var h map[string]string
			if err := cli.Call("Meta.Set", 1, &n, WithResponseHeader(&h)); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(h, wantMeta) {
				t.Errorf("Call: WithResponseHeader = %v, want %v", h, wantMeta)
			}
			h = nil
			if err := cli.CallContext(context.Background(), "Meta.Set", 1, &n, WithResponseHeader(&h)); err != nil || !maps.Equal(h, wantMeta) {
				t.Errorf("CallContext: WithResponseHeader = %v, %v; want %v", h, err, wantMeta)
			}
			call := cli.Go("Meta.Set", 1, &n, nil)
			waitCall(t, call, defaultTestTimeout)
			if call.Error != nil || !maps.Equal(call.ResponseHeader, wantMeta) {
				t.Errorf("Go: ResponseHeader = %v, %v; want %v", call.ResponseHeader, call.Error, wantMeta)
			}
			done := make(chan *Call, 1)
			cli.Callback("Meta.Set", 1, &n, func(c *Call) { done <- c })
			select {
			case c := <-done:
				if c.Error != nil || !maps.Equal(c.ResponseHeader, wantMeta) {
					t.Errorf("Callback: ResponseHeader = %v, %v; want %v", c.ResponseHeader, c.Error, wantMeta)
				}
			case <-time.After(defaultTestTimeout):
				t.Fatal("Callback never ran")
			}

			// Error responses carry headers too.
			h = nil
			err := cli.Call("Meta.Fail", 1, &n, WithResponseHeader(&h))
			var se ServerError
			if !errors.As(err, &se) || h["why"] != "testing" {
				t.Errorf("failing Call = %v with headers %v, want a ServerError with why=testing", err, h)
			}
			// No headers: nil, whatever h held.
			h = map[string]string{"stale": "x"}
			if err := cli.Call("Meta.None", 1, &n, WithResponseHeader(&h)); err != nil || h != nil {
				t.Errorf("Call without headers: WithResponseHeader = %v, %v; want nil", h, err)
			}
		})
	}
}

func TestSetHeaderFromInterceptor(t *testing.T) {
	around := func(ctx context.Context, req *Request, next Handler) (any, error) {
		SetHeader(ctx, "before", "1")
		// A derived ctx reaches the same call.
		reply, err := next(context.WithValue(ctx, struct{}{}, 0), req)
		SetHeader(ctx, "after", "2")
		return reply, err
	}
	cli, _ := newMetaPair(t, []ServerOption{WithServerInterceptor(around)})
	var n int
	var h map[string]string
	if err := cli.Call("Meta.None", 1, &n, WithResponseHeader(&h)); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"before": "1", "after": "2"}; !maps.Equal(h, want) {
		t.Errorf("headers = %v, want %v", h, want)
	}
	SetHeader(context.Background(), "k", "v") // not a call's ctx: nothing happens
}

// TestResponseMetaWire reads responses as raw frames: headers travel in the
// metadata section that every response frame has always had (metalen), so
// a reader that skips metalen bytes, as the Go client before response
// headers did, still finds the body; a response without headers has
// metalen 0 and is byte for byte what it was.
func TestResponseMetaWire(t *testing.T) {
	_, addr := newMetaPair(t, nil)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(defaultTestTimeout))
	read := func() (wire.Header, []byte, []byte) {
		t.Helper()
		var hb [wire.HeaderSize]byte
		if _, err := io.ReadFull(nc, hb[:]); err != nil {
			t.Fatal(err)
		}
		h, err := wire.ParseHeader(hb[:], wire.DefaultMaxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, h.PayloadLen())
		if _, err := io.ReadFull(nc, payload); err != nil {
			t.Fatal(err)
		}
		return h, payload[h.MethodLen : int(h.MethodLen)+int(h.MetaLen)], payload[int(h.MethodLen)+int(h.MetaLen):]
	}

	if _, err := nc.Write(frame(wire.TypeRequest, 1, "Meta.Set", []byte{0x07})); err != nil {
		t.Fatal(err)
	}
	h, meta, body := read()
	if h.Status != wire.StatusOK || h.MetaLen == 0 || string(body) != "\x07" {
		t.Fatalf("response = %+v meta %q body % x; want status 0, metadata, body 07", h, meta, body)
	}
	got := map[string]string{}
	if err := wire.ParseMeta(meta, func(k, v []byte) error { got[string(k)] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, wantMeta) {
		t.Errorf("response metadata = %v, want %v", got, wantMeta)
	}

	if _, err := nc.Write(frame(wire.TypeRequest, 2, "Meta.None", []byte{0x07})); err != nil {
		t.Fatal(err)
	}
	if h, _, body := read(); h.MetaLen != 0 || string(body) != "\x07" {
		t.Errorf("response without headers = %+v body % x, want metalen 0, body 07", h, body)
	}
}
