package rpc

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/seedrpc/rpc/codec"
	"github.com/seedrpc/rpc/internal/schema"
	"github.com/seedrpc/rpc/registry"
)

func TestDescribe(t *testing.T) {
	for _, cd := range []codec.Codec{codec.Msgpack{}, codec.JSON{}} {
		t.Run(cd.Name(), func(t *testing.T) {
			cli, _, srv := newCalcPair(t, nil, WithCodec(cd))
			if err := srv.Register(newProbe()); err != nil {
				t.Fatal(err)
			}
			var all schema.Description
			if err := cli.Call(schema.DescribeMethod, schema.DescribeArgs{}, &all); err != nil {
				t.Fatalf("Call(%s) error = %v", schema.DescribeMethod, err)
			}
			var names []string
			for _, s := range all.Services {
				names = append(names, s.Name)
			}
			if want := []string{"Calc", "Probe"}; !slices.Equal(names, want) {
				t.Errorf("described services = %q, want %q (sorted, reserved one left out)", names, want)
			}

			var one schema.Description
			if err := cli.Call(schema.DescribeMethod, schema.DescribeArgs{Service: "Calc"}, &one); err != nil {
				t.Fatalf("Call(%s, Calc) error = %v", schema.DescribeMethod, err)
			}
			if len(one.Services) != 1 || one.Services[0].Name != "Calc" {
				t.Fatalf("Describe(Calc) = %+v, want the one service Calc", one.Services)
			}
			methods := make(map[string]schema.Method)
			var order []string
			for _, m := range one.Services[0].Methods {
				methods[m.Name] = m
				order = append(order, m.Name)
			}
			if want := []string{"Add", "Div", "Echo", "Panic", "Sleep"}; !slices.Equal(order, want) {
				t.Errorf("Calc methods = %q, want %q", order, want)
			}
			tests := []struct {
				method      string
				args, reply string
				argsType    reflect.Type
			}{
				{"Add", "{A int, B int}", "int", reflect.TypeFor[Args]()},
				{"Div", "{A int, B int}", "float", reflect.TypeFor[Args]()}, // *Args: the pointer is not on the wire
				{"Sleep", "duration", "int", reflect.TypeFor[int64]()},
				{"Echo", "bytes", "bytes", reflect.TypeFor[[]byte]()},
			}
			for _, tt := range tests {
				m := methods[tt.method]
				if m.Args.String() != tt.args || m.Reply.String() != tt.reply {
					t.Errorf("Calc.%s shapes = %s, %s; want %s, %s", tt.method, m.Args, m.Reply, tt.args, tt.reply)
				}
				if tt.method != "Sleep" {
					if want := schema.Of(tt.argsType).Fingerprint(); m.ArgsFingerprint != want {
						t.Errorf("Calc.%s args fingerprint = %s, want %s", tt.method, m.ArgsFingerprint, want)
					}
				}
			}

			err := cli.Call(schema.DescribeMethod, schema.DescribeArgs{Service: "Nope"}, &one)
			var se ServerError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), `"Nope"`) {
				t.Errorf("Describe(Nope) error = %v, want a ServerError naming Nope", err)
			}
		})
	}
}

func TestIntrospectionOff(t *testing.T) {
	cli, _, _ := newCalcPair(t, []ServerOption{WithIntrospection(false)})
	var d schema.Description
	err := cli.Call(schema.DescribeMethod, schema.DescribeArgs{}, &d)
	if !errors.Is(err, ErrNoService) {
		t.Errorf("Describe with introspection off: error = %v, want ErrNoService", err)
	}
	var sum int
	if err := cli.Call("Calc.Add", Args{1, 2}, &sum); err != nil || sum != 3 {
		t.Errorf("Calc.Add = %d, %v; want 3, nil", sum, err)
	}
}

func TestReservedName(t *testing.T) {
	for _, on := range []bool{true, false} {
		srv := NewServer(WithIntrospection(on))
		if err := srv.RegisterName(schema.ServiceName, &Calc{}); err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("RegisterName(%q) with introspection %v: error = %v, want reserved", schema.ServiceName, on, err)
		}
		srv.Close()
	}
}

// TestReservedNotAnnounced checks the reserved service stays out of the
// registry: it is on every server, so listing it would say nothing.
func TestReservedNotAnnounced(t *testing.T) {
	reg := registry.NewMemory()
	defer reg.Close()
	srv := NewServer(WithRegistry(reg))
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), defaultTestTimeout)
	defer cancel()
	waitFor(t, "Calc announced", func() bool { // Serve announces before it accepts
		insts, err := reg.Lookup(ctx, "Calc")
		return err == nil && len(insts) == 1 && insts[0].Addr == addr
	})
	if insts, err := reg.Lookup(ctx, schema.ServiceName); err != nil || len(insts) != 0 {
		t.Errorf("Lookup(%s) = %v, %v; want none", schema.ServiceName, insts, err)
	}
}
