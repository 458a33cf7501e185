package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// The encode side of the fast path is fuzzed against msgpack: the fuzz
// input picks a Go type (built with reflect.StructOf, so the field kinds,
// names and tags vary as well as the values) and a value of it. The fast
// encoder must write exactly the bytes msgpack writes, and those bytes
// must decode, with msgpack and with Msgpack.Unmarshal, back to the value.

// encLeafTypes are the types encGen picks from before it nests them. The
// first ones are eligible for the fast path; the rest are left to msgpack,
// and they sit in the same structs so that the fast path must refuse the
// whole struct.
var encLeafTypes = []reflect.Type{
	reflect.TypeFor[bool](),
	reflect.TypeFor[int](),
	reflect.TypeFor[int8](),
	reflect.TypeFor[int16](),
	reflect.TypeFor[int32](),
	reflect.TypeFor[int64](),
	reflect.TypeFor[uint](),
	reflect.TypeFor[uint8](),
	reflect.TypeFor[uint16](),
	reflect.TypeFor[uint32](),
	reflect.TypeFor[uint64](),
	reflect.TypeFor[float32](),
	reflect.TypeFor[float64](),
	reflect.TypeFor[string](),
	reflect.TypeFor[[]byte](),
	reflect.TypeFor[time.Duration](),
	reflect.TypeFor[fastName](),
	reflect.TypeFor[fastLevel](),
	reflect.TypeFor[[]string](),
	reflect.TypeFor[[]int](),
	reflect.TypeFor[[]int8](),
	reflect.TypeFor[[]uint16](),
	reflect.TypeFor[[]int64](),
	reflect.TypeFor[[]float32](),
	reflect.TypeFor[[]bool](),
	reflect.TypeFor[[]fastName](),
	reflect.TypeFor[*int](),
	reflect.TypeFor[*string](),
	reflect.TypeFor[*[]byte](),
	reflect.TypeFor[*int64](),
	reflect.TypeFor[*float64](),
	reflect.TypeFor[fastInner](),
	reflect.TypeFor[*fastInner](),
	// Not eligible.
	reflect.TypeFor[time.Time](),
	reflect.TypeFor[map[string]int64](),
	reflect.TypeFor[map[string]string](),
	reflect.TypeFor[map[string]bool](),
	reflect.TypeFor[map[string]any](),
	reflect.TypeFor[any](),
	reflect.TypeFor[[3]int16](),
	reflect.TypeFor[[4]byte](),
	reflect.TypeFor[[][]int](),
	reflect.TypeFor[**int](),
	reflect.TypeFor[uintptr](),
}

// encIntBoundaries are the integers next to every msgpack format change.
var encIntBoundaries = []int64{
	0, 1, -1, 127, 128, -32, -33, -128, -129, 255, 256, -32768, -32769, 32767, 32768,
	65535, 65536, math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1,
	math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64, math.MinInt64,
}

// encFloatBoundaries are floats whose encoding is worth seeing.
var encFloatBoundaries = []float64{
	0, math.Copysign(0, -1), 1.5, -2.25, math.NaN(), math.Inf(1), math.Inf(-1),
	math.MaxFloat64, math.SmallestNonzeroFloat64, math.MaxFloat32, math.SmallestNonzeroFloat32, 1e300,
}

// encLenBoundaries are lengths next to every str, bin, array and map
// format change.
var encLenBoundaries = []int{0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536}

// encMaxDepth bounds how deeply encGen nests structs, slices, maps and
// pointers.
const encMaxDepth = 3

// encGen turns fuzz input into a type (from shape) and a value (from data).
// Input that runs out reads as zeros.
type encGen struct {
	shape, data []byte
	// budget is how many more values, string bytes and slice elements
	// the value may have, so that one input stays fast.
	budget int
}

func take(b *[]byte) byte {
	if len(*b) == 0 {
		return 0
	}
	c := (*b)[0]
	*b = (*b)[1:]
	return c
}

func (g *encGen) shapeByte() byte { return take(&g.shape) }
func (g *encGen) dataByte() byte  { return take(&g.data) }

// typ returns a type: a leaf, or a struct, pointer, slice, map or array
// of types built the same way.
func (g *encGen) typ(depth int) reflect.Type {
	c := int(g.shapeByte())
	if c < len(encLeafTypes) || depth >= encMaxDepth {
		return encLeafTypes[c%len(encLeafTypes)]
	}
	switch c % 6 {
	case 0, 1:
		return g.structType(depth + 1)
	case 2:
		return reflect.PointerTo(g.structType(depth + 1))
	case 3:
		return reflect.SliceOf(g.typ(depth + 1))
	case 4:
		return reflect.MapOf(reflect.TypeFor[string](), g.typ(depth+1))
	default:
		return reflect.ArrayOf(2, g.typ(depth+1))
	}
}

// structType returns a struct of up to 19 fields (16 and more need a
// map16 header), with names and tags chosen by shape. Names are distinct,
// as msgpack does not round-trip structs whose names collide.
func (g *encGen) structType(depth int) reflect.Type {
	n := int(g.shapeByte() % 20)
	fields := make([]reflect.StructField, n)
	for i := range fields {
		f := reflect.StructField{Name: "F" + strconv.Itoa(i), Type: g.typ(depth)}
		switch g.shapeByte() % 10 {
		case 3:
			f.Tag = reflect.StructTag(`msgpack:"r` + strconv.Itoa(i) + `"`)
		case 4: // a key of 32 bytes or more: str8
			f.Tag = reflect.StructTag(`msgpack:"` + strings.Repeat("k", 31+i) + `"`)
		case 5:
			f.Tag = `msgpack:"-"`
		case 6:
			f.Tag = reflect.StructTag(`msgpack:"o` + strconv.Itoa(i) + `,omitempty"`)
		case 7:
			f.Tag = reflect.StructTag(`msgpack:"é` + strconv.Itoa(i) + `"`)
		case 8:
			f.Tag = reflect.StructTag(`msgpack:" s` + strconv.Itoa(i) + `"`)
		case 9:
			f.Tag = reflect.StructTag(`json:"j` + strconv.Itoa(i) + `"`)
		}
		fields[i] = f
	}
	return reflect.StructOf(fields)
}

// int64 returns a boundary integer or eight bytes of data.
func (g *encGen) int64() int64 {
	c := g.dataByte()
	if c < 0xc0 {
		return encIntBoundaries[int(c)%len(encIntBoundaries)]
	}
	var b [8]byte
	for i := range b {
		b[i] = g.dataByte()
	}
	return int64(binary.BigEndian.Uint64(b[:]))
}

// float64 returns a boundary float or eight bytes of data.
func (g *encGen) float64() float64 {
	c := g.dataByte()
	if c < 0xc0 {
		return encFloatBoundaries[int(c)%len(encFloatBoundaries)]
	}
	var b [8]byte
	for i := range b {
		b[i] = g.dataByte()
	}
	return math.Float64frombits(binary.BigEndian.Uint64(b[:]))
}

// length returns a boundary length (if the budget allows) or a short one.
func (g *encGen) length() int {
	c := g.dataByte()
	n := int(c % 6)
	if c >= 0xc0 {
		n = encLenBoundaries[int(c)%len(encLenBoundaries)]
	}
	if n > g.budget {
		n = int(c % 4)
	}
	g.budget -= n
	return n
}

// string returns a string of a boundary length made of a repeated
// (possibly invalid UTF-8) pattern, or of bytes of data.
func (g *encGen) string() string {
	c := g.dataByte()
	if c >= 0x80 {
		n := g.length()
		pattern := []string{"a", "é", "\xff", "\x00"}[c%4]
		return strings.Repeat(pattern, n)[:n]
	}
	b := make([]byte, c%40)
	for i := range b {
		b[i] = g.dataByte()
	}
	return string(b)
}

// fill sets v, which is settable and zero, to a value chosen by data.
// Once the budget is spent it leaves values zero.
func (g *encGen) fill(v reflect.Value) {
	if g.budget <= 0 {
		return
	}
	g.budget--
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(g.dataByte()&1 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(g.int64()) // truncated to the width
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(uint64(g.int64()))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(g.float64())
	case reflect.String:
		v.SetString(g.string())
	case reflect.Slice:
		if g.dataByte()%5 == 0 {
			return // nil
		}
		n := g.length()
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			g.fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			g.fill(v.Index(i))
		}
	case reflect.Map:
		c := g.dataByte()
		if c%5 == 0 {
			return // nil
		}
		m := reflect.MakeMap(v.Type())
		for range int(c % 4) {
			e := reflect.New(v.Type().Elem()).Elem()
			g.fill(e)
			m.SetMapIndex(reflect.ValueOf(g.string()), e)
		}
		v.Set(m)
	case reflect.Pointer:
		if g.dataByte()%4 == 0 {
			return // nil
		}
		p := reflect.New(v.Type().Elem())
		g.fill(p.Elem())
		v.Set(p)
	case reflect.Interface:
		// Only values that msgpack decodes into an any as the same type.
		switch g.dataByte() % 6 {
		case 1:
			v.Set(reflect.ValueOf(g.int64()))
		case 2:
			v.Set(reflect.ValueOf(g.string()))
		case 3:
			v.Set(reflect.ValueOf(g.dataByte()&1 == 1))
		case 4:
			v.Set(reflect.ValueOf(g.float64()))
		case 5:
			v.Set(reflect.ValueOf([]byte(g.string())))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			t := time.Unix(g.int64()%(1<<40), int64(g.int64()%1e9))
			if g.dataByte()&1 == 1 {
				t = t.In(time.FixedZone("X", 3600))
			}
			v.Set(reflect.ValueOf(t))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				g.fill(v.Field(i))
			}
		}
	}
}

// value returns a value of a type chosen by shape, as AppendMarshal would
// be given it: a pointer to it, the value itself, or a nil pointer.
func (g *encGen) value() any {
	t := g.typ(0)
	p := reflect.New(t)
	g.fill(p.Elem())
	switch g.shapeByte() % 4 {
	case 1:
		return p.Elem().Interface()
	case 2:
		return reflect.Zero(p.Type()).Interface()
	}
	return p.Interface()
}

// sameEncoded returns an error naming the first place where got, decoded
// from the encoding of want, differs from it. Fields that msgpack does not
// encode are skipped, floats are compared by their bits (NaN included),
// times with Equal (msgpack keeps the instant, not the zone).
func sameEncoded(got, want reflect.Value, path string) error {
	if got.Type() != want.Type() {
		return fmt.Errorf("%s: type %v, want %v", path, got.Type(), want.Type())
	}
	switch want.Kind() {
	case reflect.Float32, reflect.Float64:
		if math.Float64bits(got.Float()) != math.Float64bits(want.Float()) {
			return fmt.Errorf("%s: %v, want %v", path, got.Float(), want.Float())
		}
	case reflect.Pointer, reflect.Interface:
		if encodesNil(got) || encodesNil(want) {
			if encodesNil(got) != encodesNil(want) {
				return fmt.Errorf("%s: nil is %v, want %v", path, encodesNil(got), encodesNil(want))
			}
			return nil
		}
		return sameEncoded(got.Elem(), want.Elem(), path+"*")
	case reflect.Slice, reflect.Map:
		if got.IsNil() != want.IsNil() || got.Len() != want.Len() {
			return fmt.Errorf("%s: nil %v len %d, want nil %v len %d", path, got.IsNil(), got.Len(), want.IsNil(), want.Len())
		}
		if want.Kind() == reflect.Map {
			for it := want.MapRange(); it.Next(); {
				g := got.MapIndex(it.Key())
				if !g.IsValid() {
					return fmt.Errorf("%s: key %q missing", path, it.Key())
				}
				if err := sameEncoded(g, it.Value(), fmt.Sprintf("%s[%q]", path, it.Key())); err != nil {
					return err
				}
			}
			return nil
		}
		fallthrough
	case reflect.Array:
		for i := range want.Len() {
			if err := sameEncoded(got.Index(i), want.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		if want.Type() == reflect.TypeFor[time.Time]() {
			if g, w := got.Interface().(time.Time), want.Interface().(time.Time); !g.Equal(w) {
				return fmt.Errorf("%s: %v, want %v", path, g, w)
			}
			return nil
		}
		for i := range want.NumField() {
			f := want.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("msgpack") == "-" {
				continue
			}
			if omitted(f, want.Field(i)) {
				if !got.Field(i).IsZero() {
					return fmt.Errorf("%s.%s: %v, want it omitted", path, f.Name, got.Field(i))
				}
				continue
			}
			if err := sameEncoded(got.Field(i), want.Field(i), path+"."+f.Name); err != nil {
				return err
			}
		}
	default:
		if !got.Equal(want) {
			return fmt.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	return nil
}

// encodesNil reports whether v is a nil pointer or interface, or a pointer
// to one or to a nil slice or map: msgpack writes nil for all of them, so
// a **int that points to a nil *int comes back as a nil **int, and a
// *[]byte that points to a nil []byte as a nil *[]byte.
func encodesNil(v reflect.Value) bool {
	if v.Kind() == reflect.Interface {
		return v.IsNil()
	}
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
		return v.IsNil()
	}
	return false
}

// omitted reports whether msgpack leaves out field f of value v: f is
// tagged omitempty and v is empty by msgpack's rules (types.go
// isEmptyValue, for the types encGen builds).
func omitted(f reflect.StructField, v reflect.Value) bool {
	return strings.Contains(f.Tag.Get("msgpack"), ",omitempty") && msgpackEmpty(v)
}

func msgpackEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Interface:
		return v.IsNil() || msgpackEmpty(v.Elem())
	case reflect.Pointer:
		return v.IsNil()
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0 // -0 too
	case reflect.Struct:
		if t, ok := v.Interface().(time.Time); ok {
			return t.IsZero()
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() && f.Tag.Get("msgpack") != "-" && !omitted(f, v.Field(i)) {
				return false
			}
		}
		return true
	}
	return v.IsZero()
}

// checkEncode checks Msgpack.AppendMarshal on v against msgpack.
func checkEncode(t *testing.T, v any) {
	want, wantErr := appendMsgpack(nil, v)
	got, err := Msgpack{}.AppendMarshal([]byte("hdr"), v)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("AppendMarshal(%T) error = %v, msgpack error = %v", v, err, wantErr)
	}
	if err != nil {
		if string(got) != "hdr" {
			t.Fatalf("AppendMarshal(%T) = % .40x after an error, want the prefix alone", v, got)
		}
		return
	}
	if string(got[:3]) != "hdr" {
		t.Fatalf("AppendMarshal(%T) overwrote the prefix: % .40x", v, got)
	}
	got = got[3:]
	// Where the fast path encodes, it must write msgpack's bytes. Where it
	// does not, AppendMarshal is msgpack, whose map order varies per call.
	if fast, ok := fastMarshal(nil, v); ok && !bytes.Equal(fast, want) {
		t.Fatalf("fast path encodes %T %+.80v as\n% .80x\nmsgpack as\n% .80x", v, v, fast, want)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		if !bytes.Equal(got, []byte{0xc0}) {
			t.Fatalf("AppendMarshal(%T(nil)) = % x, want c0", v, got)
		}
		return
	}
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	viaV5 := reflect.New(rv.Type())
	// Not msgpack.Unmarshal: its preallocation starts a goroutine per type.
	if err := msgpack.NewDecoder(bytes.NewReader(got)).Decode(viaV5.Interface()); err != nil {
		t.Fatalf("msgpack cannot decode AppendMarshal(%T) = % .80x: %v", v, got, err)
	}
	if err := sameEncoded(viaV5.Elem(), rv, "v"); err != nil {
		t.Fatalf("AppendMarshal(%T) = % .80x decodes with msgpack to another value: %v", v, got, err)
	}
	viaCodec := reflect.New(rv.Type())
	if err := (Msgpack{}).Unmarshal(got, viaCodec.Interface()); err != nil {
		t.Fatalf("Unmarshal(AppendMarshal(%T) = % .80x) error = %v", v, got, err)
	}
	if err := sameEncoded(viaCodec.Elem(), rv, "v"); err != nil {
		t.Fatalf("Unmarshal(AppendMarshal(%T) = % .80x) is another value: %v", v, got, err)
	}
}

// encSeed builds a shape that makes a struct of the given leaf types
// (indexes into encLeafTypes), untagged.
func encSeed(leaves ...int) []byte {
	shape := []byte{byte(len(encLeafTypes)), byte(len(leaves))} // c%6 == 0 or 1: struct
	if shape[0]%6 > 1 {
		shape[0] += 6 - shape[0]%6
	}
	for _, l := range leaves {
		shape = append(shape, byte(l), 0)
	}
	return shape
}

func FuzzFastEncode(f *testing.F) {
	allEligible := make([]int, 0, len(encLeafTypes))
	for i, lt := range encLeafTypes {
		if lt == reflect.TypeFor[time.Time]() {
			break
		}
		allEligible = append(allEligible, i)
	}
	// Every integer boundary, in every integer field, with each nesting.
	for i := range encIntBoundaries {
		data := bytes.Repeat([]byte{byte(i)}, 64)
		f.Add(encSeed(allEligible[:19]...), data)
		f.Add([]byte{byte(i % len(encLeafTypes))}, data)
		f.Add([]byte{byte(i % len(encLeafTypes)), 1}, data)
	}
	for i := range encFloatBoundaries {
		f.Add(encSeed(11, 12, 23), bytes.Repeat([]byte{byte(i)}, 32))
	}
	for i := range encLenBoundaries {
		c := byte(0xc0 + i)
		f.Add(encSeed(13, 14, 18, 19), bytes.Repeat([]byte{0x80, c, 1, c}, 4))
	}
	f.Add(encSeed(allEligible...), []byte{})
	f.Add(encSeed(allEligible...), bytes.Repeat([]byte{1}, 200))
	f.Add(encSeed(len(encLeafTypes)-12, len(encLeafTypes)-1, 0), bytes.Repeat([]byte{3}, 100))
	f.Fuzz(func(t *testing.T, shape, data []byte) {
		g := &encGen{shape: shape, data: data, budget: 1 << 17}
		checkEncode(t, g.value())
	})
}

// TestFastEncodeValues runs the fuzz check on hand-picked values, so that
// it runs on every `go test` whatever the seed corpus holds.
func TestFastEncodeValues(t *testing.T) {
	for _, v := range fastEncodeTests() {
		checkEncode(t, v)
	}
	for _, v := range []any{
		&struct{ P uintptr }{P: 1}, // msgpack panics on uintptr
		&struct{ T time.Time }{},   // zero time
		&struct{ M map[string]any }{M: map[string]any{"a": int64(-1), "b": "x", "c": nil}},
		struct{}{}, &struct{}{},
		&struct{ D time.Duration }{D: -time.Nanosecond},
	} {
		checkEncode(t, v)
	}
}
