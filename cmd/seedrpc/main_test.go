package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	rpc "github.com/seedrpc/rpc"
)

// defaultTestTimeout bounds every wait in the tests, a run of the CLI included.
const defaultTestTimeout = 60 * time.Second

var (
	buildDir  string // where TestMain's build puts the binary
	buildOnce sync.Once
	buildErr  error
	binPath   string
)

func TestMain(m *testing.M) {
	var err error
	buildDir, err = os.MkdirTemp("", "seedrpc-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(buildDir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// binary builds the command once per test run (go build, as a user's
// go install would) and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(buildDir, "seedrpc")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs the built binary with args and stdin, bounded in time.
func cli(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("seedrpc %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("seedrpc %s did not finish within %v", strings.Join(args, " "), defaultTestTimeout)
	}
	return r
}

// Services served to the CLI.

type Args struct{ A, B int }

type Calc struct{}

func (c *Calc) Add(args Args, reply *int) error { *reply = args.A + args.B; return nil }

func (c *Calc) Div(args Args, reply *float64) error {
	if args.B == 0 {
		return errors.New("divide by zero")
	}
	*reply = float64(args.A) / float64(args.B)
	return nil
}

func (c *Calc) Sleep(ctx context.Context, d time.Duration, reply *int) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Header returns the request header named key.
func (c *Calc) Header(ctx context.Context, key string, reply *string) error {
	*reply = rpc.HeaderFromContext(ctx)[key]
	return nil
}

type Item struct {
	Name  string
	Count int
}

// Mixed has a field of every kind the CLI converts.
type Mixed struct {
	I      int64
	U      uint16
	F      float64
	S      string
	B      []byte
	T      time.Time
	D      time.Duration
	Items  []Item
	Opt    *Item
	ByName map[string]int
	ByID   map[int]string
	Any    any
	Tagged string `msgpack:"tagged_name"`
	Tuple  Tuple
}

// Tuple is written as an array.
type Tuple struct {
	_msgpack struct{} `msgpack:",as_array"`
	X        int
	Y        string
}

type Types struct{}

// Echo returns its args; decoding them proves the CLI sent the right types.
func (*Types) Echo(m Mixed, reply *Mixed) error { *reply = m; return nil }

// startServer serves Calc and Types on loopback until the test ends.
func startServer(t *testing.T, opts ...rpc.ServerOption) string {
	t.Helper()
	srv := rpc.NewServer(opts...)
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Register(&Types{}); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, rpc.ErrServerClosed) {
			t.Errorf("Serve() = %v, want ErrServerClosed", err)
		}
	})
	return lis.Addr().String()
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string // in stderr
		wantOut  string // in stdout
	}{
		{nil, 2, "usage: seedrpc <command>", ""},
		{[]string{"help"}, 0, "", "seedrpc call"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`, ""},
		{[]string{"call", "-h"}, 0, "-timeout", ""},
		{[]string{"call", "Calc.Add", "{}"}, 2, "give one of -addr and -redis", ""},
		{[]string{"call", "-addr", "x:1", "-redis", "y:2", "Calc.Add", "{}"}, 2, "give one of -addr and -redis", ""},
		{[]string{"call", "-addr", "x:1", "Calc.Add"}, 2, "want Service.Method and JSON args", ""},
		{[]string{"call", "-addr", "x:1", "CalcAdd", "{}"}, 2, `"CalcAdd" is not Service.Method`, ""},
		{[]string{"call", "-addr", "x:1", "-H", "novalue", "Calc.Add", "{}"}, 2, "want key=value", ""},
		{[]string{"call", "-addr", "x:1", "-bogus", "Calc.Add", "{}"}, 2, "flag provided but not defined: -bogus", ""},
		{[]string{"call", "-addr", "x:1", "Calc.Add", "{"}, 2, "not JSON", ""},
		{[]string{"describe"}, 2, "-addr is required", ""},
		{[]string{"describe", "-addr", "x:1", "A", "B"}, 2, "too many arguments", ""},
		{[]string{"list"}, 2, "-redis is required", ""},
		{[]string{"watch", "-redis", "x:1"}, 2, "want one SERVICE", ""},
	}
	for _, tt := range tests {
		r := cli(t, "", tt.args...)
		if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantErr) || !strings.Contains(r.stdout, tt.wantOut) {
			t.Errorf("seedrpc %q:\n%v\nwant exit %d, stderr with %q, stdout with %q", tt.args, r, tt.wantCode, tt.wantErr, tt.wantOut)
		}
	}
}

func TestCall(t *testing.T) {
	addr := startServer(t)
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantOut  string // stdout, exactly
		wantErr  string // in stderr; "" means stderr is empty
	}{
		{"add", "", []string{"call", "-addr", addr, "Calc.Add", `{"A":2,"B":3}`}, 0, "5\n", ""},
		{"flags after args", "", []string{"call", "Calc.Add", `{"A":2,"B":3}`, "-addr", addr}, 0, "5\n", ""},
		{"stdin", `{"a": 40, "b": 2}`, []string{"call", "-addr", addr, "Calc.Add", "-"}, 0, "42\n", ""},
		{"float reply", "", []string{"call", "-addr", addr, "Calc.Div", `{"A":3,"B":2}`}, 0, "1.5\n", ""},
		{"integral float accepted", "", []string{"call", "-addr", addr, "Calc.Add", `{"A":2e3,"B":1.0}`}, 0, "2001\n", ""},
		{"-- before JSON starting with -", "", []string{"call", "-addr", addr, "Calc.Sleep", "--", "-1"}, 0, "0\n", ""},
		{"null args", "", []string{"call", "-addr", addr, "Calc.Add", `null`}, 0, "0\n", ""},
		{"header", "", []string{"call", "-addr", addr, "-H", "trace=abc-123", "-H", "x=y", "Calc.Header", `"trace"`}, 0, "\"abc-123\"\n", ""},
		{"remote error", "", []string{"call", "-addr", addr, "Calc.Div", `{"A":1,"B":0}`}, 1, "", "divide by zero"},
		{"unknown method", "", []string{"call", "-addr", addr, "Calc.Mul", `{}`}, 1, "", `unknown method "Calc.Mul" (Calc has Add, Div, Header, Sleep)`},
		{"unknown service", "", []string{"call", "-addr", addr, "Nope.Add", `{}`}, 1, "", `unknown service "Nope"`},
		{"timeout", "", []string{"call", "-addr", addr, "-timeout", "300ms", "Calc.Sleep", `"20s"`}, 1, "", "timed out"},
		{"not an integer", "", []string{"call", "-addr", addr, "Calc.Add", `{"A":2.5,"B":3}`}, 2, "", "invalid args: $.A: want an integer, got 2.5"},
		{"unknown field", "", []string{"call", "-addr", addr, "Calc.Add", `{"A":1,"C":3}`}, 2, "", `no field "C" (fields: A, B)`},
		{"wrong type", "", []string{"call", "-addr", addr, "Calc.Add", `[1,2]`}, 2, "", "$: want an object, got an array"},
		{"server down", "", []string{"call", "-addr", closedAddr(t), "Calc.Add", `{}`}, 1, "", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := cli(t, tt.stdin, tt.args...)
			okErr := r.stderr == "" && tt.wantErr == "" || tt.wantErr != "" && strings.Contains(r.stderr, tt.wantErr)
			if r.code != tt.wantCode || r.stdout != tt.wantOut || !okErr {
				t.Errorf("seedrpc %q:\n%v\nwant exit %d, stdout %q, stderr with %q", tt.args, r, tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
}

// TestCallTypes sends a value of every kind through a msgpack-only round
// trip: the server decodes it into typed fields (a float where an integer
// belongs, or text where bytes belong, would fail there) and echoes it.
func TestCallTypes(t *testing.T) {
	addr := startServer(t)
	in := `{
		"I": -3, "U": 7, "F": 2.5, "S": "hé <&>", "B": "AQID",
		"T": "2024-05-06T07:08:09.5+02:00", "D": "1.5s",
		"Items": [{"Name": "a", "Count": 1}, {"name": "b"}],
		"Opt": {"Name": "o", "Count": 2},
		"ByName": {"x": 1}, "ByID": {"4": "four"},
		"Any": {"k": [1, "two", 2.5, true, null]},
		"tagged_name": "t",
		"Tuple": {"Y": "why", "X": 9}
	}`
	want := `{
  "I": -3,
  "U": 7,
  "F": 2.5,
  "S": "hé <&>",
  "B": "AQID",
  "T": "2024-05-06T05:08:09.5Z",
  "D": 1500000000,
  "Items": [
    {
      "Name": "a",
      "Count": 1
    },
    {
      "Name": "b",
      "Count": 0
    }
  ],
  "Opt": {
    "Name": "o",
    "Count": 2
  },
  "ByName": {
    "x": 1
  },
  "ByID": {
    "4": "four"
  },
  "Any": {
    "k": [
      1,
      "two",
      2.5,
      true,
      null
    ]
  },
  "tagged_name": "t",
  "Tuple": {
    "X": 9,
    "Y": "why"
  }
}
`
	r := cli(t, in, "call", "-addr", addr, "Types.Echo", "-")
	if r.code != 0 || r.stdout != want {
		t.Errorf("Types.Echo:\n%v\nwant stdout:\n%s", r, want)
	}

	// An optional left out comes back null, durations may be nanoseconds.
	r = cli(t, "", "call", "-addr", addr, "Types.Echo", `{"D": 1000, "Opt": null}`)
	if r.code != 0 || !strings.Contains(r.stdout, `"D": 1000,`) || !strings.Contains(r.stdout, `"Opt": null,`) {
		t.Errorf("Types.Echo with null Opt:\n%v", r)
	}
	for _, tt := range []struct{ give, wantErr string }{
		{`{"U": -1}`, "$.U: want an unsigned integer, got -1"},
		{`{"B": "!!"}`, "$.B: want base64 text"},
		{`{"T": "yesterday"}`, "$.T: want an RFC 3339 time"},
		{`{"D": "soon"}`, "$.D: want a duration"},
		{`{"ByID": {"four": "4"}}`, `$.ByID: key "four" is not a int`},
		{`{"Items": [{"Count": "many"}]}`, "$.Items[0].Count: want an integer"},
	} {
		r := cli(t, "", "call", "-addr", addr, "Types.Echo", tt.give)
		if r.code != 2 || !strings.Contains(r.stderr, tt.wantErr) {
			t.Errorf("Types.Echo %s:\n%v\nwant exit 2 and %q", tt.give, r, tt.wantErr)
		}
	}
}

// TestCallNoIntrospection falls back to the JSON codec.
func TestCallNoIntrospection(t *testing.T) {
	addr := startServer(t, rpc.WithIntrospection(false))
	r := cli(t, "", "call", "-addr", addr, "Calc.Add", `{"A":2,"B":3}`)
	if r.code != 0 || r.stdout != "5\n" || !strings.Contains(r.stderr, "does not describe itself") {
		t.Errorf("call without introspection:\n%v\nwant exit 0, 5 and a note on stderr", r)
	}
	r = cli(t, "", "describe", "-addr", addr)
	if r.code != 1 || !strings.Contains(r.stderr, "WithIntrospection(false)") {
		t.Errorf("describe without introspection:\n%v\nwant exit 1 naming WithIntrospection(false)", r)
	}
}

func TestDescribe(t *testing.T) {
	addr := startServer(t)
	r := cli(t, "", "describe", "-addr", addr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	fields := func(i int) string {
		if i >= len(lines) {
			return ""
		}
		return strings.Join(strings.Fields(lines[i]), " ")
	}
	if r.code != 0 || r.stderr != "" || len(lines) != 6 {
		t.Fatalf("describe:\n%v\nwant exit 0 and 6 lines", r)
	}
	wantLines := []string{
		"METHOD ARGS REPLY",
		"Calc.Add {A int, B int} int",
		"Calc.Div {A int, B int} float",
		"Calc.Header string string",
		"Calc.Sleep duration int",
	}
	for i, want := range wantLines {
		if got := fields(i); got != want {
			t.Errorf("describe line %d = %q, want %q", i, got, want)
		}
	}
	if got := fields(5); !strings.HasPrefix(got, "Types.Echo {I int, U uint, F float, S string, B bytes, T time, D duration, Items []{Name string, Count int}, Opt ?{Name string, Count int},") {
		t.Errorf("describe line 5 = %q, want Types.Echo with Mixed's shape", got)
	}

	r = cli(t, "", "describe", "-addr", addr, "-json", "Calc")
	if r.code != 0 || !strings.Contains(r.stdout, `"args_fingerprint": "c4387598f40050fa"`) || strings.Contains(r.stdout, "Types") {
		t.Errorf("describe -json Calc:\n%v\nwant Calc only, Add's args fingerprint c4387598f40050fa", r)
	}
	r = cli(t, "", "describe", "-addr", addr, "Nope")
	if r.code != 1 || !strings.Contains(r.stderr, `unknown service "Nope"`) {
		t.Errorf("describe Nope:\n%v\nwant exit 1, unknown service", r)
	}
	r = cli(t, "", "describe", "-addr", closedAddr(t))
	if r.code != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("describe of a closed port:\n%v\nwant exit 1, connection refused", r)
	}
}
