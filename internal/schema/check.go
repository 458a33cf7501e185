package schema

// Check compares the shape a caller uses (a) with the one the server
// declares (b) under the compatibility rule of typed calls; it returns the
// first incompatibility, or a zero Mismatch. It is Compare, except for
// fields of map-written structs that one side has and the other lacks:
//
//   - such a field is allowed when the side that has it marks it optional:
//     `msgpack:",omitempty"` (or a struct-level omitempty) or a pointer. The
//     side that lacks it drops it on decoding or leaves it at its zero
//     value, which the side declaring it optional is ready for;
//   - within one struct, such fields may be on one side only: a struct in
//     which each side has a field the other lacks (what renaming a field
//     looks like) is a mismatch, reported at a's first such field, even
//     when both are optional;
//   - a field that is not optional and that the other side lacks is a
//     mismatch.
//
// Everything else is as strict as Compare: kinds must be equal (int, uint,
// float, duration and time are distinct; an optional marker does not
// count; any matches everything), tuples (`msgpack:",as_array"`) must have
// the same fields in the same order, and a map's key and value, an array's
// element, must match.
func Check(a, b *Shape) Mismatch {
	d := differ{
		ra:      Index(a),
		rb:      Index(b),
		seen:    make(map[[2]*Shape]bool),
		lenient: true,
	}
	return d.diff(a, b, Root)
}

// optionalField reports whether a receiver lacking f is fine: f is left
// out while empty, or is a pointer.
func optionalField(f Field) bool {
	return f.OmitEmpty || (f.Shape != nil && f.Shape.Kind == Optional)
}
