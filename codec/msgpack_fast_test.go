package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// The fast path is tested against msgpack itself: appendMsgpack and
// unmarshalMsgpack are the codec without it.

type fastInner struct {
	A int
	B string
	C []uint64
}

type fastName string

type fastLevel int16

// fastNested has a field of every kind the fast path handles.
type fastNested struct {
	Name    string
	Tags    []string
	IDs     []int32
	Raw     []byte
	Inner   fastInner
	Ptr     *fastInner
	F32     float32
	F64     float64
	I       int
	I8      int8
	I16     int16
	I32     int32
	I64     int64
	U       uint
	U8      uint8
	U16     uint16
	U32     uint32
	U64     uint64
	Flag    bool
	Renamed string `msgpack:"r"`
	Skipped string `msgpack:"-"`
	hidden  int
	Names   []fastName
	Level   fastLevel
	Flags   []bool
	Floats  []float64
	PInt    *int
	PStr    *string
	PBytes  *[]byte
	Dur     time.Duration
}

func newFastNested() *fastNested {
	n, s, b := 7, "ptr", []byte{9}
	return &fastNested{
		Name: "n", Tags: []string{"a", "", "é"}, IDs: []int32{1, -1, 1 << 20}, Raw: []byte{0, 255},
		Inner: fastInner{A: -5, B: "in", C: []uint64{math.MaxUint64}},
		Ptr:   &fastInner{A: 300, C: []uint64{}},
		F32:   1.25, F64: -2.5, I: -70000, I8: -128, I16: 300, I32: -1, I64: math.MinInt64,
		U: 1 << 40, U8: 255, U16: 65535, U32: 1 << 31, U64: 1,
		Flag: true, Renamed: "r", Skipped: "never sent", hidden: 3,
		Names: []fastName{"x"}, Level: -3, Flags: []bool{true, false}, Floats: []float64{0.5},
		PInt: &n, PStr: &s, PBytes: &b, Dur: time.Second,
	}
}

// fastSmall has few fields, so its names are looked up without a map.
type fastSmall struct {
	A, B int
	S    string `msgpack:"s"`
}

type fastArgs struct{ A, B int }

type fastOnePtr struct{ P *fastInner }

type fastEmpty struct{}

type fastUnexported struct {
	a int
	b string
}

// Types the fast path must leave to msgpack.
type (
	fastEmbedded struct {
		fastInner
		X int
	}
	fastOmitEmpty struct {
		A int `msgpack:",omitempty"`
	}
	fastNamedOmitEmpty struct {
		A int `msgpack:"a,omitempty"`
	}
	fastAsArray struct {
		_msgpack struct{} `msgpack:",as_array"`
		A        int
	}
	fastAlias struct {
		A int `msgpack:"a,alias:b"`
	}
	fastSpacedTag struct {
		A int `msgpack:" a"`
	}
	fastDuplicate struct {
		A int
		B int `msgpack:"A"`
	}
	fastWithMap struct {
		M map[string]int
	}
	fastWithAny struct {
		V any
	}
	fastWithArray struct {
		A [2]int
	}
	fastWithTime struct {
		T time.Time
	}
	fastWithPtrPtr struct {
		P **int
	}
	fastWithStructSlice struct {
		S []fastInner
	}
	fastWithNestedSlice struct {
		S [][]int
	}
	fastRecursive struct {
		Next *fastRecursive
	}
	fastWithUintptr struct {
		P uintptr
	}
	fastCustom         struct{ A int }
	fastMarshaler      struct{ A int }
	fastPtrUnmarshaler struct{ A int }
	fastText           int
	fastWithText       struct {
		T fastText
	}
	fastBinarySlice []byte
	fastRegistered  struct{ A int }
)

func (fastCustom) EncodeMsgpack(*msgpack.Encoder) error                { return nil }
func (fastMarshaler) MarshalMsgpack() ([]byte, error)                  { return []byte{0xc0}, nil }
func (*fastPtrUnmarshaler) UnmarshalMsgpack([]byte) error              { return nil }
func (fastText) MarshalText() ([]byte, error)                          { return []byte("t"), nil }
func (*fastBinarySlice) UnmarshalBinary(b []byte) error                { return nil }
func encodeRegistered(*msgpack.Encoder, reflect.Value) ([]byte, error) { return []byte{1}, nil }

// v5Bytes is what msgpack encodes v to.
func v5Bytes(t testing.TB, v any) []byte {
	t.Helper()
	b, err := appendMsgpack(nil, v)
	if err != nil {
		t.Fatalf("appendMsgpack(%T) error = %v", v, err)
	}
	return b
}

// sameValue reports whether a and b are deeply equal, counting NaNs with
// the same bits as equal.
func sameValue(t testing.TB, a, b any) bool {
	return reflect.DeepEqual(a, b) || bytes.Equal(v5Bytes(t, a), v5Bytes(t, b))
}

// unicodeString returns a string of n bytes of two-byte runes (and one
// 'a' if n is odd).
func unicodeString(n int) string {
	return strings.Repeat("é", n/2) + strings.Repeat("a", n%2)
}

func fastEncodeTests() []any {
	const maxUint, maxInt = ^uint(0), int(^uint(0) >> 1)
	n, s, b := 42, "héllo", []byte("raw")
	var tests []any
	for _, i := range []int64{0, 1, 127, 128, -1, -32, -33, -128, -129, 255, 256, 32767, 32768, -32768, -32769,
		65535, 65536, math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1,
		math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, math.MinInt64} {
		tests = append(tests,
			&struct {
				I   int
				I8  int8
				I16 int16
				I32 int32
				I64 int64
				U   uint
				U8  uint8
				U16 uint16
				U32 uint32
				U64 uint64
			}{int(i), int8(i), int16(i), int32(i), i, uint(i), uint8(i), uint16(i), uint32(i), uint64(i)},
			int(i), int64(i), uint64(i), uint(i), int32(i), uint16(i),
		)
	}
	for _, l := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		u := unicodeString(l)
		tests = append(tests, u, &u, []byte(u), &struct {
			S  string
			B  []byte
			SS []string
		}{u, []byte(u), []string{u}})
	}
	for _, l := range []int{0, 15, 16, 65535, 65536} {
		tests = append(tests, &struct{ S []uint8 }{make([]uint8, l)}, &struct{ S []int8 }{make([]int8, l)}, make([]string, l))
	}
	tests = append(tests,
		newBenchmarkMessage(), *newBenchmarkMessage(), &benchmarkMessage{}, (*benchmarkMessage)(nil),
		newFastNested(), &fastNested{}, *newFastNested(),
		&fastArgs{A: 7, B: 8}, fastArgs{A: -1}, &fastSmall{A: 1, S: "s"},
		&fastOnePtr{}, &fastOnePtr{P: &fastInner{}}, &fastEmpty{}, fastEmpty{}, &fastUnexported{a: 1, b: "x"},
		&n, &s, &b, (*int)(nil), (*string)(nil), (*[]byte)(nil), []byte(nil), []byte{}, []string(nil), []int(nil), []int{},
		true, false, float32(1.5), float32(math.NaN()), math.Inf(-1), -0.0, maxUint, maxInt, time.Duration(-5),
		&struct{ F32, F64 []float32 }{[]float32{float32(math.Inf(1))}, nil},
		&struct{ P *[]string }{&[]string{"x"}},
		&struct{ M [20]struct{} }{}, // not eligible (array), v5 path
	)
	// Maps with 15, 16 and 65536 fields are built with reflect.
	for _, nf := range []int{15, 16, 70000} {
		fields := make([]reflect.StructField, nf)
		for i := range fields {
			// Some names are 32 bytes or longer: str8 keys.
			fields[i] = reflect.StructField{Name: strings.Repeat("L", i%40) + "F" + fieldSuffix(i), Type: reflect.TypeFor[bool]()}
		}
		tests = append(tests, reflect.New(reflect.StructOf(fields)).Interface())
	}
	return tests
}

// fieldSuffix returns a distinct lower-case suffix for field i.
func fieldSuffix(i int) string {
	var b []byte
	for {
		b = append(b, byte('a'+i%26))
		i /= 26
		if i == 0 {
			return string(b)
		}
	}
}

func TestFastMarshalMatchesV5(t *testing.T) {
	for _, give := range fastEncodeTests() {
		want := v5Bytes(t, give)
		got, err := Msgpack{}.AppendMarshal([]byte("hdr"), give)
		if err != nil {
			t.Fatalf("AppendMarshal(%T) error = %v", give, err)
		}
		if !bytes.Equal(got[3:], want) || string(got[:3]) != "hdr" {
			t.Errorf("AppendMarshal(%T %.60v) = % .40x, want % .40x", give, give, got, want)
		}
	}
}

// TestFastPathTaken checks which values the fast path handles itself.
func TestFastPathTaken(t *testing.T) {
	n := 1
	tests := []struct {
		give any
		want bool
	}{
		{newBenchmarkMessage(), true},
		{*newBenchmarkMessage(), true},
		{newFastNested(), true},
		{&fastArgs{}, true},
		{fastArgs{}, true},
		{&n, true},
		{n, true},
		{"s", true},
		{[]byte{1}, true},
		{(*fastArgs)(nil), true},
		{&fastOnePtr{}, true},
		{fastOnePtr{}, false}, // held in the interface word
		{nil, false},
		{map[string]int{}, false},
		{&fastEmbedded{}, false},
		{&fastOmitEmpty{}, false},
		{&fastNamedOmitEmpty{}, false},
		{&fastAsArray{}, false},
		{&fastAlias{}, false},
		{&fastSpacedTag{}, false},
		{&fastDuplicate{}, false},
		{&fastWithMap{}, false},
		{&fastWithAny{}, false},
		{&fastWithArray{}, false},
		{&fastWithTime{}, false},
		{&fastWithPtrPtr{}, false},
		{&fastWithStructSlice{}, false},
		{&fastWithNestedSlice{}, false},
		{&fastRecursive{}, false},
		{&fastWithUintptr{}, false},
		{&fastCustom{}, false},
		{&fastMarshaler{}, false},
		{&fastPtrUnmarshaler{}, false},
		{&fastWithText{}, false},
		{&fastBinarySlice{}, false},
		{time.Now(), false},
		{&struct{ P ***int }{}, false},
	}
	for _, tt := range tests {
		_, got := fastMarshal(nil, tt.give)
		if got != tt.want {
			t.Errorf("fastMarshal(%T) ok = %v, want %v", tt.give, got, tt.want)
		}
	}
}

// TestFastRegisteredType checks that a type given its own encoder with
// msgpack.RegisterExtEncoder, which the fast path cannot see, is caught by
// the probe and left to msgpack.
func TestFastRegisteredType(t *testing.T) {
	const id = 77
	msgpack.RegisterExtEncoder(id, fastRegistered{}, encodeRegistered)
	t.Cleanup(func() { msgpack.UnregisterExt(id) })
	give := &struct{ R fastRegistered }{}
	if _, ok := fastMarshal(nil, give); ok {
		t.Errorf("fastMarshal(%T) ok = true, want false", give)
	}
	got, err := Msgpack{}.AppendMarshal(nil, give)
	if want := v5Bytes(t, give); err != nil || !bytes.Equal(got, want) {
		t.Errorf("AppendMarshal(%T) = % x, %v; want % x", give, got, err, want)
	}
}

func TestFastUnmarshalMatchesV5(t *testing.T) {
	for _, give := range fastEncodeTests() {
		typ := reflect.TypeOf(give)
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		data := v5Bytes(t, give)
		got, want := reflect.New(typ), reflect.New(typ)
		err := Msgpack{}.Unmarshal(data, got.Interface())
		wantErr := unmarshalMsgpack(data, want.Interface())
		if err != nil || wantErr != nil {
			t.Fatalf("Unmarshal(%T) error = %v, msgpack error = %v", give, err, wantErr)
		}
		if !sameValue(t, got.Interface(), want.Interface()) {
			t.Errorf("Unmarshal(%T) = %.100v, want %.100v", give, got.Elem(), want.Elem())
		}
		if p := fastPlanFor(typ); p.root != nil {
			fresh := reflect.New(typ)
			if !decodeFast(data, p.root, fresh.UnsafePointer()) {
				t.Errorf("decodeFast(%T) = false, want true: msgpack's own encoding must not fall back", give)
			}
		}
	}
}

// fastBody builds a body: a map header for n entries, then raw bytes.
func fastBody(n int, parts ...[]byte) []byte {
	b := appendFastMapLen(nil, n)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func key(s string) []byte { return appendFastString(nil, s) }

// fastBodyTests are bodies that test one decoding rule each, decoded into
// fastNested.
func fastBodyTests() []struct {
	name string
	give []byte
} {
	be16 := func(c byte, n uint16) []byte { return binary.BigEndian.AppendUint16([]byte{c}, n) }
	be32 := func(c byte, n uint32) []byte { return binary.BigEndian.AppendUint32([]byte{c}, n) }
	be64 := func(c byte, n uint64) []byte { return binary.BigEndian.AppendUint64([]byte{c}, n) }
	ints := [][]byte{
		{0x00}, {0x7f}, {0xe0}, {0xff}, {0xc0}, {0xcc, 0xff}, {0xd0, 0x80},
		be16(0xcd, 0xffff), be16(0xd1, 0x8000), be32(0xce, 0xffffffff), be32(0xd2, 0x80000000),
		be64(0xcf, math.MaxUint64), be64(0xd3, 1<<63), be64(0xcf, 1<<40),
		be32(0xca, math.Float32bits(1.5)), be64(0xcb, math.Float64bits(2.5)), // floats: msgpack errors into ints
		{0xc2}, {0xa1, '1'},
	}
	var tests []struct {
		name string
		give []byte
	}
	add := func(name string, give []byte) {
		tests = append(tests, struct {
			name string
			give []byte
		}{name, give})
	}
	for _, f := range []string{"I", "I8", "I16", "I32", "I64", "U", "U8", "U16", "U32", "U64", "F32", "F64", "Level", "Dur"} {
		for _, i := range ints {
			add(f+" "+string(rune('0'+len(i))), fastBody(1, key(f), i))
		}
	}
	for _, v := range [][]byte{{0xc0}, {0xc2}, {0xc3}, {0x01}, {0xa0}} {
		add("bool", fastBody(1, key("Flag"), v))
	}
	strs := [][]byte{{0xc0}, {0xa0}, {0xa2, 'h', 'i'}, {0xd9, 2, 'h', 'i'}, be16(0xda, 0), be32(0xdb, 0),
		{0xc4, 2, 'h', 'i'}, {0xc5, 0, 0}, {0xc6, 0, 0, 0, 1, 'x'}, {0x01}, {0x90}, {0xd4, 1, 1}}
	for _, f := range []string{"Name", "Raw", "r", "PStr", "PBytes"} {
		for _, s := range strs {
			add(f+" str", fastBody(1, key(f), s))
		}
	}
	arrays := [][]byte{{0xc0}, {0x90}, {0x91, 0xa1, 'x'}, {0x92, 0x01, 0xc0}, {0xdc, 0, 1, 0x01}, {0xdd, 0, 0, 0, 1, 0x01},
		{0x91, 0xca, 0, 0, 0, 0}, {0x91, 0xc4, 1, 'b'}, {0x81, 0x01, 0x01}, {0xa1, 'x'}, {0x91, 0x91, 0x01}}
	for _, f := range []string{"Tags", "IDs", "Names", "Flags", "Floats", "Raw"} {
		for _, a := range arrays {
			add(f+" array", fastBody(1, key(f), a))
		}
	}
	structs := [][]byte{{0xc0}, {0x80}, {0x90}, {0x93, 0x01, 0xa0, 0xc0}, fastBody(1, key("A"), []byte{0x05}),
		fastBody(2, key("B"), []byte{0xa1, 'b'}, key("A"), []byte{0x05}), fastBody(1, key("Z"), []byte{0x05}),
		fastBody(1, []byte{0x01}, []byte{0x05}), fastBody(1, key("C"), []byte{0x91, 0xd3, 0, 0, 0, 0, 0, 0, 0, 1})}
	for _, f := range []string{"Inner", "Ptr"} {
		for _, s := range structs {
			add(f+" struct", fastBody(1, key(f), s))
		}
	}
	add("nil body", []byte{0xc0})
	add("empty map", []byte{0x80})
	add("array-encoded", []byte{0x90})
	add("map16", be16(0xde, 0))
	add("map32", append(be32(0xdf, 1), append(key("I"), 1)...))
	add("duplicate keys", fastBody(3, key("I"), []byte{1}, key("Name"), []byte{0xa1, 'a'}, key("I"), []byte{2}))
	add("duplicate ptr", fastBody(3, key("Ptr"), fastBody(1, key("A"), []byte{1}), key("Ptr"), []byte{0xc0}, key("Ptr"), fastBody(1, key("B"), []byte{0xa0})))
	add("out of order", fastBody(2, key("U8"), []byte{1}, key("Name"), []byte{0xa1, 'a'}))
	add("bin key", fastBody(1, []byte{0xc4, 1, 'I'}, []byte{1}))
	add("str8 key", fastBody(1, []byte{0xd9, 1, 'I'}, []byte{1}))
	add("nil key", fastBody(1, []byte{0xc0}, []byte{1}))
	add("int key", fastBody(1, []byte{0x01}, []byte{1}))
	add("skipped field", fastBody(1, key("Skipped"), []byte{0xa1, 'x'}))
	add("hidden field", fastBody(1, key("hidden"), []byte{1}))
	add("case differs", fastBody(1, key("name"), []byte{0xa1, 'x'}))
	for _, u := range [][]byte{{0x01}, {0xc3}, be64(0xcb, 0), {0xa1, 'x'}, {0xc4, 1, 1}, {0x92, 0x80, 0x90},
		fastBody(2, key("x"), []byte{0x90}, []byte{0x01}, fastBody(0)), {0xd4, 1, 1}, {0xc7, 1, 1, 1}, {0xc1},
		append(bytes.Repeat([]byte{0x91}, 62), 0x01), append(bytes.Repeat([]byte{0x91}, 63), 0x01),
		append(bytes.Repeat([]byte{0x91}, 62), 0x90), append(bytes.Repeat([]byte{0x91}, 63), 0x90)} {
		add("unknown field", fastBody(2, key("zz"), u, key("I"), []byte{3}))
	}
	add("trailing", append(fastBody(1, key("I"), []byte{3}), 0x01))
	add("truncated", fastBody(2, key("I"), []byte{3}))
	add("short string", fastBody(1, key("Name"), []byte{0xa5, 'x'}))
	add("array16 bomb", fastBody(1, key("IDs"), be16(0xdc, 0xffff)))
	add("map32 bomb", be32(0xdf, 0xffffffff))
	add("str32 bomb", fastBody(1, key("Name"), be32(0xdb, 0xffffffff)))
	add("empty", nil)
	return tests
}

// filledFastNested is a non-zero target, so that what decoding keeps and
// reuses of a target is compared too.
func filledFastNested() *fastNested {
	v := newFastNested()
	v.Tags = append(make([]string, 0, 8), "old1", "old2")
	v.IDs = append(make([]int32, 0, 8), 7)
	v.Raw = append(make([]byte, 0, 8), 'o')
	return v
}

func TestFastUnmarshalBodies(t *testing.T) {
	for _, tt := range fastBodyTests() {
		for _, target := range []func() *fastNested{func() *fastNested { return new(fastNested) }, filledFastNested} {
			got, want := target(), target()
			err := Msgpack{}.Unmarshal(tt.give, got)
			wantErr := unmarshalMsgpack(tt.give, want)
			if (err == nil) != (wantErr == nil) {
				t.Errorf("%s: Unmarshal(% x) error = %v, msgpack error = %v", tt.name, tt.give, err, wantErr)
				continue
			}
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("%s: Unmarshal(% x) error = %v, want %v", tt.name, tt.give, err, ErrMalformed)
				}
				continue
			}
			if !sameValue(t, got, want) {
				t.Errorf("%s: Unmarshal(% x) = %+v, want %+v", tt.name, tt.give, got, want)
			}
		}
	}
}

// TestFastUnmarshalScalars decodes bodies into pointers to scalars,
// strings and byte slices.
func TestFastUnmarshalScalars(t *testing.T) {
	targets := []func() any{
		func() any { return new(int) }, func() any { return new(int8) }, func() any { return new(uint16) },
		func() any { return new(uint64) }, func() any { return new(float32) }, func() any { return new(float64) },
		func() any { return new(bool) }, func() any { return new(string) }, func() any { return new([]byte) },
		func() any { return &[]byte{1, 2, 3} }, func() any { return new([]string) }, func() any { return &[]string{"a"} },
		func() any { return new([]int) }, func() any { return new(*int) }, func() any { return new(time.Duration) },
		func() any { return new(fastArgs) }, func() any { return new(*fastArgs) },
	}
	bodies := [][]byte{{0x01}, {0xff}, {0xc0}, {0xc3}, {0xa1, 'x'}, {0xc4, 1, 'x'}, {0x90}, {0x91, 0x01},
		{0xca, 0x3f, 0xc0, 0, 0}, {0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}, {0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0},
		{0x82, 0xa1, 'A', 0x01, 0xa1, 'B', 0x02}, {0x01, 0x01}, {}}
	for _, body := range bodies {
		for _, target := range targets {
			got, want := target(), target()
			err := Msgpack{}.Unmarshal(body, got)
			wantErr := unmarshalMsgpack(body, want)
			if (err == nil) != (wantErr == nil) || err == nil && !sameValue(t, got, want) {
				t.Errorf("Unmarshal(% x, %T) = %v, %v; msgpack = %v, %v", body, got, reflect.ValueOf(got).Elem(), err, reflect.ValueOf(want).Elem(), wantErr)
			}
		}
	}
}

// FuzzFastDecode checks that Unmarshal, fast path and fallback together,
// decodes every body exactly as msgpack behind checkMsgpack does: both
// fail, or both succeed with equal values, into fresh and into filled
// targets.
func FuzzFastDecode(f *testing.F) {
	f.Add(v5Bytes(f, newBenchmarkMessage()))
	f.Add(v5Bytes(f, newFastNested()))
	f.Add(v5Bytes(f, &fastNested{}))
	for _, tt := range fastBodyTests() {
		f.Add(tt.give)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		targets := []func() any{
			func() any { return new(benchmarkMessage) },
			func() any { return newBenchmarkMessage() },
			func() any { return new(fastNested) },
			func() any { return filledFastNested() },
			func() any { return new(fastSmall) },
			func() any { return new([]string) },
			func() any { return new(*fastInner) },
		}
		for _, target := range targets {
			got, want := target(), target()
			err := Msgpack{}.Unmarshal(data, got)
			wantErr := unmarshalMsgpack(data, want)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("Unmarshal(% x, %T) error = %v, msgpack error = %v", data, got, err, wantErr)
			}
			if err == nil && !sameValue(t, got, want) {
				t.Fatalf("Unmarshal(% x, %T) = %+v, msgpack = %+v", data, got, got, want)
			}
		}
	})
}

func TestFastAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	msg := newBenchmarkMessage()
	data := v5Bytes(t, msg)
	buf := make([]byte, 0, 2048)
	tests := []struct {
		name string
		f    func()
		want float64
	}{
		{"marshal", func() { _, _ = Msgpack{}.AppendMarshal(buf[:0], msg) }, 0},
		// One for the struct and one chunk for all its short strings.
		{"unmarshal", func() { _ = Msgpack{}.Unmarshal(data, new(benchmarkMessage)) }, 2},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got > tt.want {
			t.Errorf("%s: AllocsPerRun = %v, want <= %v", tt.name, got, tt.want)
		}
	}
}

// BenchmarkMsgpackFast compares the fast path with msgpack on the
// benchmark message.
func BenchmarkMsgpackFast(b *testing.B) {
	msg := newBenchmarkMessage()
	data := v5Bytes(b, msg)
	paths := []struct {
		name      string
		marshal   func([]byte, any) ([]byte, error)
		unmarshal func([]byte, any) error
	}{
		{"fast", Msgpack{}.AppendMarshal, Msgpack{}.Unmarshal},
		{"v5", appendMsgpack, unmarshalMsgpack},
	}
	for _, p := range paths {
		b.Run(p.name+"/marshal", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			buf := make([]byte, 0, 2048)
			for b.Loop() {
				if _, err := p.marshal(buf[:0], msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/unmarshal", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := p.unmarshal(data, new(benchmarkMessage)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/unmarshal-reuse", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			var m benchmarkMessage
			for b.Loop() {
				if err := p.unmarshal(data, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFastStringChunks checks that short strings sharing a chunk keep their
// own contents, across chunk boundaries and next to long strings, and
// that a later decode does not change the strings of an earlier one.
func TestFastStringChunks(t *testing.T) {
	type strs struct {
		A []string
		S string
		L string
	}
	var want strs
	for i := range 100 { // 100 strings of up to 100 bytes: several chunks
		want.A = append(want.A, strings.Repeat(string(rune('a'+i%26)), i+1))
	}
	want.S = "short"
	want.L = strings.Repeat("long", 100) // past maxChunkedString
	type single struct{ S1, S2, S3 string }
	cases := []any{&want, &single{"x", strings.Repeat("y", maxStringChunk), "z"}}
	for _, in := range cases {
		data, err := Msgpack{}.AppendMarshal(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		out := reflect.New(reflect.TypeOf(in).Elem()).Interface()
		if err := (Msgpack{}).Unmarshal(data, out); err != nil {
			t.Fatal(err)
		}
		again := reflect.New(reflect.TypeOf(in).Elem()).Interface()
		if err := (Msgpack{}).Unmarshal(data, again); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(out, in) || !reflect.DeepEqual(again, in) {
			t.Errorf("round trip of %T changed its strings", in)
		}
	}
}

// TestFastStringChunkSizedByLastBody: a body's chunk for short strings is
// sized by what the strings of the last body of its type took, not by the
// rest of the body (which counts every other field too); a body with more
// strings than the last still decodes whole.
func TestFastStringChunkSizedByLastBody(t *testing.T) {
	type rec struct {
		A, B, C string
		N       []int64 // bytes that are not strings
	}
	in := rec{A: strings.Repeat("a", 10), B: strings.Repeat("b", 20), C: strings.Repeat("c", 30), N: make([]int64, 8)}
	data, err := Msgpack{}.AppendMarshal(nil, &in)
	if err != nil {
		t.Fatal(err)
	}
	decode := func(data []byte) rec {
		var out rec
		if err := (Msgpack{}).Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	decode(data) // the first body of the type: no hint yet
	p := fastPlanFor(reflect.TypeFor[rec]())
	if got := p.root.strs.n.Load(); got != 60 {
		t.Fatalf("hint after a body with 60 bytes of strings = %d", got)
	}
	c := strChunks{want: int(p.root.strs.n.Load())}
	c.str([]byte(in.A), len(data)) // the rest of the body is far more than 60
	if got := len(c.free) + len(in.A); got != 60 {
		t.Errorf("chunk of a body after one with 60 bytes of strings = %d bytes, want 60", got)
	}
	// A longer body: more chunks, same strings.
	in.C = strings.Repeat("c", 100)
	data, _ = Msgpack{}.AppendMarshal(nil, &in)
	if out := decode(data); !reflect.DeepEqual(out, in) {
		t.Errorf("decoded %+v, want %+v", out, in)
	}
	if got := p.root.strs.n.Load(); got != 130 {
		t.Errorf("hint after a body with 130 bytes of strings = %d", got)
	}
}
