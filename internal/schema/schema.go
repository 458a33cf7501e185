// Package schema describes Go types as the msgpack codec sees them, for
// introspection (the reserved "_seedrpc" service), the seedrpc CLI and
// typed-call checks.
//
// A Shape is the wire form of a type, not its Go form: field names are the
// names the codec writes (the `msgpack:"name"` tag or the Go name), embedded
// structs are inlined as the codec inlines them, integer widths are gone,
// and a pointer is an optional value. Go type names never appear, so
// renaming a type or a package changes nothing. A recursive type refers
// back to its enclosing shape by path ("$" is the root, "$.Next" a field,
// "$.Items[]" an element, "$.Index{}" a map value):
//
//	type Node struct {
//		Val  int
//		Next *Node
//	}
//	schema.Of(reflect.TypeFor[Node]()).String() == "{Val int, Next ?@$}"
//
// Fingerprint hashes the parts of a shape that decide whether two peers
// understand each other (kinds, field names, nesting), so equal
// fingerprints mean compatible shapes, and Diff names the first place where
// two shapes differ.
package schema

import (
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Kind is what a shape holds, as the codec writes it.
type Kind string

// The kinds of shapes.
const (
	Bool     Kind = "bool"
	Int      Kind = "int"   // any signed integer type
	Uint     Kind = "uint"  // any unsigned integer type
	Float    Kind = "float" // float32 and float64
	String   Kind = "string"
	Bytes    Kind = "bytes"    // []byte, [N]byte, encoding.BinaryMarshaler
	Time     Kind = "time"     // time.Time: the msgpack timestamp extension
	Duration Kind = "duration" // time.Duration: an integer of nanoseconds
	Array    Kind = "array"    // slices and arrays: Elem
	Map      Kind = "map"      // Key → Elem
	Struct   Kind = "struct"   // Fields; a map keyed by name unless AsArray
	Any      Kind = "any"      // interfaces and types with their own msgpack encoding
	Optional Kind = "optional" // a pointer: Elem or nil
	Ref      Kind = "ref"      // the shape at path Ref, an enclosing one (recursion)
	// Unsupported is a type the codec cannot encode (channels, functions,
	// complex numbers, uintptr); a call carrying one fails.
	Unsupported Kind = "unsupported"
)

// Shape is the wire shape of a Go type. It is a tree: recursion is broken
// by Ref shapes, so it can be encoded as it is (msgpack or JSON keys are
// the lower-case names below). Shapes are built by Of and not modified.
type Shape struct {
	Kind Kind `msgpack:"kind" json:"kind"`
	// Elem is the element of an Array, the value of a Map and the value of
	// an Optional.
	Elem *Shape `msgpack:"elem,omitempty" json:"elem,omitempty"`
	// Key is the key of a Map.
	Key *Shape `msgpack:"key,omitempty" json:"key,omitempty"`
	// Fields are the fields of a Struct in the order they are written.
	Fields []Field `msgpack:"fields,omitempty" json:"fields,omitempty"`
	// AsArray is set for a Struct written as an array of its field values
	// in order (`msgpack:",as_array"`) instead of a map keyed by name.
	AsArray bool `msgpack:"as_array,omitempty" json:"as_array,omitempty"`
	// Ref is the path of the enclosing shape a Ref stands for.
	Ref string `msgpack:"ref,omitempty" json:"ref,omitempty"`
}

// Field is one field of a Struct shape.
type Field struct {
	Name  string `msgpack:"name" json:"name"` // as written on the wire
	Shape *Shape `msgpack:"shape" json:"shape"`
	// OmitEmpty is set when the field is left out while empty, so a
	// receiver must treat a missing key as the zero value.
	OmitEmpty bool `msgpack:"omitempty,omitempty" json:"omitempty,omitempty"`
}

// Root is the path of the outermost shape.
const Root = "$"

var (
	timeType          = reflect.TypeFor[time.Time]()
	durationType      = reflect.TypeFor[time.Duration]()
	errorType         = reflect.TypeFor[error]()
	customEncoderType = reflect.TypeFor[msgpack.CustomEncoder]()
	marshalerType     = reflect.TypeFor[msgpack.Marshaler]()
	binaryType        = reflect.TypeFor[encoding.BinaryMarshaler]()
	textType          = reflect.TypeFor[encoding.TextMarshaler]()
)

// Of returns the shape of values of type t as msgpack/v5 (with the
// options the codec uses) writes them. A nil t is Any.
func Of(t reflect.Type) *Shape {
	if t == nil {
		return &Shape{Kind: Any}
	}
	b := builder{open: make(map[reflect.Type]string)}
	return b.shape(t, Root)
}

// builder walks a type; open maps the composite types being walked to
// their paths, so a type met again inside itself becomes a Ref.
type builder struct {
	open map[reflect.Type]string
}

func (b *builder) shape(t reflect.Type, path string) *Shape {
	if p, ok := b.open[t]; ok {
		if t.Kind() == reflect.Pointer {
			// Only pointers between here and there (type P *P): no
			// value can be written but nil.
			return &Shape{Kind: Any}
		}
		return &Shape{Kind: Ref, Ref: p}
	}
	// The order of the checks is msgpack/v5's (getEncoder): registered
	// types, then the marshaler interfaces, then the kind.
	switch {
	case t == timeType:
		return &Shape{Kind: Time}
	case t == durationType:
		return &Shape{Kind: Duration}
	case t.Kind() == reflect.Pointer && t.Elem() == timeType:
		return &Shape{Kind: Optional, Elem: &Shape{Kind: Time}}
	}
	if k, ok := marshalerKind(t); ok {
		return &Shape{Kind: k}
	}
	if t.Kind() != reflect.Pointer {
		if k, ok := marshalerKind(reflect.PointerTo(t)); ok {
			return &Shape{Kind: k}
		}
	}
	if t == errorType {
		return &Shape{Kind: String} // msgpack writes err.Error()
	}
	switch t.Kind() {
	case reflect.Bool:
		return &Shape{Kind: Bool}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &Shape{Kind: Int}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Shape{Kind: Uint}
	case reflect.Float32, reflect.Float64:
		return &Shape{Kind: Float}
	case reflect.String:
		return &Shape{Kind: String}
	case reflect.Interface:
		return &Shape{Kind: Any}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return &Shape{Kind: Bytes}
		}
	case reflect.Pointer, reflect.Map, reflect.Struct:
	default: // complex, chan, func, uintptr, unsafe.Pointer
		return &Shape{Kind: Unsupported}
	}

	b.open[t] = path
	defer delete(b.open, t)
	switch t.Kind() {
	case reflect.Pointer:
		return &Shape{Kind: Optional, Elem: b.shape(t.Elem(), path)}
	case reflect.Slice, reflect.Array:
		return &Shape{Kind: Array, Elem: b.shape(t.Elem(), path+"[]")}
	case reflect.Map:
		return &Shape{Kind: Map, Key: b.shape(t.Key(), path+"{key}"), Elem: b.shape(t.Elem(), path+"{}")}
	default:
		return b.structShape(t, path)
	}
}

// marshalerKind reports the kind of a type that encodes itself.
func marshalerKind(t reflect.Type) (Kind, bool) {
	switch {
	case t.Implements(customEncoderType), t.Implements(marshalerType):
		return Any, true // its own msgpack: nothing to say about it
	case t.Implements(binaryType):
		return Bytes, true
	case t.Implements(textType):
		return String, true
	}
	return "", false
}

// structShape lists the fields msgpack writes for struct t, following its
// getFields: tags, "-", omitempty, the _msgpack options field, unexported
// fields skipped, and embedded structs inlined unless a name clashes.
func (b *builder) structShape(t reflect.Type, path string) *Shape {
	s := &Shape{Kind: Struct}
	b.addFields(s, make(map[string]bool), t, path, true)
	return s
}

// addFields appends the fields of struct t to s; top is false for the
// fields of an inlined struct, whose own struct options do not apply.
func (b *builder) addFields(s *Shape, seen map[string]bool, t reflect.Type, path string, top bool) {
	omitAll := false
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts := parseTag(f.Tag.Get("msgpack"))
		if name == "-" {
			continue
		}
		if f.Name == "_msgpack" {
			if top {
				s.AsArray = s.AsArray || opts["as_array"] || opts["asArray"]
			}
			omitAll = omitAll || opts["omitempty"]
		}
		if f.Name == "_msgpack" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if f.Anonymous && !opts["noinline"] {
			if et, ok := inlinable(f.Type); ok {
				if _, busy := b.open[et]; !busy {
					b.open[et] = path
					sub := &Shape{}
					b.addFields(sub, make(map[string]bool), et, path, false)
					delete(b.open, et)
					if opts["inline"] || !clashes(seen, sub.Fields) {
						for _, sf := range sub.Fields {
							if !seen[sf.Name] { // shadowed fields are not inlined
								seen[sf.Name] = true
								s.Fields = append(s.Fields, sf)
							}
						}
						continue
					}
				}
			}
			if !f.IsExported() {
				continue
			}
		}
		if seen[name] {
			continue // a shadowed field: msgpack writes the first
		}
		seen[name] = true
		s.Fields = append(s.Fields, Field{
			Name:      name,
			Shape:     b.shape(f.Type, fieldPath(path, name)),
			OmitEmpty: omitAll || opts["omitempty"],
		})
	}
}

// inlinable returns the struct type an embedded field of type t inlines,
// if msgpack inlines it: a struct (or pointer to one) written field by
// field, not through a marshaler of its own.
func inlinable(t reflect.Type) (reflect.Type, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == timeType {
		return nil, false
	}
	if _, ok := marshalerKind(t); ok {
		return nil, false
	}
	if _, ok := marshalerKind(reflect.PointerTo(t)); ok {
		return nil, false
	}
	return t, true
}

// clashes reports whether one of fields has a name already taken.
func clashes(seen map[string]bool, fields []Field) bool {
	for _, f := range fields {
		if seen[f.Name] {
			return true
		}
	}
	return false
}

// parseTag splits a msgpack tag into its name and options ("omitempty",
// "as_array", "alias:x" gives "alias").
func parseTag(tag string) (string, map[string]bool) {
	name, rest, _ := strings.Cut(tag, ",")
	var opts map[string]bool
	for rest != "" {
		var o string
		o, rest, _ = strings.Cut(rest, ",")
		k, _, _ := strings.Cut(o, ":")
		if opts == nil {
			opts = make(map[string]bool)
		}
		opts[k] = true
	}
	return name, opts
}

// fieldPath is the path of field name inside the struct at path.
func fieldPath(path, name string) string { return path + "." + quoteName(name) }

// quoteName quotes a field name unless it is made of letters, digits and
// underscores only.
func quoteName(name string) string {
	if name == "" {
		return `""`
	}
	for _, r := range name {
		if r != '_' && !('a' <= r && r <= 'z') && !('A' <= r && r <= 'Z') && !('0' <= r && r <= '9') && r < 0x80 {
			return strconv.Quote(name)
		}
	}
	return name
}

// String returns the shape in a compact notation: kinds by name, "[]T",
// "map[K]V", "?T" for optional, "{A int, B string}" for a struct written as
// a map, "(A int, B string)" for one written as an array, "@path" for a
// reference.
func (s *Shape) String() string {
	var sb strings.Builder
	s.write(&sb, false)
	return sb.String()
}

// Canonical returns the text Fingerprint hashes: String without what does
// not change compatibility (optional markers, omitempty) and with the
// fields of map-written structs sorted by name, since their order on the
// wire does not matter.
func (s *Shape) Canonical() string {
	var sb strings.Builder
	s.write(&sb, true)
	return sb.String()
}

// Fingerprint returns 16 hex digits: the first 8 bytes of the SHA-256 of
// "seedrpc shape v1\n" and Canonical. Shapes with equal fingerprints are
// compatible (Diff finds nothing).
func (s *Shape) Fingerprint() string {
	h := sha256.Sum256([]byte("seedrpc shape v1\n" + s.Canonical()))
	return hex.EncodeToString(h[:8])
}

func (s *Shape) write(sb *strings.Builder, canonical bool) {
	if s == nil {
		sb.WriteString(string(Any))
		return
	}
	switch s.Kind {
	case Optional:
		if !canonical {
			sb.WriteByte('?')
		}
		s.Elem.write(sb, canonical)
	case Array:
		sb.WriteString("[]")
		s.Elem.write(sb, canonical)
	case Map:
		sb.WriteString("map[")
		s.Key.write(sb, canonical)
		sb.WriteByte(']')
		s.Elem.write(sb, canonical)
	case Ref:
		sb.WriteByte('@')
		sb.WriteString(s.Ref)
	case Struct:
		open, end := "{", "}"
		if s.AsArray {
			open, end = "(", ")"
		}
		fields := s.Fields
		if canonical && !s.AsArray {
			fields = slices.Clone(fields)
			slices.SortFunc(fields, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
		}
		sb.WriteString(open)
		for i, f := range fields {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString(quoteName(f.Name))
			sb.WriteByte(' ')
			f.Shape.write(sb, canonical)
		}
		sb.WriteString(end)
	default:
		sb.WriteString(string(s.Kind))
	}
}
