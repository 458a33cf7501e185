package rpc

import (
	"context"
	"errors"
	"fmt"
	"go/token"
	"reflect"
	"sort"
	"strings"
	"unsafe"
)

var (
	typeOfError   = reflect.TypeFor[error]()
	typeOfContext = reflect.TypeFor[context.Context]()
)

// service is one registered receiver and its method table, built once.
type service struct {
	name    string
	methods map[string]*methodType // keyed by method name
	// rejected explains, by method name, why an exported method is not
	// callable, so a call to it gets a useful error.
	rejected map[string]string
}

// methodType is one callable method with its types resolved up front, so a
// call does no lookup by name beyond one map access.
type methodType struct {
	fullName  string        // "Service.Method"
	rcvr      reflect.Value // the receiver
	fn        reflect.Value // the method's func, taking the receiver first
	withCtx   bool          // first parameter is a context.Context
	argType   reflect.Type  // the declared args type (value or pointer)
	argIsPtr  bool
	replyType reflect.Type // the reply's element type (the method takes *replyType)
	pair      reflect.Type // struct{ A args; R reply }, see newValues; may be nil
	// direct and directCtx, when set, call the method without reflect: see
	// directCall.
	direct    func(rcvr, args, reply unsafe.Pointer) error
	directCtx func(rcvr unsafe.Pointer, ctx context.Context, args, reply unsafe.Pointer) error
	stats     *methodStats // for DebugHandler; nil-safe
	// handler, when set, is the method: a function given to HandleFunc,
	// with no receiver (rcvr and fn are zero).
	handler func(ctx context.Context, argp, replyp reflect.Value) error
}

// newValues returns pointers to a fresh args value, ready to decode into,
// and a fresh reply value. Both live in one allocation when the method
// table could build a struct type holding the two. A map or slice reply
// is made empty, not nil, as net/rpc does, so that a handler can fill it.
func (m *methodType) newValues() (argp, replyp reflect.Value) {
	if m.pair != nil {
		v := reflect.New(m.pair).Elem()
		argp, replyp = v.Field(0).Addr(), v.Field(1).Addr()
	} else {
		argType := m.argType
		if m.argIsPtr {
			argType = argType.Elem()
		}
		argp, replyp = reflect.New(argType), reflect.New(m.replyType)
	}
	switch m.replyType.Kind() {
	case reflect.Map:
		replyp.Elem().Set(reflect.MakeMap(m.replyType))
	case reflect.Slice:
		// An empty slice on the zero-size base, as reflect.MakeSlice(t, 0, 0)
		// would make, without its allocation.
		*(*sliceHeader)(replyp.UnsafePointer()) = sliceHeader{data: unsafe.Pointer(&zeroBase)}
	}
	return argp, replyp
}

// sliceHeader is the layout of a slice; zeroBase is what empty slice
// replies point to.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

var zeroBase [0]byte

// pairType returns struct{ A args; R reply } for newValues, or nil if
// reflect cannot build it.
func pairType(args, reply reflect.Type) (t reflect.Type) {
	defer func() {
		if recover() != nil {
			t = nil
		}
	}()
	return reflect.StructOf([]reflect.StructField{
		{Name: "A", Type: args},
		{Name: "R", Type: reply},
	})
}

// call invokes the method with pointers as returned by newValues.
func (m *methodType) call(ctx context.Context, argp, replyp reflect.Value) error {
	if m.handler != nil {
		return m.handler(ctx, argp, replyp)
	}
	if m.directCtx != nil {
		return m.directCtx(m.rcvr.UnsafePointer(), ctx, argp.UnsafePointer(), replyp.UnsafePointer())
	}
	if m.direct != nil {
		return m.direct(m.rcvr.UnsafePointer(), argp.UnsafePointer(), replyp.UnsafePointer())
	}
	arg := argp
	if !m.argIsPtr {
		arg = argp.Elem()
	}
	var out []reflect.Value
	if m.withCtx {
		out = m.fn.Call([]reflect.Value{m.rcvr, reflect.ValueOf(ctx), arg, replyp})
	} else {
		out = m.fn.Call([]reflect.Value{m.rcvr, arg, replyp})
	}
	if e := out[0].Interface(); e != nil {
		return e.(error)
	}
	return nil
}

// newService builds the method table of rcvr, or explains why it cannot.
func newService(name string, rcvr any, useName bool) (*service, error) {
	if rcvr == nil {
		return nil, errors.New("rpc: Register of nil receiver")
	}
	v := reflect.ValueOf(rcvr)
	t := v.Type()
	sname := reflect.Indirect(v).Type().Name()
	if useName {
		sname = name
	}
	if sname == "" {
		return nil, fmt.Errorf("rpc: no service name for type %s", t)
	}
	if !useName && !token.IsExported(sname) {
		return nil, fmt.Errorf("rpc: type %s is not exported; use RegisterName", sname)
	}
	s := &service{name: sname, methods: make(map[string]*methodType), rejected: make(map[string]string)}
	var rejected []string
	for i := 0; i < t.NumMethod(); i++ { // NumMethod counts exported methods only
		m := t.Method(i)
		mt, why := suitableMethod(sname, v, m)
		if why != "" {
			rejected = append(rejected, fmt.Sprintf("%s.%s: %s", sname, m.Name, why))
			s.rejected[m.Name] = why
			continue
		}
		s.methods[m.Name] = mt
	}
	if len(s.methods) == 0 {
		msg := fmt.Sprintf("rpc: type %s has no exported methods of suitable form", sname)
		if ptr := reflect.PointerTo(t); t.Kind() != reflect.Pointer && ptr.NumMethod() > t.NumMethod() {
			msg += " (hint: pass a pointer to the value)"
		}
		if len(rejected) > 0 {
			sort.Strings(rejected)
			msg += ":\n\t" + strings.Join(rejected, "\n\t")
		}
		return nil, errors.New(msg)
	}
	return s, nil
}

// suitableMethod returns the method table entry of m, or why m does not
// have the form func (t *T) M([ctx context.Context,] args A, reply *R) error.
func suitableMethod(sname string, rcvr reflect.Value, m reflect.Method) (*methodType, string) {
	mt := m.Type // includes the receiver as In(0)
	in := mt.NumIn() - 1
	if in != 2 && in != 3 {
		return nil, fmt.Sprintf("has %d parameters, want (args, *reply) or (ctx, args, *reply)", in)
	}
	first := 1
	withCtx := in == 3
	if withCtx {
		if mt.In(1) != typeOfContext {
			return nil, fmt.Sprintf("first of 3 parameters is %s, want context.Context", mt.In(1))
		}
		first = 2
	} else if mt.In(1) == typeOfContext {
		return nil, "takes context.Context but no args, want (ctx, args, *reply)"
	}
	argType, replyType := mt.In(first), mt.In(first+1)
	if !isExportedOrBuiltin(argType) {
		return nil, fmt.Sprintf("args type %s is not exported", argType)
	}
	if replyType.Kind() != reflect.Pointer {
		return nil, fmt.Sprintf("reply type %s is not a pointer", replyType)
	}
	if !isExportedOrBuiltin(replyType) {
		return nil, fmt.Sprintf("reply type %s is not exported", replyType)
	}
	if mt.NumOut() != 1 || mt.Out(0) != typeOfError {
		return nil, "must return exactly one value, of type error"
	}
	mt2 := &methodType{
		fullName:  sname + "." + m.Name,
		rcvr:      rcvr,
		fn:        m.Func,
		withCtx:   withCtx,
		argType:   argType,
		argIsPtr:  argType.Kind() == reflect.Pointer,
		replyType: replyType.Elem(),
		stats:     new(methodStats),
	}
	argElem := argType
	if mt2.argIsPtr {
		argElem = argType.Elem()
	}
	mt2.pair = pairType(argElem, mt2.replyType)
	if rcvr.Kind() == reflect.Pointer && mt2.argIsPtr {
		directCall(mt2)
	}
	return mt2, ""
}

// directCall sets m.direct or m.directCtx to the method's own function,
// typed with unsafe.Pointer in place of its receiver, args and reply types.
// When all three are pointers this is the same calling convention (every
// pointer type is passed alike), and it saves reflect.Value.Call's
// allocations and argument marshalling on every call. Methods taking a
// value receiver or args by value keep the reflect path.
func directCall(m *methodType) {
	f := m.fn.Interface()
	// A func value is pointer-shaped: the interface's data word is it.
	code := (*[2]unsafe.Pointer)(unsafe.Pointer(&f))[1]
	if m.withCtx {
		*(*unsafe.Pointer)(unsafe.Pointer(&m.directCtx)) = code
	} else {
		*(*unsafe.Pointer)(unsafe.Pointer(&m.direct)) = code
	}
}

func isExportedOrBuiltin(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return token.IsExported(t.Name()) || t.PkgPath() == ""
}
