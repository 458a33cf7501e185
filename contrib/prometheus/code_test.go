package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	rpc "github.com/seedrpc/rpc"
)

func TestClientCode(t *testing.T) {
	tests := []struct {
		give error
		want string
	}{
		{nil, "OK"},
		{rpc.Errorf(3, "no"), "Error"},
		{rpc.ServerError("boom"), "ServerError"},
		{fmt.Errorf("call: %w", rpc.ErrTimeout), "Timeout"},
		{context.Canceled, "Canceled"},
		{fmt.Errorf("call: %w", rpc.ErrUnauthenticated), "Unauthenticated"},
		{rpc.ErrPermissionDenied, "PermissionDenied"},
		{rpc.ErrOverloaded, "Overloaded"},
		{rpc.ErrBadRequest, "BadRequest"},
		{rpc.ErrInternal, "Internal"},
		{rpc.ErrServerShuttingDown, "ShuttingDown"},
		{rpc.ErrNoService, "NoService"},
		{rpc.ErrNoMethod, "NoMethod"},
		{fmt.Errorf("%w Calc", rpc.ErrNoInstances), "NoInstances"},
		{fmt.Errorf("%w (%w)", rpc.ErrShutdown, errors.New("EOF")), "Unavailable"},
		{fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), "Unavailable"},
		{errors.New("encoding args: unsupported type"), "Unknown"},
	}
	for _, tt := range tests {
		if got := clientCode(tt.give); got != tt.want {
			t.Errorf("clientCode(%v) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestServerCode(t *testing.T) {
	tests := []struct {
		give error
		want string
	}{
		{nil, "OK"},
		{errors.New("plain"), "ServerError"},
		{fmt.Errorf("wrapped: %w", rpc.Errorf(3, "no")), "Error"},
		{context.DeadlineExceeded, "Timeout"},
		{fmt.Errorf("refused: %w", rpc.ErrOverloaded), "Overloaded"},
	}
	for _, tt := range tests {
		if got := serverCode(tt.give); got != tt.want {
			t.Errorf("serverCode(%v) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestSplitMethod(t *testing.T) {
	tests := []struct{ give, service, method string }{
		{"Calc.Add", "Calc", "Add"},
		{"pkg.Calc.Add", "pkg.Calc", "Add"},
		{"NoDot", "NoDot", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		if s, m := splitMethod(tt.give); s != tt.service || m != tt.method {
			t.Errorf("splitMethod(%q) = %q, %q, want %q, %q", tt.give, s, m, tt.service, tt.method)
		}
	}
}
