package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seedrpc/rpc/registry"
)

// heartbeatRegistry is a Memory registry that reports a failing heartbeat,
// standing in for a registry that implements heartbeatReporter.
type heartbeatRegistry struct {
	*registry.Memory
	at time.Time
}

func (r heartbeatRegistry) LastHeartbeat(service, addr string) (time.Time, error) {
	return r.at, errors.New("heartbeat: redis down")
}

// newDebugServer serves Calc with a registry, makes 3 good calls to Add,
// one failing Div and one panicking call, and returns the server and a
// client of it.
func newDebugServer(t *testing.T) (*Server, *Client, string) {
	t.Helper()
	reg := heartbeatRegistry{Memory: registry.NewMemory(), at: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	t.Cleanup(func() { reg.Close() })
	srv := NewServer(WithRegistry(reg))
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	cli, addr := serveAndDial(t, srv)
	for i := range 3 {
		var sum int
		if err := cli.Call("Calc.Add", Args{i, 1}, &sum); err != nil {
			t.Fatal(err)
		}
	}
	var q float64
	if err := cli.Call("Calc.Div", Args{1, 0}, &q); err == nil {
		t.Fatal("Calc.Div by zero succeeded")
	}
	var r int
	if err := cli.Call("Calc.Panic", 0, &r); !errors.Is(err, ErrInternal) {
		t.Fatalf("Calc.Panic error = %v, want ErrInternal", err)
	}
	return srv, cli, addr
}

func TestDebugJSON(t *testing.T) {
	srv, _, addr := newDebugServer(t)
	hs := httptest.NewServer(srv.DebugHandler())
	defer hs.Close()

	resp, err := http.Get(hs.URL + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var info debugInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatalf("decoding the JSON page: %v", err)
	}
	if len(info.Services) != 1 || info.Services[0].Name != "Calc" {
		t.Fatalf("services = %+v, want only Calc (reserved one left out)", info.Services)
	}
	got := make(map[string]debugMethod)
	for _, m := range info.Services[0].Methods {
		got[m.Name] = m
	}
	tests := []struct {
		method        string
		calls, errors uint64
	}{
		{"Add", 3, 0},
		{"Div", 1, 1},
		{"Panic", 1, 1},
		{"Sleep", 0, 0},
	}
	for _, tt := range tests {
		m := got[tt.method]
		if m.Calls != tt.calls || m.Errors != tt.errors {
			t.Errorf("Calc.%s calls, errors = %d, %d; want %d, %d", tt.method, m.Calls, m.Errors, tt.calls, tt.errors)
		}
		if (m.P50 > 0) != (tt.calls > 0) || m.P99 < m.P50 {
			t.Errorf("Calc.%s p50, p99 = %v, %v; want > 0 when called, p99 >= p50", tt.method, m.P50, m.P99)
		}
	}
	if a := got["Add"]; a.Args != "{A int, B int}" || a.Reply != "int" {
		t.Errorf("Calc.Add shapes = %s, %s; want {A int, B int}, int", a.Args, a.Reply)
	}
	if info.Connections != 1 || len(info.Conns) != 1 || info.InFlight != 0 {
		t.Errorf("connections, conns, in flight = %d, %v, %d; want 1, one, 0", info.Connections, info.Conns, info.InFlight)
	}
	if info.Registry == nil || len(info.Registry.Instances) != 1 {
		t.Fatalf("registry = %+v, want one instance", info.Registry)
	}
	inst := info.Registry.Instances[0]
	if inst.Service != "Calc" || inst.Addr != addr || !inst.Listed || inst.HeartbeatError != "heartbeat: redis down" || inst.LastHeartbeat == nil {
		t.Errorf("registry instance = %+v, want Calc at %s, listed, with the reported heartbeat", inst, addr)
	}

	// Without a registry the section is null; other methods are refused.
	bare := NewServer()
	defer bare.Close()
	rec := httptest.NewRecorder()
	bare.DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/?format=json", nil))
	if !strings.Contains(rec.Body.String(), `"registry": null`) {
		t.Errorf("page of a server without registry = %s, want \"registry\": null", rec.Body)
	}
	rec = httptest.NewRecorder()
	bare.DebugHandler().ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST status = %d, want %d", rec.Code, http.StatusMethodNotAllowed)
	}
}

func TestDebugHTML(t *testing.T) {
	srv, _, _ := newDebugServer(t)
	rec := httptest.NewRecorder()
	srv.DebugHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	checkDebugDOM(t, rec.Body.String())
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q, want text/html", ct)
	}
	if s := rec.Body.String(); strings.Contains(s, "<script") || strings.Contains(s, "http://") || strings.Contains(s, "https://") {
		t.Errorf("page has scripts or external references:\n%s", s)
	}
}

// checkDebugDOM checks the page, as served or as rendered by a browser,
// shows the calls newDebugServer made.
func checkDebugDOM(t *testing.T, dom string) {
	t.Helper()
	tests := []struct {
		method, class, want string
	}{
		{"Calc.Add", "calls", "3"},
		{"Calc.Add", "errors", "0"},
		{"Calc.Div", "calls", "1"},
		{"Calc.Div", "errors", "1"},
		{"Calc.Panic", "errors", "1"},
		{"Calc.Sleep", "calls", "0"},
	}
	for _, tt := range tests {
		re := regexp.MustCompile(`(?s)data-method="` + regexp.QuoteMeta(tt.method) + `">.*?class="num ` + tt.class + `[^"]*">([^<]*)<`)
		m := re.FindStringSubmatch(dom)
		if m == nil || m[1] != tt.want {
			t.Errorf("page: %s %s = %v, want %s", tt.method, tt.class, m, tt.want)
		}
	}
	for _, want := range []string{`id="connections">1<`, `id="in-flight">0<`, "heartbeat: redis down", `class="good">yes<`} {
		if !strings.Contains(dom, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", dom)
	}
}

func TestDebugChromium(t *testing.T) {
	browser := findChromium(t)
	srv, _, _ := newDebugServer(t)
	hs := httptest.NewServer(srv.DebugHandler())
	defer hs.Close()

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := func(args ...string) []byte {
		t.Helper()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
			"--user-data-dir=" + filepath.Join(dir, "profile")}
		cmd := exec.CommandContext(ctx, browser, append(base, args...)...)
		cmd.WaitDelay = 5 * time.Second // helpers that keep stdout open do not hold us
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", browser, strings.Join(args, " "), err, tail(stderr.String(), 2000))
		}
		return out
	}

	dom := run("--dump-dom", hs.URL)
	checkDebugDOM(t, string(dom))

	shot := os.Getenv("SEEDRPC_DEBUG_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(dir, "debug.png")
	}
	run("--screenshot="+shot, "--window-size=1280,900", "--hide-scrollbars", hs.URL)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	defer f.Close()
	head := make([]byte, 8)
	if _, err := io.ReadFull(f, head); err != nil || string(head[1:4]) != "PNG" {
		t.Fatalf("screenshot %s is not a PNG (%q, %v)", shot, head, err)
	}
	t.Logf("screenshot of the debug page: %s (set SEEDRPC_DEBUG_SCREENSHOT to keep it)", shot)
}

// findChromium returns the headless browser to use, skipping the test when
// there is none, unless under CI, where it must be installed.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: apt-get install -y chromium (this test renders the debug page in a real browser)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
