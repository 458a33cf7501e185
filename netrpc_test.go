package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	netrpc "net/rpc"
	"net/rpc/jsonrpc"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/wire"
)

// The behaviours of Go's own net/rpc test suite, against this package's
// server and client, and across both wires: the standard library's net/rpc
// client calling a seedrpc Server, and a seedrpc Client calling the
// standard library's net/rpc server.

// NetArith is the service of net/rpc's tests, registered on both kinds of
// server as "Arith" and "net.rpc.Arith".
type NetArith struct{}

// NetReply is NetArith's reply.
type NetReply struct{ C int }

func (NetArith) Add(args Args, reply *NetReply) error  { reply.C = args.A + args.B; return nil }
func (NetArith) Mul(args *Args, reply *NetReply) error { reply.C = args.A * args.B; return nil }
func (NetArith) Scan(args string, reply *NetReply) error {
	_, err := fmt.Sscan(args, &reply.C)
	return err
}
func (NetArith) Error(args *Args, reply *NetReply) error { panic("ERROR") }

func (NetArith) Div(args Args, reply *NetReply) error {
	if args.B == 0 {
		return errors.New("divide by zero")
	}
	reply.C = args.A / args.B
	return nil
}

func (NetArith) String(args *Args, reply *string) error {
	*reply = fmt.Sprintf("%d+%d=%d", args.A, args.B, args.A+args.B)
	return nil
}

func (NetArith) SleepMilli(args *Args, reply *NetReply) error {
	time.Sleep(time.Duration(args.A) * time.Millisecond)
	return nil
}

// Map fills the map reply it is given, which must not be nil.
func (NetArith) Map(args *Args, reply *map[int]int) error { (*reply)[args.A] = args.B; return nil }

func (NetArith) Slice(args *Args, reply *[]int) error {
	*reply = append(*reply, args.A, args.B)
	return nil
}

// Unencodable returns a reply gob cannot encode (no exported field).
func (NetArith) Unencodable(args *Args, reply *struct{ x int }) error { return nil }

// Notes records the strings it is sent (Oneway through net/rpc).
type Notes struct{ ch chan string }

func (n *Notes) Note(s string, reply *int) error { n.ch <- s; return nil }

// registerArith registers NetArith under both names on a server of either
// package.
func registerArith(t testing.TB, register func(string, any) error) {
	t.Helper()
	for _, name := range []string{"Arith", "net.rpc.Arith"} {
		if err := register(name, NetArith{}); err != nil {
			t.Fatalf("RegisterName(%q) = %v", name, err)
		}
	}
}

// newNetServer serves Arith and Calc on loopback with a seedrpc Server.
func newNetServer(t testing.TB, opts ...ServerOption) (*Server, *Calc, string) {
	t.Helper()
	srv := NewServer(opts...)
	registerArith(t, srv.RegisterName)
	calc := &Calc{started: make(chan struct{}, 1)}
	if err := srv.Register(calc); err != nil {
		t.Fatal(err)
	}
	return srv, calc, startServer(t, srv)
}

// stdServer is the standard library's net/rpc server on loopback, with its
// own accept loop so that the test owns every goroutine it starts.
type stdServer struct {
	srv   *netrpc.Server
	lis   net.Listener
	notes *Notes

	mu    sync.Mutex // guards conns
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startStdServer serves Arith and Notes with net/rpc; newCodec (nil: gob)
// makes each connection's codec.
func startStdServer(t testing.TB, newCodec func(io.ReadWriteCloser) netrpc.ServerCodec) *stdServer {
	t.Helper()
	s := &stdServer{srv: netrpc.NewServer(), lis: listenLoopback(t), notes: &Notes{ch: make(chan string, 16)}, conns: make(map[net.Conn]struct{})}
	registerArith(t, s.srv.RegisterName)
	if err := s.srv.Register(s.notes); err != nil {
		t.Fatal(err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := s.lis.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[nc] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if newCodec == nil {
					s.srv.ServeConn(nc)
				} else {
					s.srv.ServeCodec(newCodec(nc))
				}
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *stdServer) addr() string { return s.lis.Addr().String() }

// dropConns closes every connection the server accepted.
func (s *stdServer) dropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nc := range s.conns {
		nc.Close()
	}
}

func (s *stdServer) close() {
	s.lis.Close()
	s.dropConns()
	s.wg.Wait()
}

// caller is a Call method of either package's client.
type caller func(method string, args, reply any) error

// testArith runs net/rpc's TestRPC sequence through call, given which
// server answers: net/rpc's texts, out-of-order replies, dotted service
// names, non-struct args and replies.
func testArith(t *testing.T, call caller, seedServer bool) {
	t.Helper()
	var reply NetReply
	if err := call("Arith.Add", &Args{7, 8}, &reply); err != nil || reply.C != 15 {
		t.Errorf("Arith.Add = %d, %v; want 15, nil", reply.C, err)
	}
	reply = NetReply{}
	if err := call("net.rpc.Arith.Add", &Args{7, 8}, &reply); err != nil || reply.C != 15 {
		t.Errorf("net.rpc.Arith.Add = %d, %v; want 15, nil", reply.C, err)
	}
	err := call("Arith.BadOperation", &Args{7, 0}, &reply)
	if err == nil || !strings.HasPrefix(err.Error(), "rpc: can't find method Arith.BadOperation") {
		t.Errorf("Arith.BadOperation error = %v, want rpc: can't find method ...", err)
	}
	err = call("Arithmetic.Add", &Args{7, 8}, &reply)
	if err == nil || err.Error() != "rpc: can't find service Arithmetic.Add" {
		t.Errorf("Arithmetic.Add error = %v, want rpc: can't find service Arithmetic.Add", err)
	}
	err = call("Arith.Div", &Args{7, 0}, &reply)
	if err == nil || err.Error() != "divide by zero" {
		t.Errorf("Arith.Div(7, 0) error = %v, want divide by zero", err)
	}
	reply = NetReply{}
	if err := call("Arith.Scan", "12345", &reply); err != nil || reply.C != 12345 {
		t.Errorf("Arith.Scan = %d, %v; want 12345, nil", reply.C, err)
	}
	var s string
	if err := call("Arith.String", &Args{27, 35}, &s); err != nil || s != "27+35=62" {
		t.Errorf("Arith.String = %q, %v; want 27+35=62, nil", s, err)
	}
	m := map[int]int{}
	if err := call("Arith.Map", &Args{7, 8}, &m); err != nil || m[7] != 8 {
		t.Errorf("Arith.Map = %v, %v; want map[7:8], nil", m, err)
	}
	var sl []int
	if err := call("Arith.Slice", &Args{7, 8}, &sl); err != nil || !reflect.DeepEqual(sl, []int{7, 8}) {
		t.Errorf("Arith.Slice = %v, %v; want [7 8], nil", sl, err)
	}
	err = call("ArithAdd", &Args{7, 8}, &reply)
	if err == nil || err.Error() != "rpc: service/method request ill-formed: ArithAdd" {
		t.Errorf("ArithAdd (no dot) error = %v, want the server's ill-formed error", err)
	}
	if seedServer {
		// A panic is an error answer; net/rpc's own server would crash.
		err = call("Arith.Error", &Args{}, &reply)
		if err == nil || err.Error() != "rpc: Arith.Error panicked" {
			t.Errorf("Arith.Error error = %v, want rpc: Arith.Error panicked", err)
		}
		if err := call("Arith.Add", &Args{1, 1}, &reply); err != nil || reply.C != 2 {
			t.Errorf("Arith.Add after a panic = %d, %v; want 2, nil", reply.C, err)
		}
	}
}

// testConcurrent makes calls from several goroutines through call, and
// checks each reply.
func testConcurrent(t *testing.T, call caller) {
	t.Helper()
	const goroutines, calls = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				var r NetReply
				if err := call("Arith.Mul", &Args{g, i}, &r); err != nil || r.C != g*i {
					errs <- fmt.Errorf("Arith.Mul(%d, %d) = %d, %v", g, i, r.C, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// stdCaller adapts the standard library's client.
func stdCaller(c *netrpc.Client) caller {
	return func(method string, args, reply any) error { return c.Call(method, args, reply) }
}

// seedCaller adapts this package's client, with a bound on every call.
func seedCaller(c *Client) caller {
	return func(method string, args, reply any) error {
		return c.Call(method, args, reply, WithTimeout(defaultTestTimeout))
	}
}

func dialStd(t *testing.T, addr string) *netrpc.Client {
	t.Helper()
	c, err := netrpc.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestStdClientSeedServer: net/rpc's own client calls a seedrpc Server on
// its ordinary listener, beside a seedrpc client.
func TestStdClientSeedServer(t *testing.T) {
	_, _, addr := newNetServer(t)
	std := dialStd(t, addr)
	testArith(t, stdCaller(std), true)
	testConcurrent(t, stdCaller(std))

	// Out of order on one connection.
	var mul, add NetReply
	mulCall := std.Go("Arith.SleepMilli", &Args{A: 50}, &mul, nil)
	addCall := std.Go("Arith.Add", &Args{7, 8}, &add, nil)
	select {
	case <-addCall.Done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Arith.Add behind a slow call did not return")
	}
	if addCall.Error != nil || add.C != 15 {
		t.Errorf("Arith.Add = %d, %v; want 15, nil", add.C, addCall.Error)
	}
	select {
	case <-mulCall.Done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Arith.SleepMilli did not return")
	}

	// The same listener serves seedrpc clients at the same time.
	cli, err := Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); testConcurrent(t, stdCaller(std)) }()
	go func() { defer wg.Done(); testConcurrent(t, seedCaller(cli)) }()
	wg.Wait()
}

// TestSeedClientStdServer: a seedrpc client with WithNetRPC calls net/rpc's
// own server, in every call style.
func TestSeedClientStdServer(t *testing.T) {
	std := startStdServer(t, nil)
	cli, err := Dial("tcp", std.addr(), WithNetRPC())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	testArith(t, seedCaller(cli), false)
	testConcurrent(t, seedCaller(cli))

	err = cli.Call("Arith.Nope", &Args{}, new(NetReply))
	if !errors.Is(err, ErrNoMethod) {
		t.Errorf("Call(Arith.Nope) error = %v, want ErrNoMethod", err)
	}
	err = cli.Call("Nope.Add", &Args{}, new(NetReply))
	if !errors.Is(err, ErrNoService) {
		t.Errorf("Call(Nope.Add) error = %v, want ErrNoService", err)
	}
	var se ServerError
	if err := cli.Call("Arith.Div", &Args{1, 0}, new(NetReply)); !errors.As(err, &se) || string(se) != "divide by zero" {
		t.Errorf("Call(Arith.Div 1/0) error = %v, want ServerError(divide by zero)", err)
	}

	var r NetReply
	call := cli.Go("Arith.Add", &Args{2, 3}, &r, nil)
	waitCall(t, call, defaultTestTimeout)
	if call.Error != nil || r.C != 5 {
		t.Errorf("Go(Arith.Add) = %d, %v; want 5, nil", r.C, call.Error)
	}
	got := make(chan error, 1)
	var r2 NetReply
	cli.Callback("Arith.Add", &Args{3, 4}, &r2, func(c *Call) { got <- c.Error })
	if err := recvErr(t, got, "the callback"); err != nil || r2.C != 7 {
		t.Errorf("Callback(Arith.Add) = %d, %v; want 7, nil", r2.C, err)
	}
	if err := cli.Oneway("Notes.Note", "hello"); err != nil {
		t.Errorf("Oneway(Notes.Note) = %v", err)
	}
	select {
	case s := <-std.notes.ch:
		if s != "hello" {
			t.Errorf("Notes.Note got %q, want hello", s)
		}
	case <-time.After(defaultTestTimeout):
		t.Error("Oneway(Notes.Note) never ran")
	}

	// A call's timeout holds; the late reply is dropped and the client goes on.
	start := time.Now()
	err = cli.Call("Arith.SleepMilli", &Args{A: 2000}, new(NetReply), WithTimeout(50*time.Millisecond))
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("Call(Arith.SleepMilli 2s) with a 50ms timeout error = %v, want ErrTimeout", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Call with a 50ms timeout returned after %v", el)
	}
	if err := cli.Call("Arith.Add", &Args{1, 2}, &r); err != nil || r.C != 3 {
		t.Errorf("Call(Arith.Add) after a timeout = %d, %v; want 3, nil", r.C, err)
	}
}

// TestNetRPCHTTP: net/rpc's HTTP transport, all four ways: both clients
// through a seedrpc Server's HandleHTTP, a seedrpc client through net/rpc's
// own HandleHTTP, and net/rpc's DialHTTP on seedrpc's plain listener.
func TestNetRPCHTTP(t *testing.T) {
	rpcPath, debugPath := uniquePath("rpc"), uniquePath("debug")
	srv, _, rawAddr := newNetServer(t)
	srv.HandleHTTP(rpcPath, debugPath)
	stdRPCPath := uniquePath("std")
	stdSrv := netrpc.NewServer()
	registerArith(t, stdSrv.RegisterName)
	stdSrv.HandleHTTP(stdRPCPath, uniquePath("stddebug"))
	hs := httptest.NewServer(nil) // http.DefaultServeMux
	defer hs.Close()
	addr := hs.Listener.Addr().String()

	std, err := netrpc.DialHTTPPath("tcp", addr, rpcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer std.Close()
	testArith(t, stdCaller(std), true)

	cli, err := DialHTTPPath("tcp", addr, rpcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	testArith(t, seedCaller(cli), true)
	testConcurrent(t, seedCaller(cli))

	toStd, err := DialHTTPPath("tcp", addr, stdRPCPath, WithNetRPC())
	if err != nil {
		t.Fatal(err)
	}
	defer toStd.Close()
	testArith(t, seedCaller(toStd), false)

	raw, err := netrpc.DialHTTP("tcp", rawAddr) // any path: the listener has no mux
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	testArith(t, stdCaller(raw), true)
	rawSeed, err := DialHTTP("tcp", rawAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer rawSeed.Close()
	testArith(t, seedCaller(rawSeed), true)

	if _, err := DialHTTPPath("tcp", addr, "/nowhere"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("DialHTTPPath(/nowhere) error = %v, want the HTTP 404", err)
	}

	resp, err := http.Get(hs.URL + rpcPath)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || string(body) != "405 must CONNECT\n" {
		t.Errorf("GET %s = %d %q, want 405 must CONNECT", rpcPath, resp.StatusCode, body)
	}
	resp, err = http.Get(hs.URL + debugPath + "?format=json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"name": "Arith"`, `"name": "net.rpc.Arith"`, `"name": "Calc"`, `"name": "Add"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET %s: page lacks %q:\n%s", debugPath, want, body)
		}
	}
}

var pathSeq atomic.Int64

// uniquePath returns a path not yet registered on http.DefaultServeMux in
// this process, so that -count=N works.
func uniquePath(what string) string {
	return fmt.Sprintf("/_test_%s_%d", what, pathSeq.Add(1))
}

// TestJSONRPC: net/rpc/jsonrpc's codecs both ways.
func TestJSONRPC(t *testing.T) {
	t.Run("jsonrpc client, seedrpc ServeCodec", func(t *testing.T) {
		srv := NewServer()
		registerArith(t, srv.RegisterName)
		defer srv.Close()
		cc, sc := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.ServeCodec(jsonrpc.NewServerCodec(sc))
		}()
		std := jsonrpc.NewClient(cc)
		testArith(t, stdCaller(std), true)
		testConcurrent(t, stdCaller(std))
		std.Close()
		select {
		case <-served:
		case <-time.After(defaultTestTimeout):
			t.Fatal("ServeCodec did not return once its client closed")
		}
	})
	t.Run("seedrpc NewClientWithCodec, net/rpc jsonrpc server", func(t *testing.T) {
		std := startStdServer(t, jsonrpc.NewServerCodec)
		nc, err := net.Dial("tcp", std.addr())
		if err != nil {
			t.Fatal(err)
		}
		cli := NewClientWithCodec(jsonrpc.NewClientCodec(nc))
		defer cli.Close()
		testArith(t, seedCaller(cli), false)
		testConcurrent(t, seedCaller(cli))
		if err := cli.Call("Arith.Nope", &Args{}, new(NetReply)); !errors.Is(err, ErrNoMethod) {
			t.Errorf("Call(Arith.Nope) error = %v, want ErrNoMethod", err)
		}
	})
	t.Run("seedrpc both ends", func(t *testing.T) {
		srv := NewServer()
		registerArith(t, srv.RegisterName)
		defer srv.Close()
		cc, sc := net.Pipe()
		go srv.ServeCodec(jsonrpc.NewServerCodec(sc)) // returns when Close closes the codec
		cli := NewClientWithCodec(jsonrpc.NewClientCodec(cc))
		defer cli.Close()
		testArith(t, seedCaller(cli), true)
		testConcurrent(t, seedCaller(cli))
	})
}

// emulator is a ServerCodec that hands one request to ServeRequest and
// keeps its response, as net/rpc's CodecEmulator does.
type emulator struct {
	method string
	args   *Args // nil: the body does not decode
	reply  *NetReply
	err    error
}

func (e *emulator) ReadRequestHeader(req *netrpc.Request) error {
	req.ServiceMethod, req.Seq = e.method, 0
	return nil
}

func (e *emulator) ReadRequestBody(body any) error {
	if body == nil {
		return nil
	}
	if e.args == nil {
		return io.ErrUnexpectedEOF
	}
	*(body.(*Args)) = *e.args
	return nil
}

func (e *emulator) WriteResponse(resp *Response, reply any) error {
	if resp.Error != "" {
		e.err = errors.New(resp.Error)
	} else {
		*e.reply = *(reply.(*NetReply))
	}
	return nil
}

func (e *emulator) Close() error { return nil }

func TestServeRequest(t *testing.T) {
	srv := NewServer()
	registerArith(t, srv.RegisterName)
	defer srv.Close()
	var r NetReply
	e := &emulator{method: "Arith.Add", args: &Args{7, 8}, reply: &r}
	if err := srv.ServeRequest(e); err != nil || e.err != nil || r.C != 15 {
		t.Errorf("ServeRequest(Arith.Add) = %v (answer %v, reply %d), want nil, nil, 15", err, e.err, r.C)
	}
	e = &emulator{method: "Arith.Add", reply: &r}
	if err := srv.ServeRequest(e); !errors.Is(err, ErrBadRequest) || e.err == nil {
		t.Errorf("ServeRequest(Arith.Add, no args) = %v (answer %v), want ErrBadRequest answered", err, e.err)
	}
	e = &emulator{method: "Arith.Nope", args: &Args{}, reply: &r}
	if err := srv.ServeRequest(e); !errors.Is(err, ErrNoMethod) || e.err == nil || e.err.Error() != "rpc: can't find method Arith.Nope" {
		t.Errorf("ServeRequest(Arith.Nope) = %v (answer %v), want ErrNoMethod answered", err, e.err)
	}
	e = &emulator{method: "Arith.Div", args: &Args{1, 0}, reply: &r}
	if err := srv.ServeRequest(e); err != nil || e.err == nil || e.err.Error() != "divide by zero" {
		t.Errorf("ServeRequest(Arith.Div 1/0) = %v (answer %v), want nil and the handler's error answered", err, e.err)
	}
}

// The net/rpc registration errors (its TestRegistrationError).
type (
	ReplyNotPointer int
	ArgNotPublic    int
	ReplyNotPublic  int
	NeedsPtrType    int
	local           struct{}
)

func (t *ReplyNotPointer) ReplyNotPointer(args *Args, reply NetReply) error { return nil }
func (t *ArgNotPublic) ArgNotPublic(args *local, reply *NetReply) error     { return nil }
func (t *ReplyNotPublic) ReplyNotPublic(args *Args, reply *local) error     { return nil }
func (t *NeedsPtrType) NeedsPtrType(args *Args, reply *NetReply) error      { return nil }

func TestNetRPCRegistrationErrors(t *testing.T) {
	srv := NewServer()
	for _, rcvr := range []any{new(ReplyNotPointer), new(ArgNotPublic), new(ReplyNotPublic)} {
		if err := srv.Register(rcvr); err == nil {
			t.Errorf("Register(%T) error = nil, want an error", rcvr)
		}
	}
	if err := srv.Register(NeedsPtrType(0)); err == nil || !strings.Contains(err.Error(), "pointer") {
		t.Errorf("Register(NeedsPtrType(0)) error = %v, want a hint to pass a pointer", err)
	}
	if err := srv.RegisterName("net.rpc.Arith", NetArith{}); err != nil {
		t.Errorf(`RegisterName("net.rpc.Arith") = %v`, err)
	}
	if err := srv.RegisterName("net.rpc.Arith", NetArith{}); err == nil {
		t.Error(`RegisterName("net.rpc.Arith") twice: error = nil`)
	}
}

// TestMapReply: a map reply reaches the handler made, over seedrpc's wire
// too, and a slice reply empty.
func TestMapReply(t *testing.T) {
	_, _, addr := newNetServer(t)
	cli, err := Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	m := map[int]int{}
	if err := cli.Call("Arith.Map", &Args{7, 8}, &m); err != nil || m[7] != 8 {
		t.Errorf("Call(Arith.Map) = %v, %v; want map[7:8], nil", m, err)
	}
	var sl []int
	if err := cli.Call("Arith.Slice", &Args{7, 8}, &sl); err != nil || !reflect.DeepEqual(sl, []int{7, 8}) {
		t.Errorf("Call(Arith.Slice) = %v, %v; want [7 8], nil", sl, err)
	}
	mt := &methodType{replyType: reflect.TypeFor[[]int](), argType: reflect.TypeFor[int]()}
	if _, replyp := mt.newValues(); replyp.Elem().IsNil() || replyp.Elem().Len() != 0 {
		t.Errorf("newValues() slice reply = %#v, want empty and not nil", replyp.Elem().Interface())
	}
}

// TestMethodWithoutDot: a client of one server sends any name and the
// server answers it; a discovering client cannot route it.
func TestMethodWithoutDot(t *testing.T) {
	rec := &recordCodec{resp: make(chan netrpc.Response, 1)}
	cli := NewClientWithCodec(rec)
	defer cli.Close()
	err := cli.Call("ArithAdd", &Args{}, new(NetReply), WithTimeout(defaultTestTimeout))
	if !errors.Is(err, ErrNoMethod) || err.Error() != "rpc: service/method request ill-formed: ArithAdd" {
		t.Errorf("Call(ArithAdd) error = %v, want the server's ill-formed error", err)
	}
	if got := rec.sent(); len(got) != 1 || got[0] != "ArithAdd" {
		t.Errorf("requests written = %q, want [ArithAdd]", got)
	}

	disc, err := NewClient(WithRegistry(newMemoryRegistry(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer disc.Close()
	if err := disc.Call("ArithAdd", &Args{}, new(NetReply)); !errors.Is(err, ErrNoMethod) {
		t.Errorf("discovering Call(ArithAdd) error = %v, want ErrNoMethod", err)
	}
}

// recordCodec is a ClientCodec that records the requests written and
// answers each as net/rpc's server answers a name without a dot.
type recordCodec struct {
	mu      sync.Mutex // guards methods
	methods []string
	resp    chan netrpc.Response
	closed  atomic.Int32
	done    chan struct{}
	once    sync.Once
}

func (c *recordCodec) WriteRequest(r *netrpc.Request, _ any) error {
	c.mu.Lock()
	c.methods = append(c.methods, r.ServiceMethod)
	c.mu.Unlock()
	c.resp <- netrpc.Response{ServiceMethod: r.ServiceMethod, Seq: r.Seq, Error: "rpc: service/method request ill-formed: " + r.ServiceMethod}
	return nil
}

func (c *recordCodec) ReadResponseHeader(r *netrpc.Response) error {
	c.once.Do(func() { c.done = make(chan struct{}) })
	select {
	case *r = <-c.resp:
		return nil
	case <-c.done:
		return io.EOF
	}
}

func (c *recordCodec) ReadResponseBody(any) error { return nil }

func (c *recordCodec) Close() error {
	c.once.Do(func() { c.done = make(chan struct{}) })
	if c.closed.Add(1) == 1 {
		close(c.done)
	}
	return nil
}

func (c *recordCodec) sent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.methods...)
}

// TestErrShutdownBare: as in net/rpc, err == ErrShutdown holds for calls on
// a closed client and calls whose connection was lost.
func TestErrShutdownBare(t *testing.T) {
	srv, calc, addr := newNetServer(t)
	cli, err := Dial("tcp", addr, WithTimeout(defaultTestTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	pending := cli.Go("Calc.Sleep", time.Minute, new(int), nil)
	waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() > 0 })
	srv.Close()
	waitCall(t, pending, defaultTestTimeout)
	if pending.Error != ErrShutdown {
		t.Errorf("call pending when the server closed: error = %v, want ErrShutdown itself", pending.Error)
	}
	if err := cli.Call("Calc.Add", Args{1, 2}, new(int)); err != ErrShutdown {
		t.Errorf("Call after the server went away: error = %v, want ErrShutdown itself", err)
	}
	cli.Close()
	checkClosed(t, cli)

	// Over one connection: lost is lost.
	srv2, _, addr2 := newNetServer(t)
	nc, err := net.Dial("tcp", addr2)
	if err != nil {
		t.Fatal(err)
	}
	one := NewClientConn(nc, WithTimeout(defaultTestTimeout))
	defer one.Close()
	var sum int
	if err := one.Call("Calc.Add", Args{1, 2}, &sum); err != nil || sum != 3 {
		t.Fatalf("NewClientConn: Call(Calc.Add) = %d, %v", sum, err)
	}
	srv2.Close()
	waitFor(t, "the lost connection to fail calls", func() bool {
		return one.Call("Calc.Add", Args{1, 2}, &sum) == ErrShutdown
	})
	one.Close()
	checkClosed(t, one)

	// Through a codec.
	std := startStdServer(t, nil)
	viaStd, err := Dial("tcp", std.addr(), WithNetRPC(), WithTimeout(defaultTestTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer viaStd.Close()
	slow := viaStd.Go("Arith.SleepMilli", &Args{A: 60_000}, new(NetReply), nil)
	// The std server's accept loop tracks the connection on its own
	// goroutine: drop it only once it is tracked.
	waitFor(t, "the net/rpc server to track the connection", func() bool {
		std.mu.Lock()
		defer std.mu.Unlock()
		return len(std.conns) > 0
	})
	std.dropConns()
	waitCall(t, slow, defaultTestTimeout)
	if slow.Error != ErrShutdown {
		t.Errorf("WithNetRPC: call pending when the connection dropped: error = %v, want ErrShutdown itself", slow.Error)
	}
	if err := viaStd.Call("Arith.Add", &Args{}, new(NetReply)); err != ErrShutdown {
		t.Errorf("WithNetRPC: Call after the connection dropped: error = %v, want ErrShutdown itself", err)
	}
	viaStd.Close()
	checkClosed(t, viaStd)
}

// checkClosed checks that every call style of a closed client returns
// ErrShutdown itself.
func checkClosed(t *testing.T, cli *Client) {
	t.Helper()
	if err := cli.Call("Calc.Add", Args{1, 2}, new(int)); err != ErrShutdown {
		t.Errorf("Call after Close: error = %v, want ErrShutdown itself", err)
	}
	call := cli.Go("Calc.Add", Args{1, 2}, new(int), nil)
	waitCall(t, call, defaultTestTimeout)
	if call.Error != ErrShutdown {
		t.Errorf("Go after Close: error = %v, want ErrShutdown itself", call.Error)
	}
	got := make(chan error, 1)
	cli.Callback("Calc.Add", Args{1, 2}, new(int), func(c *Call) { got <- c.Error })
	if err := recvErr(t, got, "the callback"); err != ErrShutdown {
		t.Errorf("Callback after Close: error = %v, want ErrShutdown itself", err)
	}
	if err := cli.Oneway("Calc.Add", Args{1, 2}); err != ErrShutdown {
		t.Errorf("Oneway after Close: error = %v, want ErrShutdown itself", err)
	}
}

// rwcPipe is one end of a pipe that is an io.ReadWriteCloser but not a
// net.Conn, like a stream of a multiplexer without deadlines.
type rwcPipe struct {
	*io.PipeReader
	*io.PipeWriter
}

func (p rwcPipe) Close() error {
	p.PipeReader.Close()
	return p.PipeWriter.Close()
}

func newRWCPipe() (rwcPipe, rwcPipe) {
	r1, w1 := io.Pipe()
	r2, w2 := io.Pipe()
	return rwcPipe{r1, w2}, rwcPipe{r2, w1}
}

// TestServeConnNewClientConn: ServeConn blocks until its connection ends,
// and NewClientConn calls over a connection it is given, a net.Conn or not.
func TestServeConnNewClientConn(t *testing.T) {
	srv := NewServer()
	registerArith(t, srv.RegisterName)
	defer srv.Close()
	for _, tt := range []struct {
		name string
		pipe func() (io.ReadWriteCloser, io.ReadWriteCloser)
	}{
		{"net.Pipe", func() (io.ReadWriteCloser, io.ReadWriteCloser) { return net.Pipe() }},
		{"io.Pipe", func() (io.ReadWriteCloser, io.ReadWriteCloser) { return newRWCPipe() }},
	} {
		for _, netRPC := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/netrpc=%v", tt.name, netRPC), func(t *testing.T) {
				cc, sc := tt.pipe()
				served := make(chan struct{})
				go func() {
					defer close(served)
					srv.ServeConn(sc)
				}()
				var opts []ClientOption
				if netRPC {
					opts = append(opts, WithNetRPC())
				}
				cli := NewClientConn(cc, opts...)
				testArith(t, seedCaller(cli), true)
				testConcurrent(t, seedCaller(cli))
				select {
				case <-served:
					t.Fatal("ServeConn returned while its connection was open")
				default:
				}
				cli.Close()
				select {
				case <-served:
				case <-time.After(defaultTestTimeout):
					t.Fatal("ServeConn did not return once the client closed")
				}
			})
		}
	}
}

// TestNetRPCLimits: net/rpc clients are held to the server's limits.
func TestNetRPCLimits(t *testing.T) {
	_, calc, addr := newNetServer(t, WithMaxCalls(1, 0), WithMaxFrameSize(4<<10))
	std := dialStd(t, addr)
	slow := std.Go("Calc.Sleep", 500*time.Millisecond, new(int), nil)
	select {
	case <-calc.started:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Calc.Sleep never started")
	}
	err := std.Call("Calc.Add", Args{1, 2}, new(int))
	if err == nil || !strings.HasPrefix(err.Error(), "rpc: server overloaded") {
		t.Errorf("net/rpc call beyond WithMaxCalls: error = %v, want rpc: server overloaded", err)
	}
	seed, err := Dial("tcp", addr, WithNetRPC())
	if err != nil {
		t.Fatal(err)
	}
	defer seed.Close()
	if err := seed.Call("Calc.Add", Args{1, 2}, new(int)); !errors.Is(err, ErrOverloaded) {
		t.Errorf("WithNetRPC call beyond WithMaxCalls: error = %v, want ErrOverloaded", err)
	}
	select {
	case <-slow.Done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Calc.Sleep did not return")
	}
	if slow.Error != nil {
		t.Errorf("Calc.Sleep = %v", slow.Error)
	}

	// A gob message over the frame limit closes its connection.
	err = std.Call("Calc.Echo", make([]byte, 8<<10), new([]byte))
	if err == nil {
		t.Error("net/rpc call of 8 KiB to a server with a 4 KiB limit: error = nil")
	}
	other := dialStd(t, addr)
	var sum int
	if err := other.Call("Calc.Add", Args{1, 2}, &sum); err != nil || sum != 3 {
		t.Errorf("another net/rpc client after an oversized message: %d, %v; want 3, nil", sum, err)
	}
}

// TestNetRPCShutdown: Shutdown lets a net/rpc call in flight finish, then
// closes the connection.
func TestNetRPCShutdown(t *testing.T) {
	srv, calc, addr := newNetServer(t)
	std := dialStd(t, addr)
	slow := std.Go("Calc.Sleep", 200*time.Millisecond, new(int), nil)
	select {
	case <-calc.started:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Calc.Sleep never started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown() = %v", err)
	}
	select {
	case <-slow.Done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("the call in flight did not return")
	}
	if slow.Error != nil {
		t.Errorf("net/rpc call in flight during Shutdown: %v", slow.Error)
	}
	if err := std.Call("Calc.Add", Args{1, 2}, new(int)); err == nil {
		t.Error("net/rpc call after Shutdown: error = nil")
	}
}

// TestNetRPCHalfClose is net/rpc's TestShutdown: a client that closes its
// side for writing still gets the reply to its call.
func TestNetRPCHalfClose(t *testing.T) {
	_, _, addr := newNetServer(t)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	std := netrpc.NewClient(nc)
	defer std.Close()
	var r NetReply
	if err := std.Call("Arith.Add", &Args{7, 8}, &r); err != nil {
		t.Fatal(err)
	}
	call := std.Go("Arith.SleepMilli", &Args{A: 10}, &r, nil)
	nc.(*net.TCPConn).CloseWrite()
	select {
	case <-call.Done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("no reply after CloseWrite")
	}
	if call.Error != nil {
		t.Errorf("call before CloseWrite: %v", call.Error)
	}
}

// TestNetRPCGobError: a reply gob cannot encode closes that connection;
// the server goes on.
func TestNetRPCGobError(t *testing.T) {
	_, _, addr := newNetServer(t)
	std := dialStd(t, addr)
	if err := std.Call("Arith.Unencodable", &Args{}, new(struct{ X int })); err == nil {
		t.Error("Call(Arith.Unencodable) error = nil")
	}
	var r NetReply
	if err := dialStd(t, addr).Call("Arith.Add", &Args{1, 2}, &r); err != nil || r.C != 3 {
		t.Errorf("Call(Arith.Add) on a new connection = %d, %v; want 3, nil", r.C, err)
	}
	// And on the client: args gob cannot encode fail the call and close
	// the connection, as its stream is out of step.
	std2 := startStdServer(t, nil)
	cli, err := Dial("tcp", std2.addr(), WithNetRPC(), WithTimeout(defaultTestTimeout))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	err = cli.Call("Arith.Add", struct{ x int }{}, new(NetReply))
	if err == nil || err == ErrShutdown || !strings.Contains(err.Error(), "gob") {
		t.Errorf("Call with args gob cannot encode: error = %v, want gob's error", err)
	}
	waitFor(t, "the connection to be given up", func() bool {
		return cli.Call("Arith.Add", &Args{}, new(NetReply)) == ErrShutdown
	})
}

// TestDefaultServerNetRPC: the package-level functions, on DefaultServer.
func TestDefaultServerNetRPC(t *testing.T) {
	defaultOnce.Do(func() {
		registerArith(t, RegisterName)
		HandleHTTP()
	})
	lis := listenLoopback(t)
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		Accept(lis)
	}()
	std := dialStd(t, lis.Addr().String())
	testArith(t, stdCaller(std), true)
	std.Close()
	lis.Close()
	select {
	case <-accepted:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Accept did not return once its listener closed")
	}

	hs := httptest.NewServer(nil)
	defer hs.Close()
	viaHTTP, err := DialHTTP("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	testArith(t, seedCaller(viaHTTP), true)
	viaHTTP.Close()
	stdHTTP, err := netrpc.DialHTTP("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	testArith(t, stdCaller(stdHTTP), true)
	stdHTTP.Close()

	cc, sc := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ServeConn(sc)
	}()
	one := NewClientConn(cc)
	testArith(t, seedCaller(one), true)
	one.Close()
	<-done

	cc, sc = net.Pipe()
	done = make(chan struct{})
	go func() {
		defer close(done)
		ServeCodec(jsonrpc.NewServerCodec(sc))
	}()
	js := jsonrpc.NewClient(cc)
	testArith(t, stdCaller(js), true)
	js.Close()
	<-done

	var r NetReply
	if err := ServeRequest(&emulator{method: "Arith.Add", args: &Args{1, 2}, reply: &r}); err != nil || r.C != 3 {
		t.Errorf("ServeRequest(Arith.Add) = %d, %v; want 3, nil", r.C, err)
	}
	// The workers of DefaultServer, which is never closed, end on their own.
}

var defaultOnce sync.Once

// TestAcceptClosedListener is net/rpc's TestAcceptExitAfterListenerClose.
func TestAcceptClosedListener(t *testing.T) {
	srv := NewServer()
	registerArith(t, srv.RegisterName)
	lis := listenLoopback(t)
	lis.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Accept(lis)
	}()
	select {
	case <-done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("Accept on a closed listener did not return")
	}
}

// TestServeCodecClose: Close ends ServeCodec and closes its codec.
func TestServeCodecClose(t *testing.T) {
	srv, calc, _ := newNetServer(t)
	cc, sc := net.Pipe()
	defer cc.Close()
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.ServeCodec(jsonrpc.NewServerCodec(sc))
	}()
	js := jsonrpc.NewClient(cc)
	call := js.Go("Calc.Sleep", time.Minute, new(int), nil)
	waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() > 0 })
	srv.Close() // cancels the handler, closes the codec
	select {
	case <-served:
	case <-time.After(defaultTestTimeout):
		t.Fatal("ServeCodec did not return after Close")
	}
	select {
	case <-call.Done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("the call in flight did not end")
	}
	if calc.cancelled.Load() != 1 {
		t.Errorf("handlers cancelled by Close = %d, want 1", calc.cancelled.Load())
	}
}

// closeCodec is a ClientCodec whose reads fail at once, or block until
// Close when block is set; writes fail or block likewise.
type closeCodec struct {
	failWrite  bool
	blockWrite bool
	closed     chan struct{}
	closes     atomic.Int32
}

func newCloseCodec() *closeCodec { return &closeCodec{closed: make(chan struct{})} }

func (c *closeCodec) WriteRequest(*netrpc.Request, any) error {
	if c.failWrite {
		return errors.New("fail")
	}
	if c.blockWrite {
		<-c.closed
		return io.ErrClosedPipe
	}
	return nil
}

func (c *closeCodec) ReadResponseHeader(*netrpc.Response) error {
	<-c.closed
	return io.EOF
}

func (c *closeCodec) ReadResponseBody(any) error { return nil }

func (c *closeCodec) Close() error {
	if c.closes.Add(1) == 1 {
		close(c.closed)
	}
	return nil
}

// TestCodecClient: net/rpc's client behaviours over a codec: Close closes
// the codec once (TestCloseCodec), a failing write fails its call without
// a deadlock (TestSendDeadlock), and a blocked write does not hold a call
// past its timeout.
func TestCodecClient(t *testing.T) {
	c := newCloseCodec()
	cli := NewClientWithCodec(c)
	cli.Close()
	if n := c.closes.Load(); n != 1 {
		t.Errorf("Close closed the codec %d times, want 1", n)
	}

	c = newCloseCodec()
	c.failWrite = true
	cli = NewClientWithCodec(c)
	for range 2 {
		err := cli.Call("Arith.Add", &Args{7, 8}, new(NetReply), WithTimeout(defaultTestTimeout))
		if err == nil || !strings.HasSuffix(err.Error(), ": fail") {
			t.Errorf("Call through a failing write: error = %v, want the write's error", err)
		}
	}
	cli.Close()

	c = newCloseCodec()
	c.blockWrite = true
	cli = NewClientWithCodec(c)
	start := time.Now()
	var wg sync.WaitGroup
	for range codecQueue + 8 { // more than the queue holds: callers wait, bounded too
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cli.Call("Arith.Add", &Args{}, new(NetReply), WithTimeout(100*time.Millisecond))
			if !errors.Is(err, ErrTimeout) {
				t.Errorf("Call through a blocked write: error = %v, want ErrTimeout", err)
			}
		}()
	}
	wg.Wait()
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("calls with a 100ms timeout through a blocked write took %v", el)
	}
	cli.Close()

	// A codec whose Close does not end its reads (net/rpc's TestSendDeadlock
	// codec): Close returns anyway, failing the calls in flight.
	stuck := &stuckCodec{release: make(chan struct{})}
	defer close(stuck.release) // then its reader returns
	cli = NewClientWithCodec(stuck)
	call := cli.Go("Arith.Add", &Args{7, 8}, new(NetReply), nil)
	waitFor(t, "the request to be written", func() bool { return stuck.written.Load() })
	start = time.Now()
	cli.Close()
	if el := time.Since(start); el > codecCloseWait+2*time.Second {
		t.Errorf("Close with a codec that ignores it took %v", el)
	}
	waitCall(t, call, defaultTestTimeout)
	if call.Error != ErrShutdown {
		t.Errorf("call in flight at Close: error = %v, want ErrShutdown itself", call.Error)
	}
}

// stuckCodec is a ClientCodec whose reads ignore Close.
type stuckCodec struct {
	release chan struct{}
	written atomic.Bool
}

func (c *stuckCodec) WriteRequest(*netrpc.Request, any) error { c.written.Store(true); return nil }
func (c *stuckCodec) ReadResponseHeader(*netrpc.Response) error {
	<-c.release
	return io.EOF
}
func (c *stuckCodec) ReadResponseBody(any) error { return nil }
func (c *stuckCodec) Close() error               { return nil }

// stdRequest returns the bytes a net/rpc client writes for one call.
func stdRequest(t testing.TB, method string, args any) []byte {
	t.Helper()
	cc, sc := net.Pipe()
	std := netrpc.NewClient(cc)
	sent := make(chan struct{})
	go func() { // net.Pipe: the write waits for the read below
		defer close(sent)
		std.Go(method, args, new(NetReply), make(chan *netrpc.Call, 1))
	}()
	sc.SetReadDeadline(time.Now().Add(defaultTestTimeout))
	buf := make([]byte, 4096)
	n, err := sc.Read(buf) // net/rpc flushes a request in one write
	if err != nil {
		t.Fatal(err)
	}
	sc.Close()
	<-sent
	std.Close()
	return buf[:n]
}

func TestSniffPrefix(t *testing.T) {
	real := stdRequest(t, "Arith.Add", &Args{1, 2})
	hdr := make([]byte, wire.HeaderSize)
	wire.PutHeader(hdr, &wire.Header{Type: wire.TypeRequest, Seq: 1})
	// A process that registered many gob types first: a two-byte type id.
	shifted := append([]byte{0x2f, 0xff, 0x89}, gobRequestType...)
	tests := []struct {
		give []byte
		want int
	}{
		{give: nil, want: sniffMore},
		{give: real, want: sniffGob},
		{give: real[:5], want: sniffMore},
		{give: shifted, want: sniffGob},
		{give: shifted[:4], want: sniffMore},
		{give: hdr, want: sniffOther},
		{give: hdr[:1], want: sniffOther},
		{give: []byte("CONNECT /_goRPC_ HTTP/1.0\n\n"), want: sniffConnect},
		{give: []byte("CONN"), want: sniffMore},
		{give: []byte("COPY / HTTP/1.1"), want: sniffOther},
		{give: []byte("GET / HTTP/1.0\r\n\r\n"), want: sniffOther},
		{give: []byte(strings.Repeat("\xff", 64)), want: sniffOther},
		{give: []byte(`{"method":"Arith.Add","params":[{}],"id":0}`), want: sniffOther},
		{give: append([]byte{0x2e, 0x7f, 0x03, 0x01, 0x01, 0x07}, "Reqxest"...), want: sniffOther},
		{give: []byte{0x2e, 0x80}, want: sniffOther}, // an even (positive) type id
	}
	for _, tt := range tests {
		if got := sniffPrefix(tt.give); got != tt.want {
			t.Errorf("sniffPrefix(%q) = %d, want %d", tt.give, got, tt.want)
		}
	}
}

// TestNetRPCHandlerCtx: a handler called through net/rpc gets a ctx that
// Close cancels.
func TestNetRPCHandlerCtx(t *testing.T) {
	srv, calc, addr := newNetServer(t)
	std := dialStd(t, addr)
	call := std.Go("Calc.Sleep", time.Minute, new(int), nil)
	waitFor(t, "the handler to start", func() bool { return calc.sleeping.Load() > 0 })
	srv.Close()
	select {
	case <-call.Done:
	case <-time.After(defaultTestTimeout):
		t.Fatal("the call did not end after Close")
	}
	if calc.cancelled.Load() != 1 {
		t.Errorf("handlers whose ctx Close cancelled = %d, want 1", calc.cancelled.Load())
	}
}

// FuzzNetRPCConn feeds a server connection bytes that open as net/rpc's
// protocol: it must never panic, and Close must stop it.
func FuzzNetRPCConn(f *testing.F) {
	req := stdRequest(f, "Arith.Add", &Args{1, 2})
	f.Add(req)
	f.Add(req[:len(req)/2])
	f.Add(append([]byte("CONNECT /_goRPC_ HTTP/1.0\n\n"), req...))
	f.Add([]byte("CONNECT / HTTP/1.0\nHost: x\n\n\x5e\xed\x01"))
	f.Add(append(append([]byte{}, req[:20]...), 0xfc, 0xff, 0xff, 0xff, 0xff))
	f.Add(append(append([]byte{}, req...), 0xff, 0xff))
	f.Fuzz(func(t *testing.T, data []byte) {
		srv := NewServer(WithMaxFrameSize(64 << 10))
		registerArith(t, srv.RegisterName)
		cc, sc := net.Pipe()
		served := make(chan struct{})
		go func() {
			defer close(served)
			srv.ServeConn(sc)
		}()
		go io.Copy(io.Discard, cc) // whatever the server answers; ends when cc closes
		cc.SetWriteDeadline(time.Now().Add(time.Second))
		cc.Write(data) // fails once the server has closed: fine
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
		<-served
		cc.Close()
	})
}

// TestStdClientInterceptors: a net/rpc client's calls go through the
// server's interceptors like seedrpc calls do: a refusal reaches it as the
// error text, and an interceptor sees the args and may replace the reply.
func TestStdClientInterceptors(t *testing.T) {
	var seen atomic.Int64
	ic := func(ctx context.Context, req *Request, next Handler) (any, error) {
		seen.Add(1)
		if req.ServiceMethod == "Arith.Mul" {
			return nil, ErrPermissionDenied
		}
		args, err := req.Args()
		if err != nil {
			return nil, err
		}
		if a, ok := args.(*Args); ok && a.A == 100 {
			return &NetReply{C: -1}, nil // replaced without running the method
		}
		return next(ctx, req)
	}
	_, _, addr := newNetServer(t, WithServerInterceptor(ic))
	std := dialStd(t, addr)

	var r NetReply
	if err := std.Call("Arith.Add", &Args{2, 3}, &r); err != nil || r.C != 5 {
		t.Errorf("Arith.Add(2, 3) = %d, %v; want 5, nil", r.C, err)
	}
	r = NetReply{}
	if err := std.Call("Arith.Add", &Args{100, 3}, &r); err != nil || r.C != -1 {
		t.Errorf("Arith.Add(100, 3) = %d, %v; want the interceptor's -1, nil", r.C, err)
	}
	err := std.Call("Arith.Mul", &Args{2, 3}, &r)
	if err == nil || !strings.Contains(err.Error(), ErrPermissionDenied.Error()) {
		t.Errorf("Arith.Mul refused by the interceptor: error = %v, want %q", err, ErrPermissionDenied)
	}
	if got := seen.Load(); got != 3 {
		t.Errorf("interceptor ran %d times, want 3", got)
	}
}

// TestSniffStallClosed: a connection that sends the first bytes of a
// net/rpc stream (or of an HTTP CONNECT) and then nothing is closed after
// the read timeout, like a stalled frame; the server serves others.
func TestSniffStallClosed(t *testing.T) {
	const readTimeout = 200 * time.Millisecond
	_, _, addr := newNetServer(t, WithReadTimeout(readTimeout))
	for _, tt := range []struct {
		name string
		give []byte
	}{
		{"gob prefix", []byte{0x20, 0xff, 0x81, 0x03}},
		{"CONNECT half", []byte("CONNECT /_go")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write(tt.give); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = io.ReadAll(nc)
			if elapsed := time.Since(start); err != nil || elapsed > 3*time.Second {
				t.Errorf("stalled connection: read ended after %v with %v, want closed by the server after about %v", elapsed, err, readTimeout)
			}
		})
	}
	std := dialStd(t, addr)
	var r NetReply
	if err := std.Call("Arith.Add", &Args{1, 2}, &r); err != nil || r.C != 3 {
		t.Errorf("Arith.Add after the stalls = %d, %v; want 3, nil", r.C, err)
	}
}
