package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRegsimSmoke runs the registry simulation at a tiny scale against a
// real redis-server, so the mode keeps working; the figures are not checked
// (they live in docs/OPERATIONS.md, from full-size runs).
func TestRegsimSmoke(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("redis-server not on PATH")
		}
		t.Fatal("redis-server not on PATH")
	}
	var out, errOut bytes.Buffer
	args := []string{"regsim", "-instances", "60", "-services", "6", "-servers", "6", "-watchers", "6", "-watch", "2",
		"-ttl", "1500ms", "-settle", "500ms", "-steady", "1s", "-changes", "3", "-restart-pace", "20ms"}
	if err := run(args, nil, &out, &errOut); err != nil {
		t.Fatalf("regsim: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	t.Log(out.String())
	for _, want := range []string{"steady state", "single changes", "rolling restart", "add to all watchers"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("regsim output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "MISSED") {
		t.Errorf("regsim: some watcher never saw a change:\n%s", out.String())
	}
}
