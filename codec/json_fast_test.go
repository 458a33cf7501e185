package codec

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The JSON fast path is checked against encoding/json itself: every value
// must encode to the same bytes (or fail where it fails), and every body
// must decode to the same value (or fail with the same error where it
// fails), from the same starting value.

type jsonInner struct {
	X int
	Y string `json:"y"`
	Z []float64
}

type jsonNamedString string

type jsonNamedKey string

type jsonTagged struct {
	A        string         `json:"a"`
	B        int            `json:"b,omitempty"`
	C        *int           `json:",omitempty"`
	D        []int          `json:"d,omitempty"`
	E        string         `json:"-"`
	F        string         `json:"-,"`
	G        float64        `json:"g,omitempty"`
	H        map[string]int `json:"h,omitempty"`
	I        bool           `json:"i,omitempty"`
	HTML     string         `json:"<&>"`
	BadTag   int            `json:"a\"b"`
	Spaced   int            `json:"with space,unknownopt"`
	private  int
	U8       uint8
	U16      uint16
	U32      uint32
	U64      uint64
	U        uint
	I8       int8
	I16      int16
	I64      int64
	F32      float32
	K        int
	S        string
	Bytes    []byte
	Ptr      *jsonInner
	Inner    jsonInner
	Slice    []jsonInner
	PtrSlice []*jsonInner
	Map      map[string]jsonInner
	MapPtr   map[jsonNamedKey]*int
	Nested   [][]string
	Named    jsonNamedString
	Empty    struct{}
	OmitPtr  *jsonInner        `json:",omitempty"`
	OmitF32  float32           `json:",omitempty"`
	OmitMap  map[string]string `json:",omitempty"`
	OmitByte []byte            `json:",omitempty"`
}

// Types the fast path must leave to encoding/json.
type (
	jsonEmbedded struct {
		jsonInner
		Extra int
	}
	jsonTime      struct{ T time.Time }
	jsonAnyField  struct{ V any }
	jsonNumber    struct{ N json.Number }
	jsonStringOpt struct {
		N int `json:",string"`
	}
	jsonOmitZero struct {
		N int `json:",omitzero"`
	}
	jsonDup struct {
		A int
		B int `json:"A"`
	}
	jsonRecursive struct {
		Next *jsonRecursive
		V    int
	}
	jsonArray  struct{ A [3]int }
	jsonIntMap struct{ M map[int]string }
	jsonPtrPtr struct{ P **int }
	jsonCustom struct{ N int }
	jsonHolder struct {
		C jsonCustom
		P jsonPtrCustom
	}
	jsonPtrCustom struct{ N int }
	jsonByteElem  byte
	jsonByteElems struct{ B []jsonTextByte }
	jsonTextByte  byte
)

func (c jsonCustom) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf(`"c%d"`, c.N)), nil }
func (c *jsonPtrCustom) UnmarshalJSON(b []byte) error {
	c.N = len(b)
	return nil
}
func (b jsonTextByte) MarshalText() ([]byte, error) { return []byte{'t', byte(b)}, nil }

func TestJSONFastPathTaken(t *testing.T) {
	eligible := []reflect.Type{
		reflect.TypeFor[benchmarkMessage](),
		reflect.TypeFor[jsonTagged](),
		reflect.TypeFor[jsonInner](),
		reflect.TypeFor[int](),
		reflect.TypeFor[string](),
		reflect.TypeFor[[]byte](),
		reflect.TypeFor[[]string](),
		reflect.TypeFor[map[string]int](),
		reflect.TypeFor[*jsonInner](),
		reflect.TypeFor[[]jsonByteElem](),
	}
	for _, typ := range eligible {
		if jsonPlanFor(typ).root == nil {
			t.Errorf("%v: not on the fast path, want it on", typ)
		}
	}
	ineligible := []reflect.Type{
		reflect.TypeFor[jsonEmbedded](),
		reflect.TypeFor[jsonTime](),
		reflect.TypeFor[time.Time](),
		reflect.TypeFor[jsonAnyField](),
		reflect.TypeFor[jsonNumber](),
		reflect.TypeFor[json.Number](),
		reflect.TypeFor[jsonStringOpt](),
		reflect.TypeFor[jsonOmitZero](),
		reflect.TypeFor[jsonDup](),
		reflect.TypeFor[jsonRecursive](),
		reflect.TypeFor[jsonArray](),
		reflect.TypeFor[jsonIntMap](),
		reflect.TypeFor[jsonPtrPtr](),
		reflect.TypeFor[jsonCustom](),
		reflect.TypeFor[jsonHolder](),
		reflect.TypeFor[jsonPtrCustom](),
		reflect.TypeFor[jsonByteElems](),
		reflect.TypeFor[json.RawMessage](),
		reflect.TypeFor[uintptr](),
		reflect.TypeFor[any](),
	}
	for _, typ := range ineligible {
		if jsonPlanFor(typ).root != nil {
			t.Errorf("%v: on the fast path, want encoding/json", typ)
		}
	}
	// The benchmark message takes the fast path both ways.
	msg := newBenchmarkMessage()
	data, ok := jsonMarshalFast(nil, msg)
	if !ok {
		t.Fatal("jsonMarshalFast(benchmark message) did not take the fast path")
	}
	var got benchmarkMessage
	if !jsonUnmarshalFast(data, &got) {
		t.Fatal("jsonUnmarshalFast(benchmark message) did not take the fast path")
	}
}

// jsonTrickyStrings are strings whose encoding has corner cases.
func jsonTrickyStrings() []string {
	return []string{
		"", "plain", "许多往事在眼前一幕一幕，变的那麼模糊",
		"<script>alert('&amp;')</script>", "\x00\x01\x1f\x7f", "\b\f\n\r\t\"\\/",
		"\xff\xfe invalid", "a\u2028b\u2029c", "\u2027\u202a", "\xed\xa0\x80 surrogate",
		"\xe0\x80\x80 overlong", "\xe0\xa0\x80", "\xf0\x9f\x98\x80 emoji", "cut \xe4\xb8", "\xc2",
		"\xc3\xa9t\xc3\xa9", "\xf4\x90\x80\x80 too big", "\uFFFD", "é\x80",
		// Long ASCII runs with a byte to escape at every offset of an
		// eight-byte word.
		"abcdefghabcdefgh<abcdefgh>abcdefg&abcdefgh\"abcdefgh\\abcdefgh\x1fabcdefgh\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f!",
		"0123456701234567012345670123456\n01234567é01234567\u2028",
	}
}

func int32Ptr(n int) *int { return &n }

func filledJSONTagged() *jsonTagged {
	return &jsonTagged{
		A: "a<b>", B: -3, C: int32Ptr(7), D: []int{1, 2}, E: "hidden", F: "dash", G: 1.5,
		H: map[string]int{"z": 1, "a": 2, "<": 3, "é": 4, "": 5}, I: true, HTML: "&", BadTag: 9,
		Spaced: 10, private: 11, U8: 255, U16: 65535, U32: math.MaxUint32, U64: math.MaxUint64,
		U: 12, I8: -128, I16: -32768, I64: math.MinInt64, F32: 3.25, K: 13, S: "s",
		Bytes: []byte{0, 1, 2, 250}, Ptr: &jsonInner{X: 1, Y: "y", Z: []float64{0.1, -2}},
		Inner:    jsonInner{X: 2, Z: []float64{}},
		Slice:    []jsonInner{{X: 3}, {Y: "\u2028"}},
		PtrSlice: []*jsonInner{nil, {X: 4}},
		Map:      map[string]jsonInner{"b": {X: 5}, "a": {Y: "x"}},
		MapPtr:   map[jsonNamedKey]*int{"k": int32Ptr(1), "n": nil},
		Nested:   [][]string{nil, {}, {"a", "b"}},
		Named:    "named",
		OmitPtr:  &jsonInner{}, OmitF32: -1, OmitMap: map[string]string{"x": "y"}, OmitByte: []byte{1},
	}
}

// jsonMarshalValues are values whose encodings must match encoding/json's.
func jsonMarshalValues() []any {
	vals := []any{
		newBenchmarkMessage(), *newBenchmarkMessage(), &benchmarkMessage{}, (*benchmarkMessage)(nil),
		filledJSONTagged(), &jsonTagged{}, *filledJSONTagged(),
		&jsonTagged{D: []int{}, H: map[string]int{}, Bytes: []byte{}, OmitByte: []byte{}, OmitMap: map[string]string{}},
		&jsonTagged{G: math.Copysign(0, -1), OmitF32: float32(math.Copysign(0, -1))},
		&jsonEmbedded{jsonInner: jsonInner{X: 1}, Extra: 2}, &jsonTime{T: time.Unix(1, 2).UTC()},
		&jsonAnyField{V: []any{1, "a"}}, &jsonNumber{N: "12.5"}, &jsonStringOpt{N: 3},
		&jsonOmitZero{}, &jsonDup{A: 1, B: 2}, &jsonRecursive{Next: &jsonRecursive{V: 1}},
		&jsonArray{A: [3]int{1, 2, 3}}, &jsonIntMap{M: map[int]string{2: "b", 10: "a"}},
		&jsonHolder{C: jsonCustom{N: 1}}, jsonByteElems{B: []jsonTextByte{'a'}},
		[]jsonByteElem{1, 2}, []byte(nil), []byte("hi"), []string{"a", "<"}, []int(nil),
		map[string]int{"b": 1, "a": 2}, map[string]int(nil), 5, "<str>", true, 1.5, float32(0.1),
		int8(-5), uint16(7), (*int)(nil), new(string), []*int{nil, int32Ptr(3)}, [][]byte{nil, {}},
		nil, make(chan int), func() {},
		// Errors: encoding/json refuses NaN and infinities.
		math.NaN(), &jsonInner{Z: []float64{math.Inf(1)}}, []float32{float32(math.Inf(-1))},
		map[string]float64{"a": math.NaN()},
	}
	for _, s := range jsonTrickyStrings() {
		vals = append(vals, s, &jsonInner{Y: s}, map[string]string{s: s})
	}
	for _, f := range []float64{
		0, 1, -1, 0.1, 1e-6, 1e-7, 9.999999e-7, 1e20, 1e21, 123456789e13, 1e-300, 5e-324,
		math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64, 1.0000000000000002,
		float64(math.MaxFloat32), 3.4e38, 1e38, 0.000001234,
	} {
		vals = append(vals, f, float32(f), &jsonInner{Z: []float64{f}}, &jsonTagged{G: f, F32: float32(f)})
	}
	for _, n := range []int64{0, 1, -1, math.MaxInt8, math.MinInt8, math.MaxInt16, math.MinInt32, math.MaxInt64, math.MinInt64} {
		vals = append(vals, n, int8(n), int16(n), int32(n), uint8(n), uint32(n), uint64(n), uint(n))
	}
	return vals
}

// checkJSONMarshal compares AppendMarshal of v with json.Marshal of v.
func checkJSONMarshal(t testing.TB, v any) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	dst := []byte("prefix")
	got, err := JSON{}.AppendMarshal(dst, v)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("AppendMarshal(%#v) error = %v, encoding/json's = %v", v, err, wantErr)
	}
	if err != nil {
		if string(got) != "prefix" {
			t.Fatalf("AppendMarshal(%#v) failed with %q, want dst unchanged", v, got)
		}
		return
	}
	if string(got) != "prefix"+string(want) {
		t.Fatalf("AppendMarshal(%#v)\n got %s\nwant prefix%s", v, got, want)
	}
}

func TestJSONMarshalMatchesStdlib(t *testing.T) {
	for i, v := range jsonMarshalValues() {
		t.Run(fmt.Sprintf("%d_%T", i, v), func(t *testing.T) {
			checkJSONMarshal(t, v)
		})
	}
}

// jsonTarget builds the value a body is decoded into, afresh each time.
type jsonTarget struct {
	name string
	new  func() any
}

func jsonTargets() []jsonTarget {
	return []jsonTarget{
		{"benchmark", func() any { return new(benchmarkMessage) }},
		{"benchmark-filled", func() any { return newBenchmarkMessage() }},
		{"tagged", func() any { return new(jsonTagged) }},
		{"tagged-filled", func() any {
			v := filledJSONTagged()
			// Old arrays with room: decoding writes into them in place.
			v.D = make([]int, 1, 8)
			v.Slice = append(make([]jsonInner, 0, 4), jsonInner{X: 1, Y: "old"}, jsonInner{X: 2, Z: []float64{9}})[:1]
			v.PtrSlice = append(make([]*jsonInner, 0, 4), &jsonInner{X: 1}, &jsonInner{Y: "stale"})[:0]
			return v
		}},
		{"inner", func() any { return &jsonInner{X: 5, Y: "keep", Z: []float64{1, 2, 3}} }},
		{"map", func() any { return &map[string]int{"old": 1} }},
		{"map-nil", func() any { return new(map[string]*jsonInner) }},
		{"slice", func() any { s := make([]int, 2, 3); return &s }},
		{"bytes", func() any { return new([]byte) }},
		{"int", func() any { n := 7; return &n }},
		{"uint8", func() any { return new(uint8) }},
		{"float32", func() any { return new(float32) }},
		{"string", func() any { return new(string) }},
		{"ptr", func() any { p := &jsonInner{X: 1}; return &p }},
		{"embedded", func() any { return new(jsonEmbedded) }},
		{"custom", func() any { return new(jsonHolder) }},
	}
}

// jsonBodies are bodies every target decodes, with encoding/json's result.
func jsonBodies() []string {
	bodies := []string{
		`{}`, ` { } `, `null`, `[]`, `""`, `0`, `-0`, `1`, `-1`, `255`, `256`, `-129`, `1.5`, `1e2`,
		`1E+2`, `3.4e38`, `3.5e38`, `1e400`, `-1e-400`, `18446744073709551615`, `18446744073709551616`,
		`-9223372036854775808`, `-9223372036854775809`, `true`, `false`, `"x"`, `"AQID"`, `"!!"`,
		`[1,2,3]`, `[1,"x",3]`, `[null,2]`, `[[]]`, `{"old":null,"new":2}`, `{"a":1,"a":2}`,
		`{"X":1,"y":"a","Z":[1.5,-2e-3]}`, `{"x":1,"Y":"b","z":null}`, `{"X":"1"}`, `{"X":1.0}`,
		`{"X":1,"unknown":{"a":[1,{"b":"\"}"}]},"Y":"after"}`, `{"Z":[]}`, `{"Z":{}}`,
		`{"a":"A","b":5,"C":3,"d":[4,5,6],"E":"e","-":"dash","g":2.5,"h":{"k":1},"i":true}`,
		`{"<&>":"html","a\"b":1,"BadTag":2,"with space":3,"private":4}`,
		`{"U8":255,"U16":65536}`, `{"U8":-1}`, `{"U64":-0}`, `{"I8":-128,"I16":32768}`,
		`{"F32":3.4e39}`, `{"F32":1e-50}`, `{"Bytes":"AAEC+g=="}`, `{"Bytes":"AAEC\n+g=="}`,
		`{"Bytes":"AQ\u0049D"}`, `{"Bytes":[1,2]}`, `{"Bytes":null}`, `{"Bytes":"@@"}`,
		`{"Ptr":null}`, `{"Ptr":{"X":9}}`, `{"Ptr":{"X":"bad"}}`, `{"Ptr":[]}`,
		`{"Inner":{"X":1},"Inner":{"Y":"2"}}`, `{"Slice":[{"X":7},{"Y":"b"},{}]}`,
		`{"Slice":[{"Z":[1]}]}`, `{"Slice":[]}`, `{"Slice":null}`, `{"PtrSlice":[null,{"X":1},{}]}`,
		`{"PtrSlice":[{"Y":"1"},{"Y":"2"}]}`, `{"Map":{"a":{"X":1},"b":null}}`, `{"MapPtr":{"k":null,"j":3}}`,
		`{"Nested":[["a"],null,[]]}`, `{"Named":"n"}`, `{"Empty":{"x":1}}`, `{"Empty":[]}`,
		`{"K":1}`, `{"k":2}`, `{"\u212a":3}`, `{"ſ":"long s"}`, `{"\u017f":"escaped long s"}`,
		`{"\u0058":5}`, `{"FIELD1":"upper","field9":"lower","fIeLd18":"mixed"}`,
		`{"Field1":"\u00e9\ud83d\ude00\ud800\udc00","Field9":"\ud800","Field18":"\udc00\ud800x"}`,
		`{"Field1":"\t\"\\\/\b\f\n\r","Field9":"\u0000","Field4":"\ud83d\u0041"}`,
		"{\"Field1\":\"\xff\xfe\",\"Field9\":\"a\xe4\xb8\",\"Field18\":\"\xed\xa0\x80\"}",
		"{\"Field1\":\"\xe5\x9c\xa8\u2028\xc3\xa9\"}",
		`{"Field5":[1,2,18446744073709551615]}`, `{"Field5":[-1]}`, `{"Field2":2147483648}`,
		`{"Field22":9223372036854775807,"Field80":false,"Field81":null}`, `{"Field80":"true"}`,
		`{"Field1":1}`, `{"Field1":null,"Field2":null,"Field5":null}`, `{"C":{"N":1},"P":[1,2]}`,
		`{"jsonInner":{"X":1},"X":2,"Extra":3}`,
		// Syntax errors: the target stays as it was.
		``, ` `, `{`, `{"a"`, `{"a":}`, `{"a":1,}`, `[1,]`, `{"X":1}x`, `{"X":1}}`, `01`, `1.`, `-`,
		`.5`, `1e`, `+1`, `nul`, `tru`, `"\x"`, `"\u12"`, "\"a\x01\"", `{"X":1 "Y":2}`, `{X:1}`,
		"\xef\xbb\xbf{}", `{"Field1":"ok","Field9":`, `{"Field1":"ok"` + strings.Repeat(" ", 3),
		`{"X":1}` + "\n\t\r ", `[1] [2]`, `{"X":1,"X":"bad"}`,
		// Syntax errors after values the fast path may have stored.
		`{"X":1,"u":[1,],"Y":"a"}`, `{"X":1,"Y":"a",}`, `{"X":1,"Y":"a"`, `{"X":1,"Y":"a"}}`,
		`{"X":01}`, `{"X":-}`, `{"X":1,"Z":[1.5,.5]}`, `{"Z":[-inf]}`, `{"Z":[NaN]}`, `{"Z":[0x10]}`,
		`{"X":1,"Y":tru}`, `{"I":nul}`, `{"i":true,"I":falsey}`, `{"X":1 "Y":"a"}`, `{"X"=1}`,
		`{"Field1":"a","Field5":[1,2,]}`, `{"Field1":"a","Field80":t}`, `{"Field1":"a","Field2":1e}`,
		`{"Field1":"a","Field22":1.}`, `{"Field1":"a","Field9":"b\q"}`, "{\"Field1\":\"a\",\"Field9\":\"\x01\"}",
		`{"Field1":"a","unknown":{"a":1,}}`, `{"Field1":"a","unknown":{"a"}}`, `{"Field1":"a","unknown":[1 2]}`,
		`{"Map":{"a":{"X":1}},"Map":{"b"}}`, `{"Slice":[{"X":1}],"Slice":[{"X":2},]}`,
		`{"Ptr":{"X":1},"Ptr":{"X":2,}}`, `{"Bytes":"AQID","H":{"a":1,"b":}}`,
	}
	// Deep nesting, beyond what the fast path's check takes.
	deep := strings.Repeat("[", 300) + strings.Repeat("]", 300)
	bodies = append(bodies, `{"unknown":`+deep+`,"X":1}`, `{"unknown":`+deep[:len(deep)-1]+`,"X":1}`)
	for _, v := range []any{newBenchmarkMessage(), filledJSONTagged(), jsonInner{Y: "y"}} {
		b, _ := json.Marshal(v)
		bodies = append(bodies, string(b))
	}
	return bodies
}

// checkJSONUnmarshal decodes body into two values from tgt, one through the
// codec and one through encoding/json, and compares the values and errors.
func checkJSONUnmarshal(t testing.TB, body []byte, tgt jsonTarget) {
	t.Helper()
	got, want := tgt.new(), tgt.new()
	err := JSON{}.Unmarshal(body, got)
	wantErr := json.Unmarshal(body, want)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("%s: Unmarshal(%q) error = %v, encoding/json's = %v", tgt.name, body, err, wantErr)
	}
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: Unmarshal(%q) error = %v, want it to wrap ErrMalformed", tgt.name, body, err)
		}
		if !strings.HasSuffix(err.Error(), wantErr.Error()) {
			t.Fatalf("%s: Unmarshal(%q) error = %q, want encoding/json's %q", tgt.name, body, err, wantErr)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: Unmarshal(%q)\n got %#v\nwant %#v", tgt.name, body, got, want)
	}
}

func TestJSONUnmarshalMatchesStdlib(t *testing.T) {
	for _, tgt := range jsonTargets() {
		t.Run(tgt.name, func(t *testing.T) {
			for _, body := range jsonBodies() {
				checkJSONUnmarshal(t, []byte(body), tgt)
			}
		})
	}
}

func TestJSONUnmarshalFastBodies(t *testing.T) {
	// Bodies the fast path decodes itself (it would be correct, but slow,
	// to hand them all to encoding/json).
	tests := []struct {
		body string
		tgt  func() any
	}{
		{`{"X":1,"y":"a","Z":[1.5,-2e-3]}`, func() any { return new(jsonInner) }},
		{`{"x":1,"Y":"\u00e9\n","unknown":[{"a":"}"}],"z":null}`, func() any { return new(jsonInner) }},
		{"{\"Y\":\"\xff\"}", func() any { return new(jsonInner) }},
		{`{"a":1,"b":null}`, func() any { return new(map[string]*int) }},
		{`"AQID"`, func() any { return new([]byte) }},
		{`[1,2,3]`, func() any { return new([]uint16) }},
		{`null`, func() any { p := &jsonInner{}; return &p }},
	}
	for _, tt := range tests {
		if !jsonUnmarshalFast([]byte(tt.body), tt.tgt()) {
			t.Errorf("jsonUnmarshalFast(%s) did not take the fast path", tt.body)
		}
	}
	msg, err := json.Marshal(filledJSONTagged())
	if err != nil {
		t.Fatal(err)
	}
	if !jsonUnmarshalFast(msg, new(jsonTagged)) {
		t.Errorf("jsonUnmarshalFast(%s) did not take the fast path", msg)
	}
}

func TestJSONAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	msg := newBenchmarkMessage()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := (JSON{}).AppendMarshal(buf[:0], msg); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AppendMarshal(benchmark message) = %v allocations, want 0", n)
	}
	data, err := JSON{}.AppendMarshal(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	// The ten 54-byte strings share two chunks; nothing else allocates.
	var got benchmarkMessage
	if n := testing.AllocsPerRun(100, func() {
		got = benchmarkMessage{}
		if err := (JSON{}).Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("Unmarshal(benchmark message) = %v allocations, want <= 2", n)
	}
}

//------------------------------------------------------------------------------
// Fuzzing.

// jsonFill sets v from the bytes of g: lengths, nil-ness, numbers (any bit
// pattern, so NaN and infinities too) and strings (tricky ones and raw
// fuzz bytes).
func jsonFill(g *encGen, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(g.dataByte()&1 == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(g.int64())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(g.int64()))
	case reflect.Float32, reflect.Float64:
		switch g.dataByte() % 4 {
		case 0:
			var b [8]byte
			for i := range b {
				b[i] = g.dataByte()
			}
			v.SetFloat(math.Float64frombits(binary.LittleEndian.Uint64(b[:])))
		default:
			v.SetFloat(g.float64())
		}
	case reflect.String:
		if g.dataByte()%2 == 0 {
			strs := jsonTrickyStrings()
			v.SetString(strs[int(g.dataByte())%len(strs)])
		} else {
			v.SetString(g.string())
		}
	case reflect.Slice:
		n := int(g.shapeByte() % 5)
		if n == 4 || depth > 3 {
			v.SetZero() // nil
			return
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			jsonFill(g, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		n := int(g.shapeByte() % 4)
		if n == 3 || depth > 3 {
			v.SetZero()
			return
		}
		m := reflect.MakeMap(v.Type())
		for range n {
			k := reflect.New(v.Type().Key()).Elem()
			jsonFill(g, k, depth+1)
			e := reflect.New(v.Type().Elem()).Elem()
			jsonFill(g, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		if g.shapeByte()%3 == 0 || depth > 3 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		jsonFill(g, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				jsonFill(g, v.Field(i), depth+1)
			}
		}
	}
}

// jsonType returns a type built from shape like encGen.typ, with json
// tags: names, omitempty, "-", invalid names, names that collide exactly
// or only when folded.
func (g *encGen) jsonType(depth int) reflect.Type {
	c := int(g.shapeByte())
	if c < len(encLeafTypes) || depth >= encMaxDepth {
		return encLeafTypes[c%len(encLeafTypes)]
	}
	switch c % 5 {
	case 0, 1:
		return g.jsonStructType(depth + 1)
	case 2:
		return reflect.PointerTo(g.jsonStructType(depth + 1))
	case 3:
		return reflect.SliceOf(g.jsonType(depth + 1))
	default:
		return reflect.MapOf(reflect.TypeFor[string](), g.jsonType(depth+1))
	}
}

func (g *encGen) jsonStructType(depth int) reflect.Type {
	n := int(g.shapeByte() % 12)
	fields := make([]reflect.StructField, n)
	for i := range fields {
		f := reflect.StructField{Name: "F" + strconv.Itoa(i), Type: g.jsonType(depth)}
		switch g.shapeByte() % 11 {
		case 1:
			f.Tag = reflect.StructTag(`json:"f` + strconv.Itoa(i+1) + `"`) // folds as the next field's name
		case 2:
			f.Tag = reflect.StructTag(`json:"j` + strconv.Itoa(i) + `,omitempty"`)
		case 3:
			f.Tag = `json:",omitempty"`
		case 4:
			f.Tag = `json:"-"`
		case 5:
			f.Tag = `json:"-,"`
		case 6:
			f.Tag = reflect.StructTag(`json:"é` + strconv.Itoa(i) + `"`)
		case 7:
			f.Tag = reflect.StructTag(`json:"bad\\` + strconv.Itoa(i) + `"`)
		case 8:
			f.Tag = `json:"F0"` // the same name as the first field
		case 9:
			f.Tag = reflect.StructTag(`json:"<h&>` + strconv.Itoa(i) + `"`)
		case 10:
			f.Tag = reflect.StructTag(`json:"\u212a` + strconv.Itoa(i) + `"`) // Kelvin sign
		}
		fields[i] = f
	}
	return reflect.StructOf(fields)
}

func FuzzJSONEncode(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add([]byte{1, 2, 3, 1, 2, 3, 1, 2, 3}, []byte("许多往事<>&\xff\u2028 0123456789"))
	f.Add(bytes.Repeat([]byte{1}, 64), bytes.Repeat([]byte{0x7f, 0xf0, 3}, 40))
	f.Fuzz(func(t *testing.T, shape, data []byte) {
		random := (&encGen{shape: shape}).jsonType(0)
		for _, typ := range []reflect.Type{
			random, reflect.TypeFor[jsonTagged](), reflect.TypeFor[benchmarkMessage](),
			reflect.TypeFor[map[string][]string](), reflect.TypeFor[[]*jsonInner](),
		} {
			g := &encGen{shape: shape, data: data, budget: 256}
			v := reflect.New(typ)
			jsonFill(g, v.Elem(), 0)
			checkJSONMarshal(t, v.Interface())
			checkJSONMarshal(t, v.Elem().Interface())
			// What it encodes decodes as encoding/json decodes it.
			if b, err := json.Marshal(v.Interface()); err == nil {
				checkJSONUnmarshal(t, b, jsonTarget{typ.String(), func() any { return reflect.New(typ).Interface() }})
			}
		}
	})
}

func FuzzJSONDecode(f *testing.F) {
	for _, body := range jsonBodies() {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, tgt := range jsonTargets() {
			checkJSONUnmarshal(t, body, tgt)
		}
	})
}
