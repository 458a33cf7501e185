package schema

import (
	"bytes"
	"encoding/json"
	"net"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

type Args struct{ A, B int }

type tagged struct {
	A       int    `msgpack:"a"`
	Skipped string `msgpack:"-"`
	C       []byte `msgpack:"c,omitempty"`
	hidden  int
	Odd     string `msgpack:"odd name"`
}

type Base struct {
	ID   string
	Kind int8
}

type withBase struct {
	Base
	Name string
}

type withBasePtr struct {
	*Base
	Name string
}

type clashing struct {
	Kind string
	Base // Kind is taken: not inlined, written as a field named "Base"
}

type noInline struct {
	Base `msgpack:",noinline"`
}

type forcedInline struct {
	Kind string
	Base `msgpack:",inline"` // inlined; its Kind is shadowed
}

type tuple struct {
	_msgpack struct{} `msgpack:",as_array"`
	A        int
	B        string
}

type allOmit struct {
	_msgpack struct{} `msgpack:",omitempty"`
	A        int
	B        string
}

type times struct {
	At    time.Time
	Maybe *time.Time
	D     time.Duration
}

type scalars struct {
	B   bool
	I8  int8
	I64 int64
	U   uint
	U16 uint16
	F32 float32
	F64 float64
	S   string
	Arr [4]byte
	Two [2]int
	Any any
	Err error
	IP  net.IP // a TextMarshaler: written as text
}

type node struct {
	Val  int
	Next *node
}

type tree struct {
	Name     string
	Children []tree
	Index    map[string]*tree
}

type outer struct {
	In inner
}

type inner struct {
	Back *outer
}

type list []list

type ptrLoop *ptrLoop

type binary struct{}

func (binary) MarshalBinary() ([]byte, error) { return []byte{1}, nil }

type custom struct{ X int }

func (c *custom) EncodeMsgpack(e *msgpack.Encoder) error { return e.EncodeInt(int64(c.X)) }

type weird struct {
	C  chan int
	Fn func()
}

func TestOfString(t *testing.T) {
	tests := []struct {
		give any // a value whose type is described; a reflect.Type for interfaces
		want string
	}{
		{Args{}, "{A int, B int}"},
		{&Args{}, "?{A int, B int}"},
		{tagged{}, `{a int, c bytes, "odd name" string}`},
		{withBase{}, "{ID string, Kind int, Name string}"},
		{withBasePtr{}, "{ID string, Kind int, Name string}"},
		{clashing{}, "{Kind string, Base {ID string, Kind int}}"},
		{noInline{}, "{Base {ID string, Kind int}}"},
		{forcedInline{}, "{Kind string, ID string}"},
		{tuple{}, "(A int, B string)"},
		{times{}, "{At time, Maybe ?time, D duration}"},
		{scalars{}, "{B bool, I8 int, I64 int, U uint, U16 uint, F32 float, F64 float, S string, Arr bytes, Two []int, Any any, Err string, IP string}"},
		{map[string][]float64{}, "map[string][]float"},
		{map[int]*Args{}, "map[int]?{A int, B int}"},
		{[]byte{}, "bytes"},
		{"", "string"},
		{0, "int"},
		{struct{}{}, "{}"},
		{node{}, "{Val int, Next ?@$}"},
		{tree{}, "{Name string, Children []@$, Index map[string]?@$}"},
		{[]node{}, "[]{Val int, Next ?@$[]}"},
		{outer{}, "{In {Back ?@$}}"},
		{list{}, "[]@$"},
		{ptrLoop(nil), "?any"},
		{binary{}, "bytes"},
		{custom{}, "any"},
		{weird{}, "{C unsupported, Fn unsupported}"},
		{reflect.TypeFor[any](), "any"},
	}
	for _, tt := range tests {
		typ, ok := tt.give.(reflect.Type)
		if !ok {
			typ = reflect.TypeOf(tt.give)
		}
		if got := Of(typ).String(); got != tt.want {
			t.Errorf("Of(%v).String() = %q, want %q", typ, got, tt.want)
		}
	}
	if got := Of(nil).String(); got != "any" {
		t.Errorf("Of(nil).String() = %q, want any", got)
	}
}

func TestOfOmitEmpty(t *testing.T) {
	s := Of(reflect.TypeFor[tagged]())
	var omit []string
	for _, f := range s.Fields {
		if f.OmitEmpty {
			omit = append(omit, f.Name)
		}
	}
	if want := []string{"c"}; !slices.Equal(omit, want) {
		t.Errorf("OmitEmpty fields of tagged = %q, want %q", omit, want)
	}
	for _, f := range Of(reflect.TypeFor[allOmit]()).Fields {
		if !f.OmitEmpty {
			t.Errorf("allOmit field %s: OmitEmpty = false, want true (struct-level omitempty)", f.Name)
		}
	}
}

// TestOfMatchesWire checks the shapes against what msgpack actually
// writes: the keys of every struct, in order.
func TestOfMatchesWire(t *testing.T) {
	base := &Base{ID: "x", Kind: 1}
	tests := []any{
		Args{1, 2},
		tagged{A: 1, Skipped: "no", C: []byte{1}, hidden: 3, Odd: "o"},
		withBase{Base: *base, Name: "n"},
		withBasePtr{Base: base, Name: "n"},
		clashing{Kind: "k", Base: *base},
		noInline{Base: *base},
		times{At: time.Unix(1, 0), D: time.Second},
	}
	for _, v := range tests {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatalf("msgpack.Marshal(%T): %v", v, err)
		}
		got := mapKeys(t, b)
		var want []string
		for _, f := range Of(reflect.TypeOf(v)).Fields {
			want = append(want, f.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%T: msgpack writes keys %q, shape says %q", v, got, want)
		}
	}

	// A tuple is an array of the field values, in order.
	b, err := msgpack.Marshal(tuple{A: 1, B: "b"})
	if err != nil {
		t.Fatal(err)
	}
	var arr []any
	if err := msgpack.Unmarshal(b, &arr); err != nil || len(arr) != 2 {
		t.Errorf("tuple is written as %x (%v, %v), want an array of 2", b, arr, err)
	}
}

// mapKeys decodes the keys of the msgpack map in b, in order.
func mapKeys(t *testing.T, b []byte) []string {
	t.Helper()
	d := msgpack.NewDecoder(bytes.NewReader(b))
	n, err := d.DecodeMapLen()
	if err != nil {
		t.Fatalf("DecodeMapLen(%x): %v", b, err)
	}
	keys := make([]string, 0, n)
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			t.Fatalf("DecodeString: %v", err)
		}
		keys = append(keys, k)
		if err := d.Skip(); err != nil {
			t.Fatalf("Skip: %v", err)
		}
	}
	return keys
}

func TestFingerprint(t *testing.T) {
	fp := func(v any) string { return Of(reflect.TypeOf(v)).Fingerprint() }

	// Pinned: the canonical text and its hash are part of the protocol
	// (peers compare fingerprints), so they must not drift.
	if got, want := Of(reflect.TypeFor[Args]()).Canonical(), "{A int, B int}"; got != want {
		t.Errorf("Canonical(Args) = %q, want %q", got, want)
	}
	if got, want := fp(Args{}), "c4387598f40050fa"; got != want {
		t.Errorf("Fingerprint(Args) = %q, want %q", got, want)
	}

	type renamed struct{ A, B int }
	type reordered struct{ B, A int }
	type pointers struct {
		A *int
		B *int64
	}
	type tagOmit struct {
		A int `msgpack:",omitempty"`
		B int
	}
	same := []any{renamed{}, reordered{}, pointers{}, tagOmit{}, &Args{}}
	for _, v := range same {
		if got := fp(v); got != fp(Args{}) {
			t.Errorf("Fingerprint(%T) = %s, want %s as for Args (same wire shape)", v, got, fp(Args{}))
		}
	}

	type renamedField struct{ A, C int }
	type otherKind struct {
		A int
		B string
	}
	type extra struct{ A, B, C int }
	type tupled struct {
		_msgpack struct{} `msgpack:",as_array"`
		A, B     int
	}
	type tupledSwapped struct {
		_msgpack struct{} `msgpack:",as_array"`
		B, A     int
	}
	different := []any{renamedField{}, otherKind{}, extra{}, tupled{}, []Args{}, map[string]int{}}
	for _, v := range different {
		if got := fp(v); got == fp(Args{}) {
			t.Errorf("Fingerprint(%T) = %s, the same as Args's, want different", v, got)
		}
	}
	if fp(tupled{}) == fp(tupledSwapped{}) {
		t.Errorf("tuples with swapped field names have the same fingerprint; field order is their wire shape")
	}
	if got := fp(Args{}); len(got) != 16 {
		t.Errorf("Fingerprint = %q, want 16 hex digits", got)
	}
}

// TestShapeRoundTrip checks a shape survives both codecs unchanged, as it
// must to cross the wire in a Describe reply.
func TestShapeRoundTrip(t *testing.T) {
	for _, v := range []any{tree{}, tagged{}, tuple{}, times{}, map[int]*Args{}} {
		s := Of(reflect.TypeOf(v))
		b, err := msgpack.Marshal(s)
		if err != nil {
			t.Fatalf("msgpack.Marshal(shape of %T): %v", v, err)
		}
		var got Shape
		if err := msgpack.Unmarshal(b, &got); err != nil {
			t.Fatalf("msgpack.Unmarshal(shape of %T): %v", v, err)
		}
		if !reflect.DeepEqual(&got, s) {
			t.Errorf("msgpack round trip of %T: got %s, want %s", v, got.String(), s)
		}
		j, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("json.Marshal(shape of %T): %v", v, err)
		}
		var gotJ Shape
		if err := json.Unmarshal(j, &gotJ); err != nil {
			t.Fatalf("json.Unmarshal(shape of %T): %v", v, err)
		}
		if !reflect.DeepEqual(&gotJ, s) {
			t.Errorf("json round trip of %T: got %s, want %s", v, gotJ.String(), s)
		}
	}
}

func TestNewMethod(t *testing.T) {
	m := NewMethod("Add", reflect.TypeFor[*Args](), reflect.TypeFor[int]())
	if m.Args.String() != "{A int, B int}" || m.Reply.String() != "int" {
		t.Errorf("NewMethod args, reply = %s, %s; want {A int, B int}, int (args pointer stripped)", m.Args, m.Reply)
	}
	if m.ArgsFingerprint != m.Args.Fingerprint() || m.ReplyFingerprint != m.Reply.Fingerprint() {
		t.Errorf("NewMethod fingerprints %s, %s do not match the shapes", m.ArgsFingerprint, m.ReplyFingerprint)
	}
}
