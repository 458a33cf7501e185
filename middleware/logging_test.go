package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	rpc "github.com/seedrpc/rpc"
)

func TestLogging(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	acl, err := ACL(Rule{Allow: false, Methods: []string{"Echo.Secret"}}, Rule{Allow: true})
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serve(t, rpc.WithServerInterceptor(Logging(logger), acl))
	cli := dial(t, addr)
	if err := say(t, cli); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := cli.Call("Echo.Secret", "x", &got); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Fatalf("Echo.Secret = %v, want ErrPermissionDenied", err)
	}
	if err := cli.Call("Echo.Panic", "x", &got); !errors.Is(err, rpc.ErrInternal) {
		t.Fatalf("Echo.Panic = %v, want ErrInternal", err)
	}

	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "rpc call" {
			recs = append(recs, m)
		}
	}
	want := []struct{ method, status, level string }{
		{"Echo.Say", "OK", "INFO"},
		{"Echo.Secret", "PermissionDenied", "WARN"},
		{"Echo.Panic", "Panic", "ERROR"},
	}
	if len(recs) != len(want) {
		t.Fatalf("logged %d calls, want %d:\n%s", len(recs), len(want), buf.String())
	}
	for i, w := range want {
		r := recs[i]
		if r["method"] != w.method || r["status"] != w.status || r["level"] != w.level {
			t.Errorf("record %d = %v, want method %s, status %s, level %s", i, r, w.method, w.status, w.level)
		}
		if p, _ := r["peer"].(string); !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("record %d peer = %v, want 127.0.0.1:port", i, r["peer"])
		}
		if _, ok := r["duration"].(float64); !ok {
			t.Errorf("record %d has no duration: %v", i, r)
		}
	}
	if e, _ := recs[1]["err"].(string); !strings.Contains(e, "Echo.Secret") {
		t.Errorf("refusal record err = %q, want the reason the caller never sees", e)
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		give error
		want string
	}{
		{nil, "OK"},
		{fmt.Errorf("x: %w", rpc.ErrUnauthenticated), "Unauthenticated"},
		{rpc.ErrPermissionDenied, "PermissionDenied"},
		{rpc.ErrOverloaded, "Overloaded"},
		{rpc.ErrBadRequest, "BadRequest"},
		{context.DeadlineExceeded, "Timeout"},
		{rpc.ErrTimeout, "Timeout"},
		{context.Canceled, "Canceled"},
		{rpc.ErrInternal, "Internal"},
		{rpc.ErrServerShuttingDown, "ShuttingDown"},
		{rpc.ErrNoService, "NoService"},
		{rpc.ErrNoMethod, "NoMethod"},
		{rpc.Errorf(3, "x"), "Error"},
		{rpc.ServerError("x"), "ServerError"},
	}
	for _, tt := range tests {
		if got := Status(tt.give); got != tt.want {
			t.Errorf("Status(%v) = %q, want %q", tt.give, got, tt.want)
		}
	}
}
