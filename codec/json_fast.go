package codec

import (
	"encoding"
	"encoding/base64"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// This file is the JSON fast path: for plain structs (and the plain types
// below) it encodes by appending straight to the caller's slice and
// decodes straight from the body, through a plan compiled once per type,
// instead of going through encoding/json's reflection.
//
// It keeps encoding/json's semantics (the encoding/json of the Go release
// the program is built with, without the jsonv2 experiment): the same
// bytes out, and for every body the same decoded value, or an error
// exactly when encoding/json fails. It gets there by handling only what it
// is sure of and handing everything else to encoding/json (a fallback,
// never an error of its own):
//
//   - Types: a type is eligible when it is a bool, an integer (not
//     uintptr), a float, a string (not json.Number), a byte slice, a slice
//     of an eligible type, a map with string keys and eligible values, a
//     pointer to an eligible non-pointer type, or a struct whose exported
//     fields are all eligible and not embedded, tagged at most with a name
//     and omitempty, with no name twice; no struct may contain itself. A
//     type (or its pointer) that implements json.Marshaler,
//     json.Unmarshaler, encoding.TextMarshaler or encoding.TextUnmarshaler
//     is not eligible, nor is any other kind (interfaces, arrays, ...) or
//     a field tagged with the string or omitzero options.
//   - Encoding: a float that is NaN or infinite (an error in
//     encoding/json) hands the whole value to encoding/json.
//   - Bodies: a body with a syntax error leaves the target as it was, as
//     in encoding/json (which checks the whole body before it writes): the
//     decoder succeeds only on valid JSON, a target that is all zero bytes
//     is zeroed again when it fails, and any other target has the body
//     checked first (conservatively: a body the check refuses goes to
//     encoding/json, which reports the error). The decoder takes exactly
//     what encoding/json takes without an error: for each kind the JSON
//     values it converts (and null, which leaves a scalar or struct alone
//     and sets a pointer, slice or map to nil), keys matched exactly and
//     then case-insensitively as encoding/json folds them, unknown keys
//     skipped, duplicate keys (last wins), slices filled in place in their
//     old array, maps merged. Anything else, such as a string into an
//     integer field or a number out of range, stops it, and the body is
//     decoded again from the start by encoding/json. Decoding again is
//     sound because encoding/json writes every value the body carries, in
//     the same order and in the same way, and the fast path wrote nothing
//     else (or, for a zero target, was undone).

// jsonKind is the kind of value a jsonType encodes.
type jsonKind uint8

const (
	jsonBool jsonKind = iota
	jsonInt
	jsonInt8
	jsonInt16
	jsonInt32
	jsonInt64
	jsonUint
	jsonUint8
	jsonUint16
	jsonUint32
	jsonUint64
	jsonFloat32
	jsonFloat64
	jsonString
	jsonBytes // a slice whose elements are of kind uint8: base64
	jsonSlice
	jsonMap // string keys
	jsonPtr
	jsonStruct
)

// jsonType is the compiled plan of one eligible Go type.
type jsonType struct {
	kind jsonKind
	typ  reflect.Type
	elem *jsonType // slice and map elements; pointer target

	// Structs.
	fields []jsonField
	exact  map[string]int // field by name, when there are many fields
	folded map[string]int // field by folded name (first in field order)

	// strs sizes the string chunks of bodies decoded with this type as
	// their root.
	strs strHint
}

// jsonField is one encoded field of a struct.
type jsonField struct {
	name      string
	key       []byte // `,"name":`, the name escaped as encoding/json does
	quoted    string // `"name"`, the name as is: a key that is exactly the name
	fold      []byte // the name folded as encoding/json folds keys
	off       uintptr
	typ       *jsonType
	omitEmpty bool
}

// jsonPlan is what the plan cache holds for one type: root is nil when the
// type is not eligible.
type jsonPlan struct {
	root *jsonType
	// direct reports that an interface may hold a value of the type in its
	// data word rather than a pointer to it; such values go to
	// encoding/json.
	direct bool
}

// jsonPlans caches a *jsonPlan per reflect.Type (of the value, not of a
// pointer to it). It is a cache, not state: what a call produces never
// depends on whether a plan was cached.
var jsonPlans planCache[jsonPlan]

// jsonPlanFor returns the plan of t, compiling and caching it on first use.
func jsonPlanFor(t reflect.Type) *jsonPlan { return jsonPlans.load(t, compileJSONPlan) }

// compileJSONPlan makes the plan of t.
func compileJSONPlan(t reflect.Type) *jsonPlan {
	p := &jsonPlan{}
	if jsonFastEnabled {
		p.root = compileJSON(t, map[reflect.Type]bool{})
	}
	p.direct = t.Kind() == reflect.Map ||
		(t.Kind() == reflect.Struct && t.Size() == unsafe.Sizeof(uintptr(0)))
	return p
}

// jsonCustomInterfaces are the interfaces through which encoding/json lets
// a type encode or decode itself.
func jsonCustomInterfaces() [4]reflect.Type {
	return [...]reflect.Type{
		reflect.TypeFor[json.Marshaler](),
		reflect.TypeFor[json.Unmarshaler](),
		reflect.TypeFor[encoding.TextMarshaler](),
		reflect.TypeFor[encoding.TextUnmarshaler](),
	}
}

// hasJSONMethods reports whether t or *t implements one of the interfaces
// encoding/json consults before its built-in encoders, or is json.Number.
func hasJSONMethods(t reflect.Type) bool {
	if t == reflect.TypeFor[json.Number]() {
		return true
	}
	pt := reflect.PointerTo(t)
	for _, it := range jsonCustomInterfaces() {
		if t.Implements(it) || pt.Implements(it) {
			return true
		}
	}
	return false
}

// jsonScalarKind returns the jsonKind of a scalar or string reflect kind.
func jsonScalarKind(k reflect.Kind) (jsonKind, bool) {
	switch k {
	case reflect.Bool:
		return jsonBool, true
	case reflect.Int:
		return jsonInt, true
	case reflect.Int8:
		return jsonInt8, true
	case reflect.Int16:
		return jsonInt16, true
	case reflect.Int32:
		return jsonInt32, true
	case reflect.Int64:
		return jsonInt64, true
	case reflect.Uint:
		return jsonUint, true
	case reflect.Uint8:
		return jsonUint8, true
	case reflect.Uint16:
		return jsonUint16, true
	case reflect.Uint32:
		return jsonUint32, true
	case reflect.Uint64:
		return jsonUint64, true
	case reflect.Float32:
		return jsonFloat32, true
	case reflect.Float64:
		return jsonFloat64, true
	case reflect.String:
		return jsonString, true
	}
	return 0, false
}

// compileJSON returns the plan of t, or nil if t is not eligible. open
// holds the structs being compiled, to refuse recursive types.
func compileJSON(t reflect.Type, open map[reflect.Type]bool) *jsonType {
	if hasJSONMethods(t) {
		return nil
	}
	if k, ok := jsonScalarKind(t.Kind()); ok {
		return &jsonType{kind: k, typ: t}
	}
	switch t.Kind() {
	case reflect.Slice:
		elem := compileJSON(t.Elem(), open)
		if elem == nil {
			return nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return &jsonType{kind: jsonBytes, typ: t}
		}
		return &jsonType{kind: jsonSlice, typ: t, elem: elem}
	case reflect.Map:
		if t.Key().Kind() != reflect.String || hasJSONMethods(t.Key()) {
			return nil
		}
		elem := compileJSON(t.Elem(), open)
		if elem == nil {
			return nil
		}
		return &jsonType{kind: jsonMap, typ: t, elem: elem}
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Pointer {
			return nil
		}
		elem := compileJSON(t.Elem(), open)
		if elem == nil {
			return nil
		}
		return &jsonType{kind: jsonPtr, typ: t, elem: elem}
	case reflect.Struct:
		return compileJSONStruct(t, open)
	}
	return nil
}

// compileJSONStruct compiles a struct by encoding/json's rules (encode.go
// typeFields) for structs without embedded fields: exported fields in
// declaration order, named by a valid tag name or the Go name, "-"
// skipped. Whatever would need the rest of those rules makes the struct
// ineligible: embedded fields, the string and omitzero options, names that
// occur twice.
func compileJSONStruct(t reflect.Type, open map[reflect.Type]bool) *jsonType {
	if open[t] {
		return nil
	}
	open[t] = true
	defer delete(open, t)
	st := &jsonType{kind: jsonStruct, typ: t}
	seen := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			return nil
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		omitEmpty := false
		for opts != "" {
			var opt string
			opt, opts, _ = strings.Cut(opts, ",")
			switch opt {
			case "omitempty":
				omitEmpty = true
			case "string", "omitzero":
				return nil
			}
		}
		if !validJSONTag(name) {
			name = f.Name
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		ft := compileJSON(f.Type, open)
		if ft == nil {
			return nil
		}
		key := append([]byte{','}, appendJSONString(nil, name)...)
		st.fields = append(st.fields, jsonField{
			name:      name,
			key:       append(key, ':'),
			quoted:    `"` + name + `"`,
			fold:      appendFoldedJSONKey(nil, []byte(name)),
			off:       f.Offset,
			typ:       ft,
			omitEmpty: omitEmpty,
		})
	}
	if len(st.fields) > jsonLinearFields {
		st.exact = make(map[string]int, len(st.fields))
		for i, f := range st.fields {
			st.exact[f.name] = i
		}
	}
	st.folded = make(map[string]int, len(st.fields))
	for i, f := range st.fields {
		if _, ok := st.folded[string(f.fold)]; !ok {
			st.folded[string(f.fold)] = i
		}
	}
	return st
}

// jsonLinearFields is up to how many fields a struct's names are looked up
// by comparing each instead of through a map.
const jsonLinearFields = 8

// validJSONTag is encode.go isValidTag: a tag name encoding/json takes.
func validJSONTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// appendFoldedJSONKey is fold.go appendFoldedName: ASCII letters upper
// case, every other rune the smallest of its simple fold orbit.
func appendFoldedJSONKey(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
		i += n
	}
	return out
}

// jsonMarshalFast appends the encoding of v to dst, or reports false if v
// is not eligible for the fast path (dst is then unchanged).
func jsonMarshalFast(dst []byte, v any) ([]byte, bool) {
	if v == nil {
		return dst, false
	}
	t := reflect.TypeOf(v)
	e := (*eface)(unsafe.Pointer(&v))
	if t.Kind() == reflect.Pointer {
		p := jsonPlanFor(t.Elem())
		if p.root == nil {
			return dst, false
		}
		if e.data == nil {
			return append(dst, "null"...), true
		}
		out, ok := appendJSON(dst, p.root, e.data)
		return out, ok
	}
	p := jsonPlanFor(t)
	if p.root == nil || p.direct {
		return dst, false
	}
	return appendJSON(dst, p.root, e.data)
}

//------------------------------------------------------------------------------
// Encoding, byte for byte as encoding/json's Marshal.

// appendJSON appends the encoding of the value of type ft at p. It reports
// false, with dst unchanged, for a value encoding/json refuses (a NaN or
// infinite float).
func appendJSON(dst []byte, ft *jsonType, p unsafe.Pointer) ([]byte, bool) {
	switch ft.kind {
	case jsonBool:
		if *(*bool)(p) {
			return append(dst, "true"...), true
		}
		return append(dst, "false"...), true
	case jsonInt:
		return appendJSONInt(dst, int64(*(*int)(p))), true
	case jsonInt8:
		return appendJSONInt(dst, int64(*(*int8)(p))), true
	case jsonInt16:
		return appendJSONInt(dst, int64(*(*int16)(p))), true
	case jsonInt32:
		return appendJSONInt(dst, int64(*(*int32)(p))), true
	case jsonInt64:
		return appendJSONInt(dst, *(*int64)(p)), true
	case jsonUint:
		return appendJSONUint(dst, uint64(*(*uint)(p))), true
	case jsonUint8:
		return appendJSONUint(dst, uint64(*(*uint8)(p))), true
	case jsonUint16:
		return appendJSONUint(dst, uint64(*(*uint16)(p))), true
	case jsonUint32:
		return appendJSONUint(dst, uint64(*(*uint32)(p))), true
	case jsonUint64:
		return appendJSONUint(dst, *(*uint64)(p)), true
	case jsonFloat32:
		return appendJSONFloat(dst, float64(*(*float32)(p)), 32)
	case jsonFloat64:
		return appendJSONFloat(dst, *(*float64)(p), 64)
	case jsonString:
		return appendJSONString(dst, *(*string)(p)), true
	case jsonBytes: // encode.go encodeByteSlice
		b := *(*[]byte)(p)
		if b == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, '"'), true
	case jsonSlice: // encode.go sliceEncoder, arrayEncoder
		h := (*sliceHeader)(p)
		if h.data == nil {
			return append(dst, "null"...), true
		}
		start := len(dst)
		dst = append(dst, '[')
		size := ft.elem.typ.Size()
		for i := range h.len {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendJSON(dst, ft.elem, unsafe.Add(h.data, uintptr(i)*size)); !ok {
				return dst[:start], false
			}
		}
		return append(dst, ']'), true
	case jsonMap:
		return appendJSONMap(dst, ft, p)
	case jsonPtr: // encode.go ptrEncoder
		q := *(*unsafe.Pointer)(p)
		if q == nil {
			return append(dst, "null"...), true
		}
		return appendJSON(dst, ft.elem, q)
	case jsonStruct: // encode.go structEncoder
		start := len(dst)
		dst = append(dst, '{')
		first := true
		for i := range ft.fields {
			f := &ft.fields[i]
			fp := unsafe.Add(p, f.off)
			if f.omitEmpty && jsonEmpty(f.typ, fp) {
				continue
			}
			if first {
				dst = append(dst, f.key[1:]...)
				first = false
			} else {
				dst = append(dst, f.key...)
			}
			var ok bool
			if dst, ok = appendJSON(dst, f.typ, fp); !ok {
				return dst[:start], false
			}
		}
		return append(dst, '}'), true
	}
	panic("codec: json fast path: unknown kind")
}

// appendJSONMap is encode.go mapEncoder for string keys: keys sorted.
func appendJSONMap(dst []byte, ft *jsonType, p unsafe.Pointer) ([]byte, bool) {
	m := reflect.NewAt(ft.typ, p).Elem()
	if m.IsNil() {
		return append(dst, "null"...), true
	}
	type entry struct {
		key string
		val reflect.Value
	}
	entries := make([]entry, 0, m.Len())
	for it := m.MapRange(); it.Next(); {
		entries = append(entries, entry{it.Key().String(), it.Value()})
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.key, b.key) })
	start := len(dst)
	dst = append(dst, '{')
	// Values are copied out of the map to be addressable for appendJSON.
	tmp := reflect.New(ft.elem.typ)
	for i, e := range entries {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, e.key)
		dst = append(dst, ':')
		tmp.Elem().Set(e.val)
		var ok bool
		if dst, ok = appendJSON(dst, ft.elem, tmp.UnsafePointer()); !ok {
			return dst[:start], false
		}
	}
	return append(dst, '}'), true
}

// jsonDigitPairs holds "00" to "99".
const jsonDigitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// appendJSONUint appends n in decimal, as strconv.AppendUint(dst, n, 10).
func appendJSONUint(dst []byte, n uint64) []byte {
	if n < 10 {
		return append(dst, byte('0'+n))
	}
	var buf [20]byte
	i := len(buf)
	for n >= 100 {
		r := n % 100
		n /= 100
		i -= 2
		buf[i], buf[i+1] = jsonDigitPairs[2*r], jsonDigitPairs[2*r+1]
	}
	if n >= 10 {
		i -= 2
		buf[i], buf[i+1] = jsonDigitPairs[2*n], jsonDigitPairs[2*n+1]
	} else {
		i--
		buf[i] = byte('0' + n)
	}
	return append(dst, buf[i:]...)
}

// appendJSONInt appends n in decimal, as strconv.AppendInt(dst, n, 10).
func appendJSONInt(dst []byte, n int64) []byte {
	if n < 0 {
		return appendJSONUint(append(dst, '-'), uint64(-n)) // -MinInt64 is 1<<63 as a uint64
	}
	return appendJSONUint(dst, uint64(n))
}

// jsonEmpty is encode.go isEmptyValue for the eligible kinds.
func jsonEmpty(ft *jsonType, p unsafe.Pointer) bool {
	switch ft.kind {
	case jsonBool:
		return !*(*bool)(p)
	case jsonInt:
		return *(*int)(p) == 0
	case jsonInt8, jsonUint8:
		return *(*uint8)(p) == 0
	case jsonInt16, jsonUint16:
		return *(*uint16)(p) == 0
	case jsonInt32, jsonUint32:
		return *(*uint32)(p) == 0
	case jsonInt64, jsonUint64:
		return *(*uint64)(p) == 0
	case jsonUint:
		return *(*uint)(p) == 0
	case jsonFloat32:
		return *(*float32)(p) == 0
	case jsonFloat64:
		return *(*float64)(p) == 0
	case jsonString:
		return len(*(*string)(p)) == 0
	case jsonBytes, jsonSlice:
		return (*sliceHeader)(p).len == 0
	case jsonMap:
		return reflect.NewAt(ft.typ, p).Elem().Len() == 0
	case jsonPtr:
		return *(*unsafe.Pointer)(p) == nil
	}
	return false // structs are never empty
}

// appendJSONFloat is encode.go floatEncoder: ES6 number formatting. It
// reports false for NaN and infinities, which encoding/json refuses.
func appendJSONFloat(dst []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// e-09 becomes e-9
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

// jsonSafe marks the ASCII bytes encoding/json writes into a string as they
// are with HTML escaping on (encode.go htmlSafeSet): not a control byte,
// '"', '\\', '<', '>' or '&'.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = !strings.ContainsRune("\"\\<>&", rune(b))
	}
	return t
}()

const jsonHex = "0123456789abcdef"

// jsonHTMLSafe8 reports whether the first eight bytes of s are all in
// jsonSafe.
func jsonHTMLSafe8(s string) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	// A byte below 0x20 or equal to one of the five sets its high bit in
	// t (and may set those of the bytes above it).
	t := x - ones*0x20
	for _, c := range [...]uint64{'"', '\\', '<', '>', '&'} {
		t |= (x ^ (ones * c)) - ones
	}
	return (x|t&^x)&highs == 0
}

// appendJSONString is encode.go appendString with HTML escaping: quotes,
// backslashes and control bytes escaped (short forms for \b \f \n \r \t),
// '<', '>' and '&' as \u00XX, every invalid UTF-8 byte as \ufffd, and
// U+2028 and U+2029 as \u2028 and \u2029.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				// Runs of safe ASCII, eight bytes at a time.
				for len(s)-i >= 8 && jsonHTMLSafe8(s[i:]) {
					i += 8
				}
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', jsonHex[b>>4], jsonHex[b&0xF])
			}
			i++
			start = i
			continue
		}
		// The common multi-byte runes, checked by hand: a three-byte rune
		// that is neither a surrogate nor led by 0xE2 (where U+2028 and
		// U+2029 are) nor overlong (0xE0), and a two-byte rune.
		if i+2 < len(s) && (b >= 0xE3 && b <= 0xEC || b == 0xEE || b == 0xEF || b == 0xE1) &&
			s[i+1]&0xC0 == 0x80 && s[i+2]&0xC0 == 0x80 {
			i += 3
			continue
		}
		if i+1 < len(s) && b >= 0xC2 && b <= 0xDF && s[i+1]&0xC0 == 0x80 {
			i += 2
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', jsonHex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
