package rpc

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type calcLower struct{}

func (c *calcLower) Add(args Args, reply *int) error { return nil }

type BadMethods struct{}

func (BadMethods) NoReply(args Args) error { return nil }

func (BadMethods) ValueReply(args Args, reply int) error { return nil }

func (BadMethods) NoError(args Args, reply *int) {}

func (BadMethods) WrongResult(args Args, reply *int) int { return 0 }

func (BadMethods) NotCtx(s string, args Args, reply *int) error { return nil }

func (BadMethods) PrivateArgs(args calcLower, reply *int) error { return nil }

func (BadMethods) PrivateReply(args Args, reply *calcLower) error { return nil }

func (BadMethods) TooMany(a, b Args, c *int, d *int) error { return nil }

func (BadMethods) TwoResults(args Args, reply *int) (int, error) { return 0, nil }

func (BadMethods) CtxTooFew(ctx context.Context, reply *int) error { return nil }

func (BadMethods) ValueCtxReply(ctx context.Context, a, b int) error { return nil }

type PtrOnly struct{}

func (p *PtrOnly) Add(args Args, reply *int) error { return nil }

// Mixed has one good method and one bad one; calling the bad one says why.
type Mixed struct{}

func (Mixed) Good(args *Args, reply *int) error { *reply = args.A; return nil }

func (Mixed) Bad(args Args) error { return nil }

func TestRegister(t *testing.T) {
	tests := []struct {
		name     string
		give     any
		giveName string // RegisterName when non-empty
		wantErr  []string
	}{
		{name: "nil", give: nil, wantErr: []string{"nil"}},
		{name: "unexported type", give: &calcLower{}, wantErr: []string{"calcLower", "not exported"}},
		{name: "no methods", give: &struct{}{}, wantErr: []string{"no service name"}},
		{name: "no suitable methods", give: BadMethods{}, wantErr: []string{
			"no exported methods of suitable form",
			"BadMethods.NoReply", "BadMethods.ValueReply", "BadMethods.NoError", "BadMethods.WrongResult",
			"BadMethods.NotCtx", "BadMethods.PrivateArgs", "BadMethods.PrivateReply", "BadMethods.TooMany",
			"BadMethods.TwoResults", "BadMethods.CtxTooFew", "BadMethods.ValueCtxReply",
			"not a pointer", "not exported", "context.Context", "parameters", "error",
		}},
		{name: "value receiver of pointer methods", give: PtrOnly{}, wantErr: []string{"pointer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := NewServer()
			var err error
			if tt.giveName != "" {
				err = srv.RegisterName(tt.giveName, tt.give)
			} else {
				err = srv.Register(tt.give)
			}
			if err == nil {
				t.Fatalf("Register(%T) error = nil, want an error", tt.give)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Register(%T) error = %q, want it to mention %q", tt.give, err, want)
				}
			}
		})
	}

	srv := NewServer()
	if err := srv.RegisterName("", &Calc{}); err == nil {
		t.Error(`RegisterName("") error = nil, want an error`)
	}
	if err := srv.Register(&Calc{}); err != nil {
		t.Fatalf("Register(&Calc{}) = %v", err)
	}
	if err := srv.Register(&Calc{}); err == nil {
		t.Error("Register(&Calc{}) twice: error = nil, want duplicate error")
	}
	if err := srv.RegisterName("Calc", &Probe{}); err == nil {
		t.Error(`RegisterName("Calc") of another type: error = nil, want duplicate error`)
	}
	// As in net/rpc, a service name may hold dots (calls split at the last).
	if err := srv.RegisterName("net.rpc.Calc", &Calc{}); err != nil {
		t.Errorf(`RegisterName("net.rpc.Calc", &Calc{}) = %v`, err)
	}
	// An unexported type may be registered by name.
	if err := srv.RegisterName("Lower", &calcLower{}); err != nil {
		t.Errorf(`RegisterName("Lower", &calcLower{}) = %v`, err)
	}
	if err := srv.Register(Mixed{}); err != nil {
		t.Fatalf("Register(Mixed{}) = %v", err)
	}
	addr := startServer(t, srv)
	cli, err := Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var r int
	if err := cli.Call("Mixed.Good", Args{A: 7}, &r); err != nil || r != 7 {
		t.Errorf("Call(Mixed.Good) = %d, %v; want 7, nil", r, err)
	}
	err = cli.Call("Mixed.Bad", Args{}, &r)
	if !errors.Is(err, ErrNoMethod) || !strings.Contains(err.Error(), "parameters") {
		t.Errorf("Call(Mixed.Bad) error = %v, want ErrNoMethod saying why", err)
	}
	// Both method forms, args by value (Add) and by pointer (Div).
	if err := cli.Call("Calc.Add", &Args{1, 2}, &r); err != nil || r != 3 {
		t.Errorf("Call(Calc.Add, *Args) = %d, %v; want 3, nil", r, err)
	}
	var q float64
	if err := cli.Call("Calc.Div", Args{9, 3}, &q); err != nil || q != 3 {
		t.Errorf("Call(Calc.Div, Args) = %v, %v; want 3, nil", q, err)
	}
	if err := cli.Call("Lower.Add", Args{1, 2}, &r); err != nil {
		t.Errorf("Call(Lower.Add) = %v", err)
	}
}

// Forms is a service with every method form, in both receiver kinds (see
// FormsV). Each method answers from its args and the ctx it was given, so
// the direct and the reflect calls can be compared.
type Forms struct{ seen string }

// FormArgs is large enough to be passed in memory, with fields of several
// kinds.
type FormArgs struct {
	N    int
	S    string
	B    []byte
	M    map[string]int
	F    float64
	Tail [4]int64
}

// FormReply mirrors FormArgs.
type FormReply struct {
	Sum  int64
	Text string
	Seen string
}

type formCtxKey struct{}

var errForm = errors.New("form error")

func formAnswer(ctx context.Context, a *FormArgs, r *FormReply, seen string) error {
	if a.N < 0 {
		return errForm
	}
	r.Sum = int64(a.N) + int64(len(a.B)) + int64(a.M["k"]) + int64(a.F)
	for _, v := range a.Tail {
		r.Sum += v
	}
	r.Text = a.S
	r.Seen = seen
	if ctx != nil {
		if v, ok := ctx.Value(formCtxKey{}).(string); ok {
			r.Seen += "+" + v
		}
	}
	return nil
}

func (f *Forms) PtrArgs(a *FormArgs, r *FormReply) error { return formAnswer(nil, a, r, f.seen) }
func (f *Forms) ValArgs(a FormArgs, r *FormReply) error  { return formAnswer(nil, &a, r, f.seen) }
func (f *Forms) PtrArgsCtx(ctx context.Context, a *FormArgs, r *FormReply) error {
	return formAnswer(ctx, a, r, f.seen)
}
func (f *Forms) ValArgsCtx(ctx context.Context, a FormArgs, r *FormReply) error {
	return formAnswer(ctx, &a, r, f.seen)
}
func (f *Forms) IntArgs(n *int, r *int) error { *r = *n * 2; return nil }

// FormsV has the same methods on a value receiver.
type FormsV struct{ seen string }

func (f FormsV) PtrArgs(a *FormArgs, r *FormReply) error { return formAnswer(nil, a, r, f.seen) }
func (f FormsV) ValArgs(a FormArgs, r *FormReply) error  { return formAnswer(nil, &a, r, f.seen) }
func (f FormsV) PtrArgsCtx(ctx context.Context, a *FormArgs, r *FormReply) error {
	return formAnswer(ctx, a, r, f.seen)
}
func (f FormsV) ValArgsCtx(ctx context.Context, a FormArgs, r *FormReply) error {
	return formAnswer(ctx, &a, r, f.seen)
}
func (f FormsV) IntArgs(n *int, r *int) error { *r = *n * 2; return nil }

// TestDirectCallMatchesReflect: methodType.call, which calls methods taking
// pointers through their code pointer without reflect (directCall), gives
// every method form the same receiver, ctx, args and reply as
// reflect.Value.Call, and returns the same error.
func TestDirectCallMatchesReflect(t *testing.T) {
	ctx := context.WithValue(context.Background(), formCtxKey{}, "ctx")
	args := []FormArgs{
		{N: 1, S: "héllo", B: []byte{1, 2, 3}, M: map[string]int{"k": 7}, F: 2.5, Tail: [4]int64{1, 2, 3, 4}},
		{N: -1}, // the method returns errForm
	}
	var direct int
	for _, rcvr := range []any{&Forms{seen: "ptr"}, FormsV{seen: "val"}, &FormsV{seen: "ptr-to-val"}} {
		svc, err := newService("Forms", rcvr, true)
		if err != nil {
			t.Fatal(err)
		}
		for name, m := range svc.methods {
			if m.direct != nil || m.directCtx != nil {
				direct++
			}
			viaReflect := *m
			viaReflect.direct, viaReflect.directCtx = nil, nil
			for i := range args {
				call := func(m *methodType) (any, error) {
					argp, replyp := m.newValues()
					if name == "IntArgs" {
						argp.Elem().SetInt(int64(args[i].N))
					} else {
						argp.Elem().Set(reflect.ValueOf(args[i]))
					}
					err := m.call(ctx, argp, replyp)
					return replyp.Elem().Interface(), err
				}
				gotReply, gotErr := call(m)
				wantReply, wantErr := call(&viaReflect)
				if !reflect.DeepEqual(gotReply, wantReply) || gotErr != wantErr {
					t.Errorf("%T.%s(args %d): call = %+v, %v; reflect = %+v, %v", rcvr, name, i, gotReply, gotErr, wantReply, wantErr)
				}
				if i == 1 && name != "IntArgs" && !errors.Is(gotErr, errForm) {
					t.Errorf("%T.%s(N: -1) error = %v, want errForm", rcvr, name, gotErr)
				}
			}
		}
	}
	// Pointer receivers with pointer args take the direct path: two
	// methods with a ctx or without, plus IntArgs, for each of the two
	// pointer receivers.
	if direct != 6 {
		t.Errorf("%d methods took the direct path, want 6", direct)
	}
}
