package rpc

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seedrpc/rpc/internal/schema"
	"github.com/seedrpc/rpc/lb"
	"github.com/seedrpc/rpc/registry"
)

// The server's types of the Shop service.
type (
	Item struct {
		Name string
		Qty  int
	}
	Order struct {
		ID    string
		Items []Item
	}
	OrderReply struct {
		ID    string
		Total float64
	}
	Profile struct {
		Name string
		Bio  string `msgpack:",omitempty"`
	}
	Prefs struct {
		Theme string `msgpack:",omitempty"`
	}
)

// shopServer is a server of Shop whose handlers count their calls, with
// a server interceptor counting describes.
type shopServer struct {
	srv       *Server
	orders    atomic.Int32
	describes atomic.Int32
}

func newShopServer(t testing.TB, opts ...ServerOption) *shopServer {
	t.Helper()
	s := &shopServer{}
	count := WithServerInterceptor(func(ctx context.Context, req *Request, next Handler) (any, error) {
		if req.ServiceMethod == schema.DescribeMethod {
			s.describes.Add(1)
		}
		return next(ctx, req)
	})
	opts = append([]ServerOption{count}, opts...) // outermost: it sees refused describes too
	s.srv = NewServer(opts...)
	must(t, HandleFunc(s.srv, "Shop.Order", func(_ context.Context, o Order) (OrderReply, error) {
		s.orders.Add(1)
		return OrderReply{ID: o.ID, Total: float64(len(o.Items))}, nil
	}))
	must(t, HandleFunc(s.srv, "Shop.Profile", func(_ context.Context, p Profile) (string, error) { return p.Name + "|" + p.Bio, nil }))
	must(t, HandleFunc(s.srv, "Shop.Prefs", func(_ context.Context, p Prefs) (string, error) { return p.Theme, nil }))
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// callZero makes one typed call of method with the zero Req and Resp.
func callZero[Req, Resp any](ctx context.Context, cli *Client, method string, opts ...CallOption) error {
	var req Req
	_, err := NewMethod[Req, Resp](cli, method).Call(ctx, req, opts...)
	return err
}

func TestSchemaCheck(t *testing.T) {
	shop := newShopServer(t)
	cli, _ := serveAndDial(t, shop.srv)
	ctx := t.Context()

	type sameItem struct { // other type names, other integer widths
		Qty  int64
		Name string
	}
	type sameOrder struct {
		Items []*sameItem
		ID    string
	}
	type renamedItem struct {
		Title string
		Qty   int
	}
	type renamedOrder struct {
		ID    string
		Items []renamedItem
	}
	type intNameItem struct {
		Name int
		Qty  int
	}
	type intNameOrder struct {
		ID    string
		Items []intNameItem
	}
	type uintItem struct {
		Name string
		Qty  uint
	}
	type uintOrder struct {
		ID    string
		Items []uintItem
	}
	type optionalExtra struct {
		ID     string
		Items  []Item
		Note   string `msgpack:",omitempty"`
		Coupon *string
	}
	type requiredExtra struct {
		ID    string
		Items []Item
		Note  string
	}
	type intTotal struct {
		ID    string
		Total int
	}
	type totalOnly struct{ Total float64 } // lacks ID: a field only the server has, not optional
	type profileNoBio struct{ Name string }
	type profileNoName struct {
		Bio string `msgpack:",omitempty"`
	}
	type prefsRenamed struct {
		Colour string `msgpack:",omitempty"`
	}
	type prefsExtra struct {
		Theme string `msgpack:",omitempty"`
		Font  string `msgpack:",omitempty"`
	}

	tests := []struct {
		name    string
		call    func() error
		wantErr string // "" for compatible
	}{
		{"same shape", func() error { return callZero[sameOrder, OrderReply](ctx, cli, "Shop.Order") }, ""},
		{"pointer Req", func() error { return callZero[*Order, *OrderReply](ctx, cli, "Shop.Order") }, ""},
		{"field renamed", func() error { return callZero[renamedOrder, OrderReply](ctx, cli, "Shop.Order") },
			"args at $.Items[].Title: string vs no field (client vs server)"},
		{"kind changed", func() error { return callZero[intNameOrder, OrderReply](ctx, cli, "Shop.Order") },
			"args at $.Items[].Name: int vs string"},
		{"int vs uint", func() error { return callZero[uintOrder, OrderReply](ctx, cli, "Shop.Order") },
			"args at $.Items[].Qty: uint vs int"},
		{"reply type changed", func() error { return callZero[Order, string](ctx, cli, "Shop.Order") },
			"reply at $: string vs {ID string, Total float}"},
		{"reply field kind changed", func() error { return callZero[Order, intTotal](ctx, cli, "Shop.Order") },
			"reply at $.Total: int vs float"},
		{"reply lacks a server field", func() error { return callZero[Order, totalOnly](ctx, cli, "Shop.Order") },
			"reply at $.ID: no field vs string"},
		{"optional fields added by the client", func() error { return callZero[optionalExtra, OrderReply](ctx, cli, "Shop.Order") }, ""},
		{"required field added by the client", func() error { return callZero[requiredExtra, OrderReply](ctx, cli, "Shop.Order") },
			"args at $.Note: string vs no field"},
		{"optional field only the server has", func() error { return callZero[profileNoBio, string](ctx, cli, "Shop.Profile") }, ""},
		{"required field only the server has", func() error { return callZero[profileNoName, string](ctx, cli, "Shop.Profile") },
			"args at $.Name: no field vs string"},
		{"optional field renamed", func() error { return callZero[prefsRenamed, string](ctx, cli, "Shop.Prefs") },
			"args at $.Colour: string vs no field"},
		{"optional field added next to a shared one", func() error { return callZero[prefsExtra, string](ctx, cli, "Shop.Prefs") }, ""},
	}
	for _, tt := range tests {
		before := shop.orders.Load()
		err := tt.call()
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: error = %v, want nil", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrSchemaMismatch) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error = %v, want ErrSchemaMismatch with %q", tt.name, err, tt.wantErr)
		}
		if !strings.Contains(err.Error(), "Shop.") {
			t.Errorf("%s: error %q does not name the method", tt.name, err)
		}
		if n := shop.orders.Load(); n != before {
			t.Errorf("%s: the mismatched call reached the handler", tt.name)
		}
	}
	// The service was described once for all those checks.
	if n := shop.describes.Load(); n != 1 {
		t.Errorf("Shop described %d times, want 1", n)
	}

	// Every mode checks.
	m := NewMethod[renamedOrder, OrderReply](cli, "Shop.Order")
	if _, err := m.Go(ctx, renamedOrder{}).Await(ctx); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("Go: error = %v, want ErrSchemaMismatch", err)
	}
	errc := make(chan error, 1)
	m.Callback(ctx, renamedOrder{}, func(_ OrderReply, err error) { errc <- err })
	if err := recvErr(t, errc, "the callback"); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("Callback: error = %v, want ErrSchemaMismatch", err)
	}
	if err := m.Oneway(ctx, renamedOrder{}); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("Oneway: error = %v, want ErrSchemaMismatch", err)
	}
	// WithSchemaCheck(false) sends the call unchecked.
	if _, err := m.Call(ctx, renamedOrder{}, WithSchemaCheck(false)); err != nil {
		t.Errorf("Call with WithSchemaCheck(false): error = %v, want nil", err)
	}
}

// TestSchemaCheckOnce checks that the verdict is cached: many calls,
// concurrent first calls included, describe the service once.
func TestSchemaCheckOnce(t *testing.T) {
	shop := newShopServer(t)
	cli, _ := serveAndDial(t, shop.srv)
	ctx := t.Context()
	m := NewMethod[Order, OrderReply](cli, "Shop.Order")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := m.Call(ctx, Order{ID: "x"}); err != nil {
					t.Errorf("caller %d: %v", i, err)
					return
				}
			}
		}()
	}
	waitGroup(t, &wg)
	if n := shop.describes.Load(); n != 1 {
		t.Errorf("320 calls from 16 goroutines described Shop %d times, want 1", n)
	}
	if n := shop.orders.Load(); n != 320 {
		t.Errorf("handler ran %d times, want 320", n)
	}
	if v, err := cli.pool(cli.static).schema.lookup(schemaKey{"Shop.Order", reflect.TypeFor[*Order](), reflect.TypeFor[*OrderReply]()}); !v || err != nil {
		t.Errorf("cached verdict = %v, %v; want known and compatible", v, err)
	}
}

// TestSchemaCheckUntyped checks the opt-in of the untyped API.
func TestSchemaCheckUntyped(t *testing.T) {
	type renamed struct{ Title string }
	shop := newShopServer(t)
	cli, addr := serveAndDial(t, shop.srv)
	var reply string
	if err := cli.Call("Shop.Profile", renamed{"x"}, &reply); err != nil {
		t.Errorf("untyped Call without the check: error = %v, want nil", err)
	}
	if shop.describes.Load() != 0 {
		t.Error("an untyped call described the service without WithSchemaCheck")
	}
	err := cli.Call("Shop.Profile", renamed{"x"}, &reply, WithSchemaCheck(true))
	if !errors.Is(err, ErrSchemaMismatch) || !strings.Contains(err.Error(), "args at $.Title: string vs no field") {
		t.Errorf("untyped Call with WithSchemaCheck(true): error = %v, want ErrSchemaMismatch at $.Title", err)
	}
	if err := cli.Call("Shop.Profile", Profile{Name: "n"}, &reply, WithSchemaCheck(true)); err != nil || reply != "n|" {
		t.Errorf("compatible untyped Call with the check = %q, %v", reply, err)
	}
	var wrong int
	if err := cli.Call("Shop.Profile", Profile{}, &wrong, WithSchemaCheck(true)); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("untyped Call with a wrong reply type: error = %v, want ErrSchemaMismatch", err)
	}

	// As a client default.
	cli2, err := Dial("tcp", addr, WithSchemaCheck(true))
	if err != nil {
		t.Fatal(err)
	}
	defer cli2.Close()
	if err := cli2.Call("Shop.Profile", renamed{"x"}, &reply); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("Call on a client with WithSchemaCheck(true): error = %v, want ErrSchemaMismatch", err)
	}
	if err := cli2.Oneway("Shop.Profile", renamed{"x"}); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("Oneway on a client with WithSchemaCheck(true): error = %v, want ErrSchemaMismatch", err)
	}
	// Typed calls on a client whose default is off are not checked.
	cli3, err := Dial("tcp", addr, WithSchemaCheck(false))
	if err != nil {
		t.Fatal(err)
	}
	defer cli3.Close()
	before := shop.describes.Load()
	if err := callZero[renamed, string](t.Context(), cli3, "Shop.Profile"); err != nil {
		t.Errorf("typed call on a client with WithSchemaCheck(false): error = %v, want nil", err)
	}
	if shop.describes.Load() != before {
		t.Error("a client with WithSchemaCheck(false) described the service")
	}
}

// TestSchemaCheckNoIntrospection checks that a server that does not
// describe itself is not checked: the call goes through.
func TestSchemaCheckNoIntrospection(t *testing.T) {
	type renamed struct{ Title string }
	for _, tt := range []struct {
		name string
		opts []ServerOption
	}{
		{"introspection off", []ServerOption{WithIntrospection(false)}},
		{"describe refused", []ServerOption{WithServerInterceptor(func(ctx context.Context, req *Request, next Handler) (any, error) {
			if req.ServiceMethod == schema.DescribeMethod {
				return nil, ErrPermissionDenied
			}
			return next(ctx, req)
		})}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			shop := newShopServer(t, tt.opts...)
			cli, _ := serveAndDial(t, shop.srv)
			for range 3 {
				v, err := NewMethod[renamed, string](cli, "Shop.Profile").Call(t.Context(), renamed{"x"})
				if err != nil || v != "|" {
					t.Errorf("unchecked call = %q, %v; want \"|\" (zero values decoded), nil", v, err)
				}
			}
			if tt.name == "describe refused" && shop.describes.Load() != 1 {
				t.Errorf("described %d times, want 1 (the refusal is cached)", shop.describes.Load())
			}
		})
	}
}

// TestSchemaCheckDescribeFails checks that a describe that fails to get
// an answer fails the call like a transport failure, is not cached, and
// is asked again by the next call.
func TestSchemaCheckDescribeFails(t *testing.T) {
	var block atomic.Bool
	block.Store(true)
	shop := newShopServer(t, WithServerInterceptor(func(ctx context.Context, req *Request, next Handler) (any, error) {
		if req.ServiceMethod == schema.DescribeMethod && block.Load() {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return next(ctx, req)
	}))
	cli, _ := serveAndDial(t, shop.srv)
	m := NewMethod[Order, OrderReply](cli, "Shop.Order")
	_, err := m.Call(t.Context(), Order{}, WithTimeout(50*time.Millisecond))
	if !errors.Is(err, ErrTimeout) || errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("call whose describe hangs: error = %v, want ErrTimeout", err)
	}
	if shop.orders.Load() != 0 {
		t.Error("the call ran although its check did not finish")
	}
	block.Store(false)
	if _, err := m.Call(t.Context(), Order{}, WithTimeout(defaultTestTimeout)); err != nil {
		t.Errorf("call once the describe answers: %v", err)
	}
	if _, err := NewMethod[struct{ Title string }, string](cli, "Shop.Profile").Call(t.Context(), struct{ Title string }{}); !errors.Is(err, ErrSchemaMismatch) {
		t.Errorf("mismatched call once the describe answers: error = %v, want ErrSchemaMismatch", err)
	}
}

// TestSchemaCheckRestart checks that a server restarted at the same
// address with other types is checked again: a lost connection drops the
// address's verdicts.
func TestSchemaCheckRestart(t *testing.T) {
	shop := newShopServer(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	served := make(chan error, 1)
	go func() { served <- shop.srv.Serve(lis) }()
	cli, err := Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	m := NewMethod[Profile, string](cli, "Shop.Profile")
	if _, err := m.Call(t.Context(), Profile{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	shop.srv.Close()
	recvErr(t, served, "Serve to return")

	// The new build renamed Name.
	srv2 := NewServer()
	type profile2 struct{ FullName string }
	must(t, HandleFunc(srv2, "Shop.Profile", func(_ context.Context, p profile2) (string, error) { return p.FullName, nil }))
	lis2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	served2 := make(chan error, 1)
	go func() { served2 <- srv2.Serve(lis2) }()
	defer func() { srv2.Close(); recvErr(t, served2, "Serve to return") }()

	deadline := time.Now().Add(defaultTestTimeout)
	for {
		_, err := m.Call(t.Context(), Profile{Name: "a"}, WithTimeout(time.Second))
		if errors.Is(err, ErrSchemaMismatch) {
			if !strings.Contains(err.Error(), "$.Name: string vs no field") {
				t.Errorf("after the restart: error = %v, want the renamed field named", err)
			}
			break
		}
		if err == nil {
			t.Fatal("after the restart the call succeeded: the old verdict was kept")
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: error = %v, want ErrSchemaMismatch", err)
		}
		time.Sleep(10 * time.Millisecond) // the connection to the old server is being replaced
	}
}

// TestSchemaCheckPerInstance checks that verdicts are per address: of two
// instances of a service, only the one whose types drifted fails.
func TestSchemaCheckPerInstance(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	good := newShopServer(t, WithRegistry(reg))
	startServer(t, good.srv)
	drifted := NewServer(WithRegistry(reg))
	type profile2 struct{ FullName string }
	must(t, HandleFunc(drifted, "Shop.Profile", func(_ context.Context, p profile2) (string, error) { return p.FullName, nil }))
	startServer(t, drifted)

	cli, err := NewClient(WithRegistry(reg), WithBalancer(lb.RoundRobin()))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	waitFor(t, "both instances known", func() bool {
		insts, err := reg.Lookup(t.Context(), "Shop")
		return err == nil && len(insts) == 2
	})
	m := NewMethod[Profile, string](cli, "Shop.Profile")
	var ok, mismatched int
	for range 20 {
		_, err := m.Call(t.Context(), Profile{Name: "n"})
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrSchemaMismatch):
			mismatched++
		default:
			t.Fatalf("call: %v", err)
		}
	}
	if ok == 0 || mismatched == 0 || ok+mismatched != 20 {
		t.Errorf("20 calls over a good and a drifted instance: %d ok, %d mismatched; want some of each", ok, mismatched)
	}
	if n := good.describes.Load(); n != 1 {
		t.Errorf("the good instance was described %d times, want 1", n)
	}
}
