package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestOverloadSmoke runs the overload scenario briefly through the real
// child-process path and checks that every configuration produced a sane
// result.
func TestOverloadSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := overloadConfig{
		limits: []string{"default", "fixed=4", "adaptive"},
		model:  "sleep", work: 2 * time.Millisecond, par: 4, factor: 3,
		timeout: 200 * time.Millisecond, json: true,
	}
	run := runConfig{warmup: 50 * time.Millisecond, duration: 300 * time.Millisecond, conns: 2}
	var out, errOut bytes.Buffer
	if err := runOverload(ctx, cfg, run, 1, &out, &errOut); err != nil {
		t.Fatalf("runOverload() = %v; stderr:\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(cfg.limits) {
		t.Fatalf("%d result lines, want %d:\n%s", len(lines), len(cfg.limits), out.String())
	}
	for i, line := range lines {
		var r overloadResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("result line %q: %v", line, err)
		}
		shares := r.RejectShare + r.TimeoutShare + r.OtherShare
		if r.Limit != cfg.limits[i] || r.Calls == 0 || r.Capacity <= 0 || r.Offered <= 0 || shares > 1.0001 {
			t.Errorf("result = %+v, want limit %s, calls > 0, a capacity, shares ≤ 1", r, cfg.limits[i])
		}
		if r.Limit == "fixed=4" && r.RejectShare == 0 {
			t.Errorf("fixed=4 at 3× capacity refused nothing: %+v", r)
		}
	}
	t.Logf("stderr:\n%s\nresults:\n%s", errOut.String(), out.String())
}
