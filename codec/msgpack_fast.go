package codec

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
)

// This file is the Msgpack fast path: for plain structs (and pointers to
// scalars, strings and byte slices) it encodes by appending straight to
// the caller's slice and decodes straight from the body, through a plan
// compiled once per type, instead of going through msgpack/v5's reflection
// and its io.Reader.
//
// It is wire-identical to msgpack/v5 v5.4.1 with the settings the codec
// uses (no options): the same bytes out, and for every body the same
// decoded value, or an error exactly when v5 (behind checkMsgpack) fails.
// It gets there by handling only what it is sure of and handing everything
// else back to the v5 path (a fallback, never an error):
//
//   - Types: a type is eligible when it is a bool, an integer (not
//     uintptr), a float, a string, a slice of bytes, a slice of those
//     scalars or strings, a pointer to an eligible non-pointer type, or a
//     struct whose exported fields are all eligible, untagged or tagged
//     with a plain name or "-", and not embedded; no struct may contain
//     itself. A type (or its pointer) that implements any of msgpack's
//     CustomEncoder, CustomDecoder, Marshaler, Unmarshaler or the
//     encoding Binary/Text (un)marshalers is not eligible, nor is any
//     other kind (maps, interfaces, arrays, channels, ...). Each eligible
//     type is then probed once: a filled and a zero value are encoded
//     and decoded by both paths and must agree, which catches types given
//     their own encoders with msgpack.Register or msgpack.RegisterExt*
//     (registrations made after a type was first used are not seen).
//   - Bodies: the decoder takes exactly the codes v5 takes for each kind
//     (any integer code into any integer field, truncated to the field's
//     width; integer codes into floats; str or bin into strings and byte
//     slices; nil into anything; keys as str, bin or nil; unknown keys
//     skipped; duplicate keys, last wins). Anything else, such as a
//     float into an integer field, a struct encoded as an array, an
//     extension anywhere, or nesting deeper than maxMsgpackDepth, stops
//     it, and the body is decoded again from the start by the v5 path.
//     Decoding again is sound because v5 writes every field the body
//     carries, and the fast path wrote nothing else.
//
// Every length in a body is checked against the bytes that remain before
// anything is allocated, so the fast path needs no separate validation
// pass: a body it accepts is one checkMsgpack accepts.

// fastKind is the kind of value a fastType encodes.
type fastKind uint8

const (
	fastBool fastKind = iota
	fastInt
	fastInt8
	fastInt16
	fastInt32
	fastInt64
	fastUint
	fastUint8
	fastUint16
	fastUint32
	fastUint64
	fastFloat32
	fastFloat64
	fastString
	fastBytes       // a slice whose elements are of kind uint8: bin
	fastStringSlice // []string, which v5 decodes with its own rules
	fastSlice       // a slice of the scalar or string kinds above
	fastPtr
	fastStruct
)

// fastType is the compiled plan of one eligible Go type.
type fastType struct {
	kind fastKind
	typ  reflect.Type
	elem *fastType // fastSlice and fastStringSlice elements; fastPtr target

	// Structs.
	fields []fastField
	mapHdr []byte         // the encoded map header
	index  map[string]int // field by name, when there are many fields

	// strs sizes the string chunks of bodies decoded with this type as
	// their root.
	strs strHint
}

// fastField is one encoded field of a struct.
type fastField struct {
	name string
	key  []byte // the encoded name, header included
	off  uintptr
	typ  *fastType
}

// fastLinearFields is up to how many fields a struct's names are looked
// up by comparing each instead of through a map.
const fastLinearFields = 8

// fastPlan is what the plan cache holds for one type: root is nil when the
// type is not eligible.
type fastPlan struct {
	root *fastType
	// direct reports that an interface holds a value of the type in its
	// data word rather than a pointer to it; such values go to v5.
	direct bool
}

// fastPlans caches a *fastPlan per reflect.Type (of the value, not of a
// pointer to it). Like the encoder pools, it is a cache, not state: what a
// call produces never depends on whether a plan was cached.
var fastPlans planCache[fastPlan]

// fastPlanFor returns the plan of t, compiling and caching it on first use.
func fastPlanFor(t reflect.Type) *fastPlan { return fastPlans.load(t, compileFastPlan) }

// compileFastPlan makes the plan of t.
func compileFastPlan(t reflect.Type) *fastPlan {
	p := &fastPlan{root: compileFast(t, map[reflect.Type]bool{})}
	// An interface stores a value in its data word when the value is one
	// pointer-sized word that holds a pointer; of the eligible kinds, only
	// a struct can be that.
	p.direct = t.Kind() == reflect.Struct && t.Size() == unsafe.Sizeof(uintptr(0))
	if p.root != nil && !probeFast(t, p.root) {
		p.root = nil
	}
	return p
}

// fastCustomInterfaces are the interfaces through which v5 lets a type
// encode or decode itself.
func fastCustomInterfaces() [8]reflect.Type {
	return [...]reflect.Type{
		reflect.TypeFor[msgpack.CustomEncoder](),
		reflect.TypeFor[msgpack.CustomDecoder](),
		reflect.TypeFor[msgpack.Marshaler](),
		reflect.TypeFor[msgpack.Unmarshaler](),
		reflect.TypeFor[encoding.BinaryMarshaler](),
		reflect.TypeFor[encoding.BinaryUnmarshaler](),
		reflect.TypeFor[encoding.TextMarshaler](),
		reflect.TypeFor[encoding.TextUnmarshaler](),
	}
}

// hasCustomCodec reports whether t or *t implements one of the interfaces
// v5 consults before its built-in encoders (encode_value.go _getEncoder,
// decode_value.go _getDecoder).
func hasCustomCodec(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	for _, it := range fastCustomInterfaces() {
		if t.Implements(it) || pt.Implements(it) {
			return true
		}
	}
	return false
}

// scalarKind returns the fastKind of a scalar or string reflect kind.
func scalarKind(k reflect.Kind) (fastKind, bool) {
	switch k {
	case reflect.Bool:
		return fastBool, true
	case reflect.Int:
		return fastInt, true
	case reflect.Int8:
		return fastInt8, true
	case reflect.Int16:
		return fastInt16, true
	case reflect.Int32:
		return fastInt32, true
	case reflect.Int64:
		return fastInt64, true
	case reflect.Uint:
		return fastUint, true
	case reflect.Uint8:
		return fastUint8, true
	case reflect.Uint16:
		return fastUint16, true
	case reflect.Uint32:
		return fastUint32, true
	case reflect.Uint64:
		return fastUint64, true
	case reflect.Float32:
		return fastFloat32, true
	case reflect.Float64:
		return fastFloat64, true
	case reflect.String:
		return fastString, true
	}
	return 0, false
}

// compileFast returns the plan of t, or nil if t is not eligible. open
// holds the structs being compiled, to refuse recursive types.
func compileFast(t reflect.Type, open map[reflect.Type]bool) *fastType {
	if hasCustomCodec(t) {
		return nil
	}
	if k, ok := scalarKind(t.Kind()); ok {
		return &fastType{kind: k, typ: t}
	}
	switch t.Kind() {
	case reflect.Slice:
		e := t.Elem()
		if hasCustomCodec(e) {
			return nil
		}
		if e.Kind() == reflect.Uint8 {
			return &fastType{kind: fastBytes, typ: t}
		}
		k, ok := scalarKind(e.Kind())
		if !ok {
			return nil
		}
		elem := &fastType{kind: k, typ: e}
		if e == reflect.TypeFor[string]() {
			return &fastType{kind: fastStringSlice, typ: t, elem: elem}
		}
		return &fastType{kind: fastSlice, typ: t, elem: elem}
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Pointer {
			return nil
		}
		elem := compileFast(t.Elem(), open)
		if elem == nil {
			return nil
		}
		return &fastType{kind: fastPtr, typ: t, elem: elem}
	case reflect.Struct:
		return compileFastStruct(t, open)
	}
	return nil
}

// compileFastStruct compiles a struct by v5's rules (types.go getFields):
// exported fields in declaration order, named by the msgpack tag or the
// Go name, "-" skipped. Whatever those rules would treat specially makes
// the struct ineligible: embedded fields (inlined by v5), tag options
// (omitempty, as_array, alias, intern, ...), a `_msgpack` field, names
// that occur twice.
func compileFastStruct(t reflect.Type, open map[reflect.Type]bool) *fastType {
	if open[t] {
		return nil
	}
	open[t] = true
	defer delete(open, t)
	st := &fastType{kind: fastStruct, typ: t}
	seen := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous || f.Name == "_msgpack" {
			return nil
		}
		tag := f.Tag.Get("msgpack")
		if tag == "-" {
			continue
		}
		if !f.IsExported() {
			continue
		}
		// tagparser treats these bytes specially and trims spaces; only
		// a plain name is taken as is.
		if strings.ContainsAny(tag, ",:'\\()") || strings.TrimSpace(tag) != tag {
			return nil
		}
		name := tag
		if name == "" {
			name = f.Name
		}
		if seen[name] {
			return nil
		}
		seen[name] = true
		ft := compileFast(f.Type, open)
		if ft == nil {
			return nil
		}
		st.fields = append(st.fields, fastField{
			name: name,
			key:  appendFastString(nil, name),
			off:  f.Offset,
			typ:  ft,
		})
	}
	st.mapHdr = appendFastMapLen(nil, len(st.fields))
	if len(st.fields) > fastLinearFields {
		st.index = make(map[string]int, len(st.fields))
		for i, f := range st.fields {
			st.index[f.name] = i
		}
	}
	return st
}

// probeFast checks the plan of t against v5 on two values of t: one with
// every field, element and pointer filled in, and the zero value. Both
// must encode to the same bytes, and v5's bytes must decode to the same
// value through both paths. It catches encoders registered with v5 for
// types the plan took for plain ones.
func probeFast(t reflect.Type, root *fastType) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	filled := reflect.New(t)
	fillProbe(filled.Elem(), root)
	for _, v := range []reflect.Value{filled, reflect.New(t)} {
		var w appendWriter
		if err := msgpack.NewEncoder(&w).Encode(v.Interface()); err != nil {
			return false
		}
		fast := appendFast(nil, root, v.UnsafePointer())
		if !bytes.Equal(fast, w.b) {
			return false
		}
		viaV5 := reflect.New(t)
		if err := msgpack.NewDecoder(bytes.NewReader(w.b)).Decode(viaV5.Interface()); err != nil {
			return false
		}
		viaFast := reflect.New(t)
		if !decodeFast(w.b, root, viaFast.UnsafePointer()) {
			return false
		}
		if !reflect.DeepEqual(viaV5.Interface(), v.Interface()) || !reflect.DeepEqual(viaFast.Interface(), v.Interface()) {
			return false
		}
	}
	return true
}

// fillProbe sets v, of the type ft describes, to a non-zero value.
func fillProbe(v reflect.Value, ft *fastType) {
	switch ft.kind {
	case fastBool:
		v.SetBool(true)
	case fastInt, fastInt8, fastInt16, fastInt32, fastInt64:
		v.SetInt(-100)
	case fastUint, fastUint8, fastUint16, fastUint32, fastUint64:
		v.SetUint(200)
	case fastFloat32, fastFloat64:
		v.SetFloat(1.5)
	case fastString:
		v.SetString("probe")
	case fastBytes:
		s := reflect.MakeSlice(ft.typ, 2, 2)
		s.Index(0).SetUint(1)
		v.Set(s)
	case fastSlice, fastStringSlice:
		s := reflect.MakeSlice(ft.typ, 2, 2)
		fillProbe(s.Index(0), ft.elem)
		v.Set(s)
	case fastPtr:
		p := reflect.New(ft.typ.Elem())
		fillProbe(p.Elem(), ft.elem)
		v.Set(p)
	case fastStruct:
		for _, f := range ft.fields {
			fillProbe(reflect.NewAt(f.typ.typ, unsafe.Add(v.Addr().UnsafePointer(), f.off)).Elem(), f.typ)
		}
	}
}

// eface is the layout of an empty interface.
type eface struct {
	typ, data unsafe.Pointer
}

// sliceHeader is the layout of a slice. Stores through it keep the write
// barrier, as data is a pointer.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// fastMarshal appends the encoding of v to dst, or reports false if v is
// not eligible for the fast path.
func fastMarshal(dst []byte, v any) ([]byte, bool) {
	if v == nil {
		return dst, false
	}
	t := reflect.TypeOf(v)
	e := (*eface)(unsafe.Pointer(&v))
	if t.Kind() == reflect.Pointer {
		p := fastPlanFor(t.Elem())
		if p.root == nil {
			return dst, false
		}
		if e.data == nil {
			return append(dst, 0xc0), true
		}
		return appendFast(dst, p.root, e.data), true
	}
	p := fastPlanFor(t)
	if p.root == nil || p.direct {
		return dst, false
	}
	return appendFast(dst, p.root, e.data), true
}

// fastUnmarshal decodes data into v, or reports false if v is not
// eligible for the fast path or data is not a body the fast path is sure
// to decode as v5 would; v may then hold part of data.
func fastUnmarshal(data []byte, v any) bool {
	elem, ptr, ok := decodeTarget(v)
	if !ok {
		return false
	}
	p := fastPlanFor(elem)
	if p.root == nil {
		return false
	}
	return decodeFast(data, p.root, ptr)
}

// decodeTarget returns the type and address of the value v points to, as
// the fast decoders take it: ok is false unless v is a non-nil pointer.
func decodeTarget(v any) (elem reflect.Type, ptr unsafe.Pointer, ok bool) {
	if v == nil {
		return nil, nil, false
	}
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer {
		return nil, nil, false
	}
	ptr = (*eface)(unsafe.Pointer(&v)).data
	if ptr == nil {
		return nil, nil, false
	}
	return t.Elem(), ptr, true
}

//------------------------------------------------------------------------------
// Encoding, byte for byte as v5's Encoder with no options.

// appendFast appends the encoding of the value of type ft at p.
func appendFast(dst []byte, ft *fastType, p unsafe.Pointer) []byte {
	switch ft.kind {
	case fastBool: // encode.go EncodeBool
		if *(*bool)(p) {
			return append(dst, 0xc3)
		}
		return append(dst, 0xc2)
	// encode_number.go: int and uint are compacted (EncodeInt,
	// EncodeUint); sized kinds keep their size (encodeInt8Cond, ...).
	case fastInt:
		return appendFastInt(dst, int64(*(*int)(p)))
	case fastInt8:
		return append(dst, 0xd0, *(*byte)(p))
	case fastInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), *(*uint16)(p))
	case fastInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), *(*uint32)(p))
	case fastInt64:
		return binary.BigEndian.AppendUint64(append(dst, 0xd3), *(*uint64)(p))
	case fastUint:
		return appendFastUint(dst, uint64(*(*uint)(p)))
	case fastUint8:
		return append(dst, 0xcc, *(*byte)(p))
	case fastUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), *(*uint16)(p))
	case fastUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), *(*uint32)(p))
	case fastUint64:
		return binary.BigEndian.AppendUint64(append(dst, 0xcf), *(*uint64)(p))
	case fastFloat32:
		return binary.BigEndian.AppendUint32(append(dst, 0xca), math.Float32bits(*(*float32)(p)))
	case fastFloat64:
		return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(*(*float64)(p)))
	case fastString:
		return appendFastString(dst, *(*string)(p))
	case fastBytes: // encode_slice.go EncodeBytes: nil is nil
		b := *(*[]byte)(p)
		if b == nil {
			return append(dst, 0xc0)
		}
		return append(appendFastBinLen(dst, len(b)), b...)
	case fastSlice, fastStringSlice: // encode_slice.go encodeSliceValue, encodeStringSlice
		h := (*sliceHeader)(p)
		if h.data == nil {
			return append(dst, 0xc0)
		}
		dst = appendFastArrayLen(dst, h.len)
		size := ft.elem.typ.Size()
		for i := range h.len {
			dst = appendFast(dst, ft.elem, unsafe.Add(h.data, uintptr(i)*size))
		}
		return dst
	case fastPtr: // encode_value.go ptrEncoderFunc
		q := *(*unsafe.Pointer)(p)
		if q == nil {
			return append(dst, 0xc0)
		}
		return appendFast(dst, ft.elem, q)
	case fastStruct: // encode_map.go encodeStructValue
		dst = append(dst, ft.mapHdr...)
		for i := range ft.fields {
			f := &ft.fields[i]
			dst = append(dst, f.key...)
			dst = appendFast(dst, f.typ, unsafe.Add(p, f.off))
		}
		return dst
	}
	panic("codec: msgpack fast path: unknown kind")
}

// appendFastUint is encode_number.go EncodeUint.
func appendFastUint(dst []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(dst, byte(n))
	case n <= math.MaxUint8:
		return append(dst, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), n)
}

// appendFastInt is encode_number.go EncodeInt.
func appendFastInt(dst []byte, n int64) []byte {
	switch {
	case n >= 0:
		return appendFastUint(dst, uint64(n))
	case n >= -32:
		return append(dst, byte(n))
	case n >= math.MinInt8:
		return append(dst, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(n))
}

// appendFastString is encode_slice.go encodeNormalString.
func appendFastString(dst []byte, s string) []byte {
	switch l := len(s); {
	case l < 32:
		dst = append(dst, 0xa0|byte(l))
	case l < 256:
		dst = append(dst, 0xd9, byte(l))
	case l <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(l))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(l))
	}
	return append(dst, s...)
}

// appendFastBinLen is encode_slice.go EncodeBytesLen.
func appendFastBinLen(dst []byte, l int) []byte {
	switch {
	case l < 256:
		return append(dst, 0xc4, byte(l))
	case l <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(l))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(l))
}

// appendFastArrayLen is encode_slice.go EncodeArrayLen.
func appendFastArrayLen(dst []byte, l int) []byte {
	switch {
	case l < 16:
		return append(dst, 0x90|byte(l))
	case l <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xdc), uint16(l))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdd), uint32(l))
}

// appendFastMapLen is encode_map.go EncodeMapLen.
func appendFastMapLen(dst []byte, l int) []byte {
	switch {
	case l < 16:
		return append(dst, 0x80|byte(l))
	case l <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xde), uint16(l))
	}
	return binary.BigEndian.AppendUint32(append(dst, 0xdf), uint32(l))
}
