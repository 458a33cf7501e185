package middleware

import (
	"context"
	"errors"
	"net"
	"testing"

	rpc "github.com/seedrpc/rpc"
)

func TestACLEndToEnd(t *testing.T) {
	acl, err := ACL(
		Rule{Allow: false, Nets: []string{"127.0.0.0/8"}, Methods: []string{"Echo.Secret"}},
		Rule{Allow: true, Nets: []string{"127.0.0.1"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	e, addr := serve(t, rpc.WithServerInterceptor(acl))
	cli := dial(t, addr)
	if err := say(t, cli); err != nil {
		t.Errorf("Echo.Say from 127.0.0.1 = %v, want nil", err)
	}
	var got string
	if err := cli.Call("Echo.Secret", "x", &got); !errors.Is(err, rpc.ErrPermissionDenied) || err.Error() != "rpc: permission denied" {
		t.Errorf("Echo.Secret from 127.0.0.1 error = %v, want a bare ErrPermissionDenied", err)
	}
	if n := e.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times, want 1", n)
	}

	// Only another network is allowed: loopback is refused.
	other, err := ACL(Rule{Allow: true, Nets: []string{"10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	_, addr2 := serve(t, rpc.WithServerInterceptor(other))
	if err := say(t, dial(t, addr2)); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Errorf("Echo.Say from outside the allowed net error = %v, want ErrPermissionDenied", err)
	}
}

func TestACLRules(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 4000} }
	rules := []Rule{
		{Allow: true, Nets: []string{"10.1.0.0/16", "2001:db8::/32"}, Methods: []string{"Admin.*"}},
		{Allow: false, Methods: []string{"Admin.*"}},
		{Allow: false, Nets: []string{"192.0.2.7"}},
		{Allow: true, Methods: []string{"Calc.*", "*.Get*"}},
	}
	acl, err := ACL(rules...)
	if err != nil {
		t.Fatal(err)
	}
	pipe, _ := net.Pipe()
	defer pipe.Close()
	tests := []struct {
		method string
		peer   net.Addr
		want   bool
	}{
		{"Admin.Reset", tcp("10.1.2.3"), true},
		{"Admin.Reset", tcp("::ffff:10.1.2.3"), true}, // IPv4-mapped
		{"Admin.Reset", tcp("2001:db8::1"), true},
		{"Admin.Reset", tcp("10.2.0.1"), false},
		{"Admin.Reset", pipe.RemoteAddr(), false},
		{"Calc.Add", tcp("10.2.0.1"), true},
		{"Calc.Add", tcp("192.0.2.7"), false},
		{"Calc.Add", pipe.RemoteAddr(), true}, // no Nets: any peer
		{"Store.GetItem", tcp("10.2.0.1"), true},
		{"Store.Put", tcp("10.2.0.1"), false}, // no rule: refused
	}
	for _, tt := range tests {
		next := &stubNext{}
		_, err := acl(context.Background(), &rpc.Request{ServiceMethod: tt.method, Peer: tt.peer}, next.handle)
		if got := err == nil; got != tt.want || (err != nil && !errors.Is(err, rpc.ErrPermissionDenied)) {
			t.Errorf("ACL(%s from %v) = %v, want allowed %v", tt.method, tt.peer, err, tt.want)
		}
		if got := next.n.Load() == 1; got != tt.want {
			t.Errorf("ACL(%s from %v) called next: %v, want %v", tt.method, tt.peer, got, tt.want)
		}
	}

	empty, err := ACL()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := empty(context.Background(), &rpc.Request{ServiceMethod: "Calc.Add", Peer: tcp("10.0.0.1")}, (&stubNext{}).handle); !errors.Is(err, rpc.ErrPermissionDenied) {
		t.Errorf("ACL() with no rules = %v, want ErrPermissionDenied", err)
	}
}

func TestACLBadRules(t *testing.T) {
	for _, r := range []Rule{
		{Nets: []string{"10.0.0.0/33"}},
		{Nets: []string{"not-an-ip"}},
		{Methods: []string{"Calc.[Add"}},
	} {
		if _, err := ACL(Rule{Allow: true}, r); err == nil {
			t.Errorf("ACL(%+v) = nil error, want one naming rule 1", r)
		}
	}
}
