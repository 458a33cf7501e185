package codec

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"reflect"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Decoding, value for value as encoding/json's Unmarshal. Every method
// reports false, without an error, when the body is anything it is not
// sure to decode as encoding/json would; the caller then hands the body to
// encoding/json.

// jsonUnmarshalFast decodes data into v, or reports false if v is not
// eligible for the fast path or data is not a body the fast path is sure
// to decode as encoding/json would; v may then hold part of data, but only
// when data is valid JSON.
func jsonUnmarshalFast(data []byte, v any) bool {
	elem, ptr, ok := decodeTarget(v)
	if !ok {
		return false
	}
	p := jsonPlanFor(elem)
	if p.root == nil {
		return false
	}
	// encoding/json checks the whole body before it writes anything, so
	// a body with a syntax error leaves the target as it was. The decoder
	// below succeeds only on valid bodies, but fails part way. A target
	// that is all zero bytes (a new value, as servers decode arguments
	// into) is simply zeroed again when it fails: all the decoder wrote
	// is in its bytes or in memory it allocated itself. Any other target
	// has the body checked first.
	zero := jsonZeroBytes(ptr, elem.Size())
	if !zero && !jsonValid(data) {
		return false
	}
	d := jsonDecoder{b: data}
	p.root.strs.start(&d.strs)
	d.space()
	if d.value(p.root, ptr) {
		d.space()
		if d.off == len(d.b) {
			p.root.strs.done(&d.strs)
			return true
		}
	}
	if zero {
		reflect.NewAt(elem, ptr).Elem().SetZero()
	}
	return false
}

// jsonZeroBytes reports whether the n bytes at p are all zero.
func jsonZeroBytes(p unsafe.Pointer, n uintptr) bool {
	b := unsafe.Slice((*byte)(p), n)
	for len(b) >= 8 {
		if binary.NativeEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

//------------------------------------------------------------------------------
// Validation.

// maxJSONValidDepth is how deeply jsonValid lets arrays and objects nest;
// deeper bodies go to encoding/json (whose limit is 10000).
const maxJSONValidDepth = 256

// jsonValid reports whether data is one JSON value (RFC 8259, as
// encoding/json's scanner reads it: any byte but control bytes, quotes and
// backslashes inside strings) surrounded by white space, nested at most
// maxJSONValidDepth deep. It never reports true for a body encoding/json
// refuses.
func jsonValid(data []byte) bool {
	end, ok := jsonValidValue(data, jsonSkipSpace(data, 0))
	return ok && jsonSkipSpace(data, end) == len(data)
}

// jsonValidValue checks the value that starts at data[i] as jsonValid
// does and returns the offset after it.
func jsonValidValue(data []byte, i int) (int, bool) {
	// stack holds a bit per open container: 1 for an object.
	var stack [maxJSONValidDepth / 64]uint64
	depth := 0
	for {
		// A value.
		if i >= len(data) {
			return i, false
		}
		switch c := data[i]; c {
		case '{', '[':
			if depth == maxJSONValidDepth {
				return i, false
			}
			w, bit := depth/64, uint64(1)<<(depth%64)
			depth++
			i = jsonSkipSpace(data, i+1)
			if c == '{' {
				stack[w] |= bit
				if i < len(data) && data[i] == '}' {
					depth--
					i++
					break
				}
				// The first key.
				var ok bool
				if i, ok = jsonValidString(data, i); !ok {
					return i, false
				}
				i = jsonSkipSpace(data, i)
				if i >= len(data) || data[i] != ':' {
					return i, false
				}
				i = jsonSkipSpace(data, i+1)
				continue
			}
			stack[w] &^= bit
			if i < len(data) && data[i] == ']' {
				depth--
				i++
				break
			}
			continue
		case '"':
			var ok bool
			if i, ok = jsonValidString(data, i); !ok {
				return i, false
			}
		case 't':
			if len(data)-i < 4 || string(data[i:i+4]) != "true" {
				return i, false
			}
			i += 4
		case 'f':
			if len(data)-i < 5 || string(data[i:i+5]) != "false" {
				return i, false
			}
			i += 5
		case 'n':
			if len(data)-i < 4 || string(data[i:i+4]) != "null" {
				return i, false
			}
			i += 4
		default:
			var ok bool
			if i, ok = jsonValidNumber(data, i); !ok {
				return i, false
			}
		}
		// After a value: close containers, or find the next value.
		for {
			if depth == 0 {
				return i, true
			}
			i = jsonSkipSpace(data, i)
			if i >= len(data) {
				return i, false
			}
			inObject := stack[(depth-1)/64]&(uint64(1)<<((depth-1)%64)) != 0
			c := data[i]
			if c == ',' {
				i = jsonSkipSpace(data, i+1)
				if inObject {
					var ok bool
					if i, ok = jsonValidString(data, i); !ok {
						return i, false
					}
					i = jsonSkipSpace(data, i)
					if i >= len(data) || data[i] != ':' {
						return i, false
					}
					i = jsonSkipSpace(data, i+1)
				}
				break
			}
			if inObject && c == '}' || !inObject && c == ']' {
				depth--
				i++
				continue
			}
			return i, false
		}
	}
}

// jsonSkipSpace returns the offset of the first byte at or after i that is
// not JSON white space.
func jsonSkipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		}
		break
	}
	return i
}

// jsonValidString checks the string starting at data[i] (which must be a
// quote) and returns the offset after its closing quote.
func jsonValidString(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return i, false
	}
	i++
	for {
		i = jsonPlainRun(data, i)
		if i >= len(data) {
			return i, false
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(data) {
				return i, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(data)-i < 6 {
					return i, false
				}
				for _, h := range data[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return i, false
					}
				}
				i += 6
			default:
				return i, false
			}
		default: // a control byte
			return i, false
		}
	}
}

// jsonPlainRun returns the offset of the first byte at or after i that is
// a quote, a backslash or a control byte (or len(data)), eight bytes at a
// time where it can.
func jsonPlainRun(data []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for len(data)-i >= 8 {
		x := binary.LittleEndian.Uint64(data[i:])
		q := x ^ (ones * '"')
		s := x ^ (ones * '\\')
		// A byte below 0x20, or equal to '"' or '\\', sets its high bit
		// (and may set those of the bytes above it).
		if ((x-ones*0x20)|(q-ones)|(s-ones))&^x&highs != 0 {
			break
		}
		i += 8
	}
	for i < len(data) {
		c := data[i]
		if c < 0x20 || c == '"' || c == '\\' {
			return i
		}
		i++
	}
	return i
}

// jsonPlainASCII8 reports whether the eight bytes of x are all ASCII and
// none is a quote, a backslash or a control byte.
func jsonPlainASCII8(x uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	q := x ^ (ones * '"')
	s := x ^ (ones * '\\')
	return (x|((x-ones*0x20)|(q-ones)|(s-ones))&^x)&highs == 0
}

// jsonValidNumber checks the number starting at data[i] and returns the
// offset after it: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsonValidNumber(data []byte, i int) (int, bool) {
	if i < len(data) && data[i] == '-' {
		i++
	}
	if i >= len(data) {
		return i, false
	}
	switch c := data[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i = jsonDigits(data, i+1)
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		j := jsonDigits(data, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := jsonDigits(data, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

// jsonDigits returns the offset of the first non-digit at or after i.
func jsonDigits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

//------------------------------------------------------------------------------
// Decoding a valid body.

// jsonDecoder reads one body. It may read a body that was not checked
// first, so it never reports success on one that is not valid JSON; it
// may report failure part way through it.
type jsonDecoder struct {
	b    []byte
	off  int
	strs strChunks
}

// after reads what follows a value in an array or object: the closing
// byte (end reports true) or a comma, with the white space around them;
// ok is false for anything else.
func (d *jsonDecoder) after(closing byte) (end, ok bool) {
	d.space()
	if d.off >= len(d.b) {
		return false, false
	}
	c := d.b[d.off]
	d.off++
	if c == closing {
		return true, true
	}
	if c != ',' {
		return false, false
	}
	d.space()
	return false, true
}

// space skips white space.
func (d *jsonDecoder) space() {
	if d.off < len(d.b) && d.b[d.off] > ' ' {
		return
	}
	d.off = jsonSkipSpace(d.b, d.off)
}

// str returns b as a string of its own, short ones sharing chunks.
func (d *jsonDecoder) str(b []byte) string { return d.strs.str(b, len(d.b)-d.off) }

// number returns the number at the offset and moves past it, or reports
// false if there is no valid number there.
func (d *jsonDecoder) number() ([]byte, bool) {
	start := d.off
	end, ok := jsonValidNumber(d.b, start)
	if !ok {
		return nil, false
	}
	d.off = end
	return d.b[start:end], true
}

// stringBytes reads the string at the offset (a quote) and returns its
// content unquoted as encoding/json unquotes it (decode.go unquoteBytes).
// The result aliases the body when the string has no escapes and is valid
// UTF-8; otherwise it is a new slice.
func (d *jsonDecoder) stringBytes() ([]byte, bool) {
	if d.off >= len(d.b) || d.b[d.off] != '"' {
		return nil, false
	}
	start := d.off + 1
	// One pass for the common string: no escapes, valid UTF-8.
	b := d.b
	i := start
	for i < len(b) {
		c := b[i]
		if c < utf8.RuneSelf {
			if c == '"' {
				d.off = i + 1
				return b[start:i], true
			}
			if c == '\\' || c < 0x20 {
				break
			}
			i++
			// Runs of plain ASCII, eight bytes at a time.
			for len(b)-i >= 8 && jsonPlainASCII8(binary.LittleEndian.Uint64(b[i:])) {
				i += 8
			}
			continue
		}
		// Three-byte runes that are valid whatever their continuation
		// bytes (not led by 0xE0 or 0xED), then two-byte runes.
		if i+2 < len(b) && (c >= 0xE1 && c <= 0xEC || c == 0xEE || c == 0xEF) &&
			b[i+1]&0xC0 == 0x80 && b[i+2]&0xC0 == 0x80 {
			i += 3
			continue
		}
		if i+1 < len(b) && c >= 0xC2 && c <= 0xDF && b[i+1]&0xC0 == 0x80 {
			i += 2
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	// Escapes or invalid UTF-8: find the closing quote, then unquote.
	end, ok := jsonValidString(b, d.off)
	if !ok {
		return nil, false
	}
	d.off = end
	return jsonUnquote(b[start : end-1]), true
}

// jsonUnquote is decode.go unquoteBytes on the content of a valid string:
// escapes resolved (an unpaired or invalid surrogate becomes U+FFFD) and
// every invalid UTF-8 byte replaced by U+FFFD.
func jsonUnquote(s []byte) []byte {
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	for r := 0; r < len(s); {
		c := s[r]
		switch {
		case c == '\\':
			if r+1 >= len(s) {
				return b // not in a valid string
			}
			switch e := s[r+1]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				rr := jsonHex4(s[r:])
				r += 6
				if utf16.IsSurrogate(rr) {
					rr1 := jsonHex4(s[r:])
					if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
						r += 6
						b = utf8.AppendRune(b, dec)
						continue
					}
					rr = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, rr)
				continue
			default: // '"', '\\', '/'
				b = append(b, e)
			}
			r += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			r++
		default:
			rr, size := utf8.DecodeRune(s[r:])
			r += size
			b = utf8.AppendRune(b, rr)
		}
	}
	return b
}

// jsonHex4 is decode.go getu4: the rune of a \uXXXX escape at the start of
// s, or -1.
func jsonHex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// skip moves past the value at the offset, checking it.
func (d *jsonDecoder) skip() bool {
	end, ok := jsonValidValue(d.b, d.off)
	d.off = end
	return ok
}

// isNull reports whether the value at the offset is null, and moves past
// it if so.
func (d *jsonDecoder) isNull() bool {
	if len(d.b)-d.off >= 4 && string(d.b[d.off:d.off+4]) == "null" {
		d.off += 4
		return true
	}
	return false
}

// word moves past w if it is at the offset.
func (d *jsonDecoder) word(w string) bool {
	if len(d.b)-d.off >= len(w) && string(d.b[d.off:d.off+len(w)]) == w {
		d.off += len(w)
		return true
	}
	return false
}

// colon moves past a colon and the white space around it.
func (d *jsonDecoder) colon() bool {
	d.space()
	if d.off >= len(d.b) || d.b[d.off] != ':' {
		return false
	}
	d.off++
	d.space()
	return true
}

// value decodes the value at the offset into the value of type ft at p
// (decode.go value, literalStore, array, object).
func (d *jsonDecoder) value(ft *jsonType, p unsafe.Pointer) bool {
	if d.off >= len(d.b) {
		return false
	}
	c := d.b[d.off]
	switch ft.kind {
	case jsonBool:
		switch {
		case d.word("true"):
			*(*bool)(p) = true
		case d.word("false"):
			*(*bool)(p) = false
		case d.isNull(): // null leaves a scalar alone
		default:
			return false
		}
		return true
	case jsonInt, jsonInt8, jsonInt16, jsonInt32, jsonInt64:
		if c != '-' && (c < '0' || c > '9') {
			return d.isNull()
		}
		neg, u, ok := d.integer()
		if !ok {
			return false
		}
		var n int64
		switch {
		case neg && u <= 1<<63:
			n = -int64(u)
		case !neg && u <= math.MaxInt64:
			n = int64(u)
		default:
			return false
		}
		return storeJSONInt(ft.kind, p, n)
	case jsonUint, jsonUint8, jsonUint16, jsonUint32, jsonUint64:
		if c < '0' || c > '9' {
			return d.isNull()
		}
		_, n, ok := d.integer() // c is a digit: not negative
		if !ok {
			return false
		}
		return storeJSONUint(ft.kind, p, n)
	case jsonFloat32, jsonFloat64:
		if d.isNull() {
			return true
		}
		if c != '-' && (c < '0' || c > '9') {
			return false
		}
		lit, ok := d.number()
		if !ok {
			return false
		}
		bits := 64
		if ft.kind == jsonFloat32 {
			bits = 32
		}
		f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(lit), len(lit)), bits)
		if err != nil {
			return false
		}
		if ft.kind == jsonFloat32 {
			if math.Abs(f) > math.MaxFloat32 {
				return false
			}
			*(*float32)(p) = float32(f)
		} else {
			*(*float64)(p) = f
		}
		return true
	case jsonString:
		if c != '"' {
			return d.isNull()
		}
		s, ok := d.stringBytes()
		if !ok {
			return false
		}
		*(*string)(p) = d.str(s)
		return true
	case jsonBytes: // literalStore: base64 of the unquoted string
		if d.isNull() {
			*(*[]byte)(p) = nil
			return true
		}
		if c != '"' {
			return false // an array of numbers, or a type error
		}
		s, ok := d.stringBytes()
		if !ok {
			return false
		}
		b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(b, s)
		if err != nil {
			return false
		}
		*(*[]byte)(p) = b[:n]
		return true
	case jsonSlice:
		if d.isNull() {
			*(*sliceHeader)(p) = sliceHeader{}
			return true
		}
		if c != '[' {
			return false
		}
		return d.slice(ft, p)
	case jsonMap:
		if d.isNull() {
			*(*unsafe.Pointer)(p) = nil
			return true
		}
		if c != '{' {
			return false
		}
		return d.mapValue(ft, p)
	case jsonPtr: // decode.go indirect: null sets nil, else into the target
		if d.isNull() {
			*(*unsafe.Pointer)(p) = nil
			return true
		}
		q := *(*unsafe.Pointer)(p)
		if q == nil {
			q = reflect.New(ft.elem.typ).UnsafePointer()
			*(*unsafe.Pointer)(p) = q
		}
		return d.value(ft.elem, q)
	case jsonStruct:
		if d.isNull() {
			return true
		}
		if c != '{' {
			return false
		}
		return d.structValue(ft, p)
	}
	return false
}

// integer reads an integer: a JSON number without a fraction or an
// exponent (encoding/json refuses those for integer kinds), whose
// magnitude fits in a uint64. It reports false, without moving, for
// anything else.
func (d *jsonDecoder) integer() (neg bool, n uint64, ok bool) {
	b, i := d.b, d.off
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	if i >= len(b) {
		return false, 0, false
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		n = uint64(c - '0')
		i++
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			digit := uint64(b[i] - '0')
			if n > (math.MaxUint64-digit)/10 {
				return false, 0, false
			}
			n = n*10 + digit
			i++
		}
	default:
		return false, 0, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return false, 0, false
	}
	d.off = i
	return neg, n, true
}

// storeJSONInt stores n at p if it fits the kind k.
func storeJSONInt(k jsonKind, p unsafe.Pointer, n int64) bool {
	switch k {
	case jsonInt:
		if n < math.MinInt || n > math.MaxInt {
			return false
		}
		*(*int)(p) = int(n)
	case jsonInt8:
		if n < math.MinInt8 || n > math.MaxInt8 {
			return false
		}
		*(*int8)(p) = int8(n)
	case jsonInt16:
		if n < math.MinInt16 || n > math.MaxInt16 {
			return false
		}
		*(*int16)(p) = int16(n)
	case jsonInt32:
		if n < math.MinInt32 || n > math.MaxInt32 {
			return false
		}
		*(*int32)(p) = int32(n)
	case jsonInt64:
		*(*int64)(p) = n
	}
	return true
}

// storeJSONUint stores n at p if it fits the kind k.
func storeJSONUint(k jsonKind, p unsafe.Pointer, n uint64) bool {
	switch k {
	case jsonUint:
		if n > math.MaxUint {
			return false
		}
		*(*uint)(p) = uint(n)
	case jsonUint8:
		if n > math.MaxUint8 {
			return false
		}
		*(*uint8)(p) = uint8(n)
	case jsonUint16:
		if n > math.MaxUint16 {
			return false
		}
		*(*uint16)(p) = uint16(n)
	case jsonUint32:
		if n > math.MaxUint32 {
			return false
		}
		*(*uint32)(p) = uint32(n)
	case jsonUint64:
		*(*uint64)(p) = n
	}
	return true
}

// slice decodes an array into the slice at p as decode.go array does: the
// elements go into the slice's old array, in place (also those between
// its length and capacity), which grows only when full; an empty array is
// an empty non-nil slice.
func (d *jsonDecoder) slice(ft *jsonType, p unsafe.Pointer) bool {
	d.off++ // '['
	h := (*sliceHeader)(p)
	size := ft.elem.typ.Size()
	i := 0
	d.space()
	if d.off < len(d.b) && d.b[d.off] == ']' {
		d.off++
		*h = sliceHeader{data: reflect.MakeSlice(ft.typ, 0, 0).UnsafePointer()}
		return true
	}
	for {
		if i >= h.cap {
			// reflect's Grow, which encoding/json uses, keeps the length
			// (i) and zeroes the rest.
			s := reflect.NewAt(ft.typ, p).Elem()
			s.Grow(1)
		}
		if i >= h.len {
			h.len = i + 1
		}
		if !d.value(ft.elem, unsafe.Add(h.data, uintptr(i)*size)) {
			return false
		}
		i++
		end, ok := d.after(']')
		if !ok {
			return false
		}
		if end {
			break
		}
	}
	h.len = i
	return true
}

// mapValue decodes an object into the map at p as decode.go object does:
// a nil map is made, every key set to its value decoded into a zero
// element (so old keys stay and repeated keys take the last value).
func (d *jsonDecoder) mapValue(ft *jsonType, p unsafe.Pointer) bool {
	m := reflect.NewAt(ft.typ, p).Elem()
	if m.IsNil() {
		m.Set(reflect.MakeMap(ft.typ))
	}
	elem := reflect.New(ft.elem.typ).Elem()
	ep := elem.Addr().UnsafePointer()
	d.off++ // '{'
	d.space()
	if d.off < len(d.b) && d.b[d.off] == '}' {
		d.off++
		return true
	}
	for {
		key, ok := d.stringBytes()
		if !ok {
			return false
		}
		if !d.colon() {
			return false
		}
		elem.SetZero()
		if !d.value(ft.elem, ep) {
			return false
		}
		kv := reflect.New(ft.typ.Key()).Elem()
		kv.SetString(string(key))
		m.SetMapIndex(kv, elem)
		end, ok := d.after('}')
		if !ok {
			return false
		}
		if end {
			return true
		}
	}
}

// structValue decodes an object into the struct at p as decode.go object
// does: each key names the field of that exact name, or else the first
// field whose folded name is the key's folded; other keys are skipped.
func (d *jsonDecoder) structValue(ft *jsonType, p unsafe.Pointer) bool {
	d.off++ // '{'
	d.space()
	if d.off < len(d.b) && d.b[d.off] == '}' {
		d.off++
		return true
	}
	next := 0 // the field expected next: bodies usually keep field order
	for {
		// The key, compared first with the quoted name of the field
		// expected next, as is.
		i := -1
		if next < len(ft.fields) {
			q := ft.fields[next].quoted
			if len(d.b)-d.off >= len(q) && string(d.b[d.off:d.off+len(q)]) == q {
				i = next
				d.off += len(q)
			}
		}
		if i < 0 {
			key, ok := d.stringBytes()
			if !ok {
				return false
			}
			i = ft.lookup(key)
		}
		if !d.colon() {
			return false
		}
		if i < 0 {
			if !d.skip() {
				return false
			}
		} else {
			f := &ft.fields[i]
			if !d.value(f.typ, unsafe.Add(p, f.off)) {
				return false
			}
			next = i + 1
		}
		end, ok := d.after('}')
		if !ok {
			return false
		}
		if end {
			return true
		}
	}
}

// lookup returns the index of the field key names, or -1.
func (ft *jsonType) lookup(key []byte) int {
	if ft.exact != nil {
		if i, ok := ft.exact[string(key)]; ok {
			return i
		}
	} else {
		for i := range ft.fields {
			if ft.fields[i].name == string(key) {
				return i
			}
		}
	}
	var buf [64]byte
	folded := appendFoldedJSONKey(buf[:0], key)
	if i, ok := ft.folded[string(folded)]; ok {
		return i
	}
	return -1
}
