package main

import (
	"bytes"
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds one run of the demo; it normally takes about 2s.
const testTimeout = 15 * time.Second

func TestRunMiniredis(t *testing.T) {
	out := runDemo(t, config{calls: 200, ttl: 2 * time.Second})
	if !strings.Contains(out, "started an in-process miniredis at 127.0.0.1:") {
		t.Errorf("run() output does not say it started miniredis:\n%s", out)
	}
}

func TestRunRedisServer(t *testing.T) {
	srv := redistest.Start(t) // skips without redis-server unless CI is set
	out := runDemo(t, config{redisAddr: srv.Addr(), redisFrom: "-redis", calls: 200, ttl: 2 * time.Second})
	if want := "Redis: " + srv.Addr() + " (from -redis)"; !strings.Contains(out, want) {
		t.Errorf("run() output lacks %q:\n%s", want, out)
	}
}

// runDemo runs the demo with cfg, checks the story it tells and returns it.
func runDemo(t *testing.T, cfg config) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var buf bytes.Buffer
	start := time.Now()
	err := run(ctx, &buf, cfg)
	out := buf.String()
	if err != nil {
		t.Fatalf("run() = %v, want nil; output:\n%s", err, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run() took %v, want < 10s", d)
	}
	if n := strings.Count(out, "\n"); n > 30 {
		t.Errorf("run() printed %d lines, want <= 30:\n%s", n, out)
	}
	wants := []string{
		`(?m)^  Call +Calc\.Add\(2, 3\) = 5 +answered by (s[123])$`,
		`(?m)^  Go +Calc\.Mul\(4, 5\) = 20 +answered by (s[123])$`,
		`(?m)^  Callback +Calc\.Add\(7, 8\) = 15 +answered by (s[123])$`,
		`(?m)^  Oneway +Calc\.Note\("hello"\) +received by (s[123])$`,
		`(?m)^round robin: 6 more calls answered by (s[123]) (s[123]) (s[123]) (s[123]) (s[123]) (s[123])$`,
		`(?m)^handler error: Calc\.Div\(1, 0\) returned rpc\.ServerError "calc: division by zero"$`,
		`(?m)^timeout: Calc\.Sleep\(2s\) with rpc\.WithTimeout\(50ms\) failed after \d+ms: errors\.Is\(err, rpc\.ErrTimeout\)$`,
		`(?m)^ +and the handler on s[123] saw its ctx end: context (canceled|deadline exceeded)$`,
		`(?m)^  Shutdown returned after \d+ms; the call in flight finished, answered by s1$`,
		`(?m)^  \d+ calls around it, 0 failed; calls started after it went to s2 \(\d+\), s3 \(\d+\)$`,
		`(?m)^  \d+ calls around it with rpc\.WithRetries\(2\), 0 failed; calls started after it went to s3 \(\d+\)$`,
		`(?m)^  Redis listed s2 for [\d.]+m?s after the crash, until its TTL ran out; Calc now: s3$`,
		`(?m)^done in .*: \d+ calls, 0 failed$`,
	}
	var seq []string // servers in the order they answered the first 10 calls
	for _, want := range wants {
		m := regexp.MustCompile(want).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("run() output lacks a line matching %s; output:\n%s", want, out)
			continue
		}
		if strings.Contains(want, "(s[123])") {
			seq = append(seq, m[1:]...)
		}
	}
	if len(seq) != 10 {
		t.Fatalf("found %d answers of the round robin calls, want 10", len(seq))
	}
	// Round robin over 3 servers: the 6 calls in a row reach all three. (Not
	// a strict s1 s2 s3 cycle: the client rebuilds its picker, from a random
	// start, when the registry's first watch list arrives.)
	for _, s := range []string{"s1", "s2", "s3"} {
		if !slices.Contains(seq[4:], s) {
			t.Errorf("6 round robin calls answered by %v, want each of s1, s2, s3", seq[4:])
			break
		}
	}
	return out
}
