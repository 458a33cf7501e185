package codec

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"sync"
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
var fastPlans sync.Map

// fastPlanFor returns the plan of t, compiling and caching it on first use.
func fastPlanFor(t reflect.Type) *fastPlan {
	if p, ok := fastPlans.Load(t); ok {
		return p.(*fastPlan)
	}
	p := &fastPlan{root: compileFast(t, map[reflect.Type]bool{})}
	// An interface stores a value in its data word when the value is one
	// pointer-sized word that holds a pointer; of the eligible kinds, only
	// a struct can be that.
	p.direct = t.Kind() == reflect.Struct && t.Size() == unsafe.Sizeof(uintptr(0))
	if p.root != nil && !probeFast(t, p.root) {
		p.root = nil
	}
	actual, _ := fastPlans.LoadOrStore(t, p)
	return actual.(*fastPlan)
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
	if v == nil {
		return false
	}
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer {
		return false
	}
	ptr := (*eface)(unsafe.Pointer(&v)).data
	if ptr == nil {
		return false
	}
	p := fastPlanFor(t.Elem())
	if p.root == nil {
		return false
	}
	return decodeFast(data, p.root, ptr)
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

//------------------------------------------------------------------------------
// Decoding, value for value as v5's Decoder with no options behind
// checkMsgpack. Every method reports false, without an error, when the
// body is anything else: truncated, of a code it does not take, too deep.

// fastDecoder reads one body.
type fastDecoder struct {
	b     []byte
	off   int
	depth int // open arrays and maps
}

// decodeFast decodes the single value in data into the value of type ft
// at p and reports whether it did, with data fully consumed.
func decodeFast(data []byte, ft *fastType, p unsafe.Pointer) bool {
	d := fastDecoder{b: data}
	return d.value(ft, p) && d.off == len(d.b)
}

// code reads one code byte.
func (d *fastDecoder) code() (byte, bool) {
	if d.off >= len(d.b) {
		return 0, false
	}
	c := d.b[d.off]
	d.off++
	return c, true
}

// uintN reads a big-endian unsigned integer of n (1, 2, 4 or 8) bytes.
func (d *fastDecoder) uintN(n int) (uint64, bool) {
	if len(d.b)-d.off < n {
		return 0, false
	}
	b := d.b[d.off:]
	d.off += n
	switch n {
	case 1:
		return uint64(b[0]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), true
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), true
	}
	return binary.BigEndian.Uint64(b), true
}

// take returns the next n bytes, if there are that many.
func (d *fastDecoder) take(n uint64) ([]byte, bool) {
	if n > uint64(len(d.b)-d.off) {
		return nil, false
	}
	b := d.b[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return b, true
}

// integer reads any integer code, or nil as 0, with the value v5 gives
// it (decode_number.go int and uint: signed codes sign-extend, unsigned
// ones do not; both return the same 64 bits).
func (d *fastDecoder) integer(c byte) (uint64, bool) {
	if c <= 0x7f || c >= 0xe0 {
		return uint64(int64(int8(c))), true
	}
	switch c {
	case 0xc0:
		return 0, true
	case 0xcc:
		return d.uintN(1)
	case 0xcd:
		return d.uintN(2)
	case 0xce:
		return d.uintN(4)
	case 0xcf, 0xd3:
		return d.uintN(8)
	case 0xd0:
		n, ok := d.uintN(1)
		return uint64(int64(int8(n))), ok
	case 0xd1:
		n, ok := d.uintN(2)
		return uint64(int64(int16(n))), ok
	case 0xd2:
		n, ok := d.uintN(4)
		return uint64(int64(int32(n))), ok
	}
	return 0, false
}

// bytesLen reads the length after a str, bin or nil code, as
// decode_string.go bytesLen: -1 for nil.
func (d *fastDecoder) bytesLen(c byte) (int64, bool) {
	if c-0xa0 < 0x20 {
		return int64(c & 0x1f), true
	}
	var n uint64
	var ok bool
	switch c {
	case 0xc0:
		return -1, true
	case 0xd9, 0xc4:
		n, ok = d.uintN(1)
	case 0xda, 0xc5:
		n, ok = d.uintN(2)
	case 0xdb, 0xc6:
		n, ok = d.uintN(4)
	default:
		return 0, false
	}
	return int64(n), ok
}

// strBytes reads a str, bin or nil value and returns its bytes (nil for
// nil, which v5 decodes as "").
func (d *fastDecoder) strBytes() ([]byte, bool) {
	c, ok := d.code()
	if !ok {
		return nil, false
	}
	if c-0xa0 < 0x20 { // fixstr, the common case
		return d.take(uint64(c & 0x1f))
	}
	n, ok := d.bytesLen(c)
	if !ok || n < 0 {
		return nil, ok
	}
	return d.take(uint64(n))
}

// containerLen reads the element count after an array header (fixed
// codes base..base+15, then the 16- and 32-bit codes c16 and c16+1), or
// -1 for nil. Each element takes at least a byte, so a count larger than
// the bytes left fails here.
func (d *fastDecoder) containerLen(c, base, c16 byte) (int, bool) {
	var n uint64
	var ok bool
	switch {
	case c == 0xc0:
		return -1, true
	case c-base < 0x10:
		n, ok = uint64(c-base), true
	case c == c16:
		n, ok = d.uintN(2)
	case c == c16+1:
		n, ok = d.uintN(4)
	default:
		return 0, false
	}
	if !ok || n > uint64(len(d.b)-d.off) {
		return 0, false
	}
	return int(n), true
}

// enter opens an array or map, reporting false past maxMsgpackDepth.
func (d *fastDecoder) enter() bool {
	d.depth++
	return d.depth <= maxMsgpackDepth
}

// value decodes into the value of type ft at p.
func (d *fastDecoder) value(ft *fastType, p unsafe.Pointer) bool {
	c, ok := d.code()
	if !ok {
		return false
	}
	switch ft.kind {
	case fastBool: // decode.go bool
		switch c {
		case 0xc0, 0xc2:
			*(*bool)(p) = false
		case 0xc3:
			*(*bool)(p) = true
		default:
			return false
		}
		return true
	case fastInt32: // the code v5 encodes int32 with, then any integer
		if c == 0xd2 && len(d.b)-d.off >= 4 {
			*(*uint32)(p) = binary.BigEndian.Uint32(d.b[d.off:])
			d.off += 4
			return true
		}
		n, ok := d.integer(c)
		if !ok {
			return false
		}
		*(*uint32)(p) = uint32(n)
		return true
	case fastInt, fastInt8, fastInt16, fastInt64,
		fastUint, fastUint8, fastUint16, fastUint32, fastUint64:
		// decode_number.go decodeInt64Value / decodeUint64Value, then
		// reflect's SetInt / SetUint truncate to the field's width.
		n, ok := d.integer(c)
		if !ok {
			return false
		}
		storeFastInt(ft.kind, p, n)
		return true
	case fastFloat32: // decode_number.go float32
		var f float32
		if c == 0xca {
			n, ok := d.uintN(4)
			if !ok {
				return false
			}
			f = math.Float32frombits(uint32(n))
		} else {
			n, ok := d.integer(c)
			if !ok {
				return false
			}
			f = float32(int64(n))
		}
		*(*float32)(p) = f
		return true
	case fastFloat64: // decode_number.go float64
		var f float64
		switch c {
		case 0xca:
			n, ok := d.uintN(4)
			if !ok {
				return false
			}
			f = float64(math.Float32frombits(uint32(n)))
		case 0xcb:
			n, ok := d.uintN(8)
			if !ok {
				return false
			}
			f = math.Float64frombits(n)
		default:
			n, ok := d.integer(c)
			if !ok {
				return false
			}
			f = float64(int64(n))
		}
		*(*float64)(p) = f
		return true
	case fastString: // decode_string.go string: str, bin or nil as ""
		var b []byte
		switch {
		case c-0xa0 < 0x20:
			b, ok = d.take(uint64(c & 0x1f))
		case c == 0xd9 && d.off < len(d.b):
			d.off++
			b, ok = d.take(uint64(d.b[d.off-1]))
		default:
			var n int64
			if n, ok = d.bytesLen(c); ok && n > 0 {
				b, ok = d.take(uint64(n))
			}
		}
		if !ok {
			return false
		}
		*(*string)(p) = string(b)
		return true
	case fastBytes:
		return d.bytesValue(c, p)
	case fastStringSlice:
		return d.stringSlice(c, ft, p)
	case fastSlice:
		return d.slice(c, ft, p)
	case fastPtr: // decode_value.go ptrValueDecoder
		if c == 0xc0 {
			*(*unsafe.Pointer)(p) = nil
			return true
		}
		q := *(*unsafe.Pointer)(p)
		if q == nil {
			q = reflect.New(ft.elem.typ).UnsafePointer()
			*(*unsafe.Pointer)(p) = q
		}
		d.off-- // the target decodes the code again
		return d.value(ft.elem, q)
	case fastStruct:
		return d.structValue(c, ft, p)
	}
	return false
}

// storeFastInt stores n at p, truncated to the width of kind k.
func storeFastInt(k fastKind, p unsafe.Pointer, n uint64) {
	switch k {
	case fastInt:
		*(*int)(p) = int(n)
	case fastInt8, fastUint8:
		*(*uint8)(p) = uint8(n)
	case fastInt16, fastUint16:
		*(*uint16)(p) = uint16(n)
	case fastInt32, fastUint32:
		*(*uint32)(p) = uint32(n)
	case fastInt64, fastUint64:
		*(*uint64)(p) = n
	case fastUint:
		*(*uint)(p) = uint(n)
	}
}

// bytesValue decodes a []byte as decode_string.go decodeBytesValue and
// readN: nil is a nil slice; otherwise the old array is reused when it is
// non-nil and large enough, and an empty value into a nil slice is an
// empty non-nil slice.
func (d *fastDecoder) bytesValue(c byte, p unsafe.Pointer) bool {
	n, ok := d.bytesLen(c)
	if !ok {
		return false
	}
	s := (*[]byte)(p)
	if n < 0 {
		*s = nil
		return true
	}
	b, ok := d.take(uint64(n))
	if !ok {
		return false
	}
	if *s != nil && cap(*s) >= len(b) {
		*s = (*s)[:len(b)]
	} else {
		*s = make([]byte, len(b))
	}
	copy(*s, b)
	return true
}

// stringSlice decodes a []string as decode_slice.go decodeStringSlicePtr:
// nil leaves the slice as it is; otherwise the old array is reused when
// it is non-nil and large enough (makeStrings).
func (d *fastDecoder) stringSlice(c byte, ft *fastType, p unsafe.Pointer) bool {
	n, ok := d.containerLen(c, 0x90, 0xdc)
	if !ok {
		return false
	}
	if n < 0 {
		return true
	}
	s := (*[]string)(p)
	ss := *s
	if ss == nil || cap(ss) < n {
		ss = make([]string, 0, n)
	}
	ss = ss[:n]
	if !d.enter() {
		return false
	}
	for i := range ss {
		if !d.value(ft.elem, unsafe.Pointer(&ss[i])) {
			return false
		}
	}
	d.depth--
	*s = ss
	return true
}

// slice decodes a slice of scalars or strings as decode_slice.go
// decodeSliceValue: nil is a nil slice, an empty array into a nil slice
// is an empty non-nil slice, and the old array is reused when it is
// large enough.
func (d *fastDecoder) slice(c byte, ft *fastType, p unsafe.Pointer) bool {
	n, ok := d.containerLen(c, 0x90, 0xdc)
	if !ok {
		return false
	}
	h := (*sliceHeader)(p)
	if n < 0 {
		*h = sliceHeader{}
		return true
	}
	if h.data == nil || h.cap < n {
		*h = sliceHeader{data: makeFastArray(ft.elem.kind, n), len: n, cap: n}
	} else {
		h.len = n
	}
	if !d.enter() {
		return false
	}
	size := ft.elem.typ.Size()
	for i := range n {
		if !d.value(ft.elem, unsafe.Add(h.data, uintptr(i)*size)) {
			return false
		}
	}
	d.depth--
	return true
}

// makeFastArray allocates a zeroed array of n elements of kind k (named
// element types share the layout of their kind). It is never nil, even
// for n == 0.
func makeFastArray(k fastKind, n int) unsafe.Pointer {
	switch k {
	case fastBool, fastInt8, fastUint8:
		return unsafe.Pointer(unsafe.SliceData(make([]uint8, n)))
	case fastInt16, fastUint16:
		return unsafe.Pointer(unsafe.SliceData(make([]uint16, n)))
	case fastInt32, fastUint32, fastFloat32:
		return unsafe.Pointer(unsafe.SliceData(make([]uint32, n)))
	case fastInt, fastUint:
		return unsafe.Pointer(unsafe.SliceData(make([]uint, n)))
	case fastInt64, fastUint64, fastFloat64:
		return unsafe.Pointer(unsafe.SliceData(make([]uint64, n)))
	case fastString:
		return unsafe.Pointer(unsafe.SliceData(make([]string, n)))
	}
	panic("codec: msgpack fast path: no array of this kind")
}

// structValue decodes a struct as decode_map.go decodeStructValue and
// decodeStruct: nil zeroes it; a map sets the fields it names and skips
// unknown keys. An array-encoded struct goes to v5.
func (d *fastDecoder) structValue(c byte, ft *fastType, p unsafe.Pointer) bool {
	n, ok := d.containerLen(c, 0x80, 0xde)
	if !ok {
		return false
	}
	if n < 0 {
		reflect.NewAt(ft.typ, p).Elem().SetZero()
		return true
	}
	if n > (len(d.b)-d.off)/2 || !d.enter() {
		return false
	}
	next := 0 // the field peers that encode in declaration order send next
	for range n {
		i := -1
		// First try the next field's key exactly as v5 encodes it.
		if next < len(ft.fields) {
			k := ft.fields[next].key
			if len(d.b)-d.off >= len(k) && string(d.b[d.off:d.off+len(k)]) == string(k) {
				d.off += len(k)
				i = next
			}
		}
		if i < 0 {
			key, ok := d.strBytes()
			if !ok {
				return false
			}
			if i = ft.lookup(key); i < 0 {
				if !d.skip() {
					return false
				}
				continue
			}
		}
		next = i + 1
		f := &ft.fields[i]
		if !d.value(f.typ, unsafe.Add(p, f.off)) {
			return false
		}
	}
	d.depth--
	return true
}

// lookup returns the index of the field named key, or -1.
func (ft *fastType) lookup(key []byte) int {
	if ft.index != nil {
		if i, ok := ft.index[string(key)]; ok {
			return i
		}
		return -1
	}
	for i := range ft.fields {
		if ft.fields[i].name == string(key) {
			return i
		}
	}
	return -1
}

// skip skips one value of any kind but an extension (which checkMsgpack
// and v5 treat in ways the fast path does not copy).
func (d *fastDecoder) skip() bool {
	c, ok := d.code()
	if !ok {
		return false
	}
	switch {
	case c <= 0x7f || c >= 0xe0:
		return true
	case c <= 0x8f:
		return d.skipElems(2 * uint64(c&0x0f))
	case c <= 0x9f:
		return d.skipElems(uint64(c & 0x0f))
	case c <= 0xbf:
		_, ok := d.take(uint64(c & 0x1f))
		return ok
	}
	switch c {
	case 0xc0, 0xc2, 0xc3:
		return true
	case 0xcc, 0xd0:
		_, ok = d.take(1)
	case 0xcd, 0xd1:
		_, ok = d.take(2)
	case 0xce, 0xd2, 0xca:
		_, ok = d.take(4)
	case 0xcf, 0xd3, 0xcb:
		_, ok = d.take(8)
	case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb:
		var n int64
		if n, ok = d.bytesLen(c); ok {
			_, ok = d.take(uint64(n))
		}
	case 0xdc, 0xdd:
		var n uint64
		if n, ok = d.uintN(2 << (c - 0xdc)); ok {
			ok = d.skipElems(n)
		}
	case 0xde, 0xdf:
		var n uint64
		if n, ok = d.uintN(2 << (c - 0xde)); ok {
			ok = d.skipElems(2 * n)
		}
	default: // extensions, 0xc1
		return false
	}
	return ok
}

// skipElems skips the n values of an array (or n/2 entries of a map).
func (d *fastDecoder) skipElems(n uint64) bool {
	if n > uint64(len(d.b)-d.off) || !d.enter() {
		return false
	}
	for range n {
		if !d.skip() {
			return false
		}
	}
	d.depth--
	return true
}
