package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// Coded is a service whose Fail returns the error named by its args.
type Coded struct{ calls atomic.Int32 }

func (c *Coded) Fail(ctx context.Context, kind string, reply *int) error {
	c.calls.Add(1)
	switch kind {
	case "coded":
		return Errorf(404, "user %d not found", 7)
	case "wrapped":
		return fmt.Errorf("loading profile: %w", Errorf(403, "not yours"))
	case "zero":
		return Errorf(0, "code zero")
	case "negative":
		return &Error{Code: -2, Message: "negative"}
	case "empty":
		return &Error{Code: 5}
	case "headers":
		SetHeader(ctx, "retry-after", "3s")
		return Errorf(429, "slow down")
	case "plain":
		return errors.New("plain failure")
	case "unauthenticated":
		return fmt.Errorf("%w: secret reason", ErrUnauthenticated)
	}
	return nil
}

func TestCodedErrors(t *testing.T) {
	tests := []struct {
		give      string
		wantCode  int
		wantMsg   string
		wantText  string
		wantCoded bool
	}{
		{give: "coded", wantCoded: true, wantCode: 404, wantMsg: "user 7 not found", wantText: "user 7 not found"},
		{give: "wrapped", wantCoded: true, wantCode: 403, wantMsg: "loading profile: not yours", wantText: "loading profile: not yours"},
		{give: "zero", wantCoded: true, wantCode: 0, wantMsg: "code zero", wantText: "code zero"},
		{give: "negative", wantCoded: true, wantCode: -2, wantMsg: "negative", wantText: "negative"},
		{give: "empty", wantCoded: true, wantCode: 5, wantMsg: "", wantText: "rpc: error code 5"},
		{give: "plain", wantText: "plain failure"},
	}
	pass := func(ctx context.Context, req *Request, next Handler) (any, error) { return next(ctx, req) }
	for _, mode := range []struct {
		name  string
		sopts []ServerOption
	}{{name: "direct"}, {name: "intercepted", sopts: []ServerOption{WithServerInterceptor(pass)}}} {
		srv := NewServer(mode.sopts...)
		coded := &Coded{}
		if err := srv.Register(coded); err != nil {
			t.Fatal(err)
		}
		cli, _ := serveAndDial(t, srv)
		for _, tt := range tests {
			var n int
			err := cli.Call("Coded.Fail", tt.give, &n, WithRetries(3))
			var e *Error
			if got := errors.As(err, &e); got != tt.wantCoded {
				t.Errorf("%s: Call(%q) error = %#v, errors.As(*Error) = %v, want %v", mode.name, tt.give, err, got, tt.wantCoded)
				continue
			}
			if err == nil || err.Error() != tt.wantText {
				t.Errorf("%s: Call(%q) error text = %v, want %q", mode.name, tt.give, err, tt.wantText)
			}
			var se ServerError
			if isSE := errors.As(err, &se); isSE == tt.wantCoded {
				t.Errorf("%s: Call(%q) error is a ServerError: %v, want %v", mode.name, tt.give, isSE, !tt.wantCoded)
			}
			if tt.wantCoded && (e.Code != tt.wantCode || e.Message != tt.wantMsg) {
				t.Errorf("%s: Call(%q) = Error{%d, %q}, want Error{%d, %q}", mode.name, tt.give, e.Code, e.Message, tt.wantCode, tt.wantMsg)
			}
		}
		if got, want := coded.calls.Load(), int32(len(tests)); got != want {
			t.Errorf("%s: handler ran %d times for %d calls with WithRetries(3), want no retry", mode.name, got, want)
		}

		var n int
		var h map[string]string
		err := cli.Call("Coded.Fail", "headers", &n, WithResponseHeader(&h))
		var e *Error
		if !errors.As(err, &e) || e.Code != 429 || h["retry-after"] != "3s" {
			t.Errorf("%s: coded error with headers = %v, headers %v; want code 429, retry-after=3s", mode.name, err, h)
		}
		err = cli.Call("Coded.Fail", "unauthenticated", &n)
		if !errors.Is(err, ErrUnauthenticated) || err.Error() != "rpc: unauthenticated" {
			t.Errorf("%s: handler's ErrUnauthenticated = %q, want ErrUnauthenticated without the reason", mode.name, err)
		}
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		give *Error
		want string
	}{
		{give: &Error{Code: 1, Message: "m"}, want: "m"},
		{give: &Error{Code: 7}, want: "rpc: error code 7"},
	}
	for _, tt := range tests {
		if got := tt.give.Error(); got != tt.want {
			t.Errorf("(%#v).Error() = %q, want %q", tt.give, got, tt.want)
		}
	}
	err := Errorf(12, "%s-%d", "x", 3)
	var e *Error
	if !errors.As(err, &e) || e.Code != 12 || e.Message != "x-3" {
		t.Errorf("Errorf(12, ...) = %#v, want &Error{12, \"x-3\"}", err)
	}
}

// TestCodedErrorWire: a coded error is status 1 with the message as body,
// as for any handler error (a client that knows nothing of codes sees the
// same ServerError text), plus a :code entry of 8 bytes.
func TestCodedErrorWire(t *testing.T) {
	srv := NewServer()
	if err := srv.Register(&Coded{}); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(defaultTestTimeout))
	if _, err := nc.Write(frame(wire.TypeRequest, 1, "Coded.Fail", []byte("\xa5coded"))); err != nil {
		t.Fatal(err)
	}
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
	meta, body := payload[:h.MetaLen], payload[h.MetaLen:]
	if h.Status != wire.StatusServerError || string(body) != "user 7 not found" {
		t.Errorf("coded error response = status %d body %q, want status 1, body %q", h.Status, body, "user 7 not found")
	}
	want := "\x05:code\x00\x08\x00\x00\x00\x00\x00\x00\x01\x94" // 404
	if string(meta) != want {
		t.Errorf("coded error metadata = % x, want % x", meta, want)
	}
}
