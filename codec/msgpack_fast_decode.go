package codec

import (
	"encoding/binary"
	"math"
	"reflect"
	"sync/atomic"
	"unsafe"
)

// Decoding, value for value as v5's Decoder with no options behind
// checkMsgpack. Every method reports false, without an error, when the
// body is anything else: truncated, of a code it does not take, too deep.

// fastDecoder reads one body.
type fastDecoder struct {
	b     []byte
	off   int
	depth int // open arrays and maps
	strs  strChunks
}

// Short strings of one body share chunks of memory instead of taking an
// allocation each: a string no longer than maxChunkedString goes into the
// current chunk, and a new chunk holds at most maxStringChunk bytes (no
// more than the body has left, and no more than the strings of the last
// body of its type took, when that is enough for the string at hand: the
// body has left is an upper bound that counts every other field too, and
// sizing by it made the chunks of a typical message three times the
// strings they held). A chunk's bytes are never written again once a
// string refers to them, so the strings are as immutable as any; the cost
// is that one short string kept alive keeps its whole chunk.
const (
	maxChunkedString = 128
	maxStringChunk   = 512
)

// strChunks is the chunk a decoder copies short strings into; both fast
// decoders use it.
type strChunks struct {
	free []byte // the unused tail of the current chunk
	// want is how many bytes the body's chunked strings are expected to
	// take in all (a strHint's reading), 0 if unknown; used counts those
	// taken so far.
	want, used int
}

// str returns b, bytes of a body, as a string of its own; left is how many
// bytes of the body follow b, which bounds the strings still to come.
func (c *strChunks) str(b []byte, left int) string {
	n := len(b)
	if n == 0 {
		return ""
	}
	if n > maxChunkedString {
		return string(b)
	}
	if len(c.free) < n {
		size := min(left+n, maxStringChunk)
		if rest := c.want - c.used; rest >= n && rest < size {
			size = rest
		}
		c.free = make([]byte, max(size, n))
	}
	copy(c.free, b)
	s := unsafe.String(&c.free[0], n)
	c.free = c.free[n:]
	c.used += n
	return s
}

// strHint remembers, per root type, how many bytes of chunked strings its
// last body took, to size the next body's chunk (see strChunks).
type strHint struct{ n atomic.Int32 }

// start sets c up to decode a body of the hint's type.
func (h *strHint) start(c *strChunks) { c.want = int(h.n.Load()) }

// done records what c took decoding a body.
func (h *strHint) done(c *strChunks) {
	if used := int32(min(c.used, maxStringChunk)); used != h.n.Load() {
		h.n.Store(used)
	}
}

// str returns b, bytes of the body ending at the offset, as a string of
// its own.
func (d *fastDecoder) str(b []byte) string { return d.strs.str(b, len(d.b)-d.off) }

// decodeFast decodes the single value in data into the value of type ft
// at p and reports whether it did, with data fully consumed.
func decodeFast(data []byte, ft *fastType, p unsafe.Pointer) bool {
	d := fastDecoder{b: data}
	ft.strs.start(&d.strs)
	ok := d.value(ft, p) && d.off == len(d.b)
	ft.strs.done(&d.strs)
	return ok
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
		*(*string)(p) = d.str(b)
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
		copy(*s, b)
	} else if len(b) >= 64<<10 {
		// Not make and copy: append fills the new array without
		// zeroing it first (a large body's zeroing cost as much as its
		// copy).
		*s = append([]byte(nil), b...)
	} else {
		*s = make([]byte, len(b))
		copy(*s, b)
	}
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
