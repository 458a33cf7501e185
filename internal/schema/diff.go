package schema

import "fmt"

// Diff compares two shapes, a against b, as a receiver would: optional
// markers and omitempty do not matter, a struct written as a map matches
// by field name whatever the order, an Any matches every shape, and a Ref
// is followed to the shape it stands for. It returns ok, or the path of
// the first difference ("$" itself, "$.Items[].Name", "$.Tags{}" for a map
// value, "$.Tags{key}" for its key): a field missing on one side, or two
// shapes of different kinds there. Explain says what differs.
func Diff(a, b *Shape) (path string, ok bool) {
	m := Compare(a, b)
	return m.Path, m.Path == ""
}

// Mismatch is the first difference Compare found.
type Mismatch struct {
	Path string // "" when the shapes match
	A, B string // what each side has at Path: a shape, or "no field"
}

// Explain returns "at $.B: int vs string", or "" when nothing differs.
func (m Mismatch) Explain() string {
	if m.Path == "" {
		return ""
	}
	return fmt.Sprintf("at %s: %s vs %s", m.Path, m.A, m.B)
}

// Compare is Diff returning what differs as well as where.
func Compare(a, b *Shape) Mismatch {
	d := differ{
		ra:   Index(a),
		rb:   Index(b),
		seen: make(map[[2]*Shape]bool),
	}
	return d.diff(a, b, Root)
}

type differ struct {
	ra, rb Refs // the shapes Refs of each side can name
	// lenient applies Check's rule to fields one side lacks.
	lenient bool
	// seen holds the pairs being compared, so that comparing recursive
	// shapes ends: a pair met again inside itself matches.
	seen map[[2]*Shape]bool
}

func (d *differ) diff(a, b *Shape, path string) Mismatch {
	a, b = resolve(a, d.ra), resolve(b, d.rb)
	if a.Kind == Any || b.Kind == Any {
		return Mismatch{}
	}
	if a.Kind != b.Kind || a.AsArray != b.AsArray {
		return Mismatch{Path: path, A: brief(a), B: brief(b)}
	}
	pair := [2]*Shape{a, b}
	if d.seen[pair] {
		return Mismatch{}
	}
	d.seen[pair] = true
	switch a.Kind {
	case Array:
		return d.diff(a.Elem, b.Elem, path+"[]")
	case Map:
		if m := d.diff(a.Key, b.Key, path+"{key}"); m.Path != "" {
			return m
		}
		return d.diff(a.Elem, b.Elem, path+"{}")
	case Struct:
		if a.AsArray {
			return d.tuple(a, b, path)
		}
		return d.fields(a, b, path)
	}
	return Mismatch{}
}

// fields compares structs written as maps: by name, in a's order, then
// the fields only b has. When lenient, a field one side lacks is allowed
// if it is optional there, unless both sides have such fields (a rename):
// the first of a's is then reported.
func (d *differ) fields(a, b *Shape, path string) Mismatch {
	inB := make(map[string]*Shape, len(b.Fields))
	for _, f := range b.Fields {
		inB[f.Name] = f.Shape
	}
	inA := make(map[string]bool, len(a.Fields))
	var onlyA Mismatch // the first optional field only a has (lenient)
	for _, f := range a.Fields {
		inA[f.Name] = true
		fp := fieldPath(path, f.Name)
		bs, ok := inB[f.Name]
		if !ok {
			m := Mismatch{Path: fp, A: brief(resolve(f.Shape, d.ra)), B: "no field"}
			if !d.lenient || !optionalField(f) {
				return m
			}
			if onlyA.Path == "" {
				onlyA = m
			}
			continue
		}
		if m := d.diff(f.Shape, bs, fp); m.Path != "" {
			return m
		}
	}
	for _, f := range b.Fields {
		if !inA[f.Name] {
			m := Mismatch{Path: fieldPath(path, f.Name), A: "no field", B: brief(resolve(f.Shape, d.rb))}
			if !d.lenient || !optionalField(f) || onlyA.Path != "" {
				if onlyA.Path != "" {
					return onlyA // fields on both sides that the other lacks: a rename
				}
				return m
			}
		}
	}
	return Mismatch{}
}

// tuple compares structs written as arrays: by position, since names do
// not travel; the path names a's field (b's when a has none there).
func (d *differ) tuple(a, b *Shape, path string) Mismatch {
	for i := range max(len(a.Fields), len(b.Fields)) {
		switch {
		case i >= len(b.Fields):
			return Mismatch{Path: fieldPath(path, a.Fields[i].Name), A: brief(resolve(a.Fields[i].Shape, d.ra)), B: "no field"}
		case i >= len(a.Fields):
			return Mismatch{Path: fieldPath(path, b.Fields[i].Name), A: "no field", B: brief(resolve(b.Fields[i].Shape, d.rb))}
		}
		if m := d.diff(a.Fields[i].Shape, b.Fields[i].Shape, fieldPath(path, a.Fields[i].Name)); m.Path != "" {
			return m
		}
	}
	return Mismatch{}
}

// resolve strips optional markers and follows Refs (at most a few hops: a
// Ref never names another Ref, but a malformed shape from the network
// might).
func resolve(s *Shape, refs Refs) *Shape {
	for range 64 {
		switch {
		case s == nil:
			return &Shape{Kind: Any}
		case s.Kind == Optional:
			s = s.Elem
		case s.Kind == Ref:
			t, ok := refs[s.Ref]
			if !ok {
				return &Shape{Kind: Any} // dangling: nothing to compare
			}
			s = t
		default:
			return s
		}
	}
	return &Shape{Kind: Any}
}

// brief describes a shape in a mismatch: the notation of String, cut short.
func brief(s *Shape) string {
	str := s.String()
	if len(str) > 60 {
		str = str[:57] + "..."
	}
	return str
}

// Refs maps the paths of the shapes in one tree to them, as Ref shapes
// name them (an optional marker takes no path of its own).
type Refs map[string]*Shape

// Index returns the Refs of the tree under root.
func Index(root *Shape) Refs {
	m := make(Refs)
	var walk func(s *Shape, path string, depth int)
	walk = func(s *Shape, path string, depth int) {
		for s != nil && s.Kind == Optional {
			s = s.Elem
		}
		if s == nil || depth > 256 {
			return
		}
		if _, dup := m[path]; !dup && s.Kind != Ref {
			m[path] = s
		}
		switch s.Kind {
		case Array:
			walk(s.Elem, path+"[]", depth+1)
		case Map:
			walk(s.Key, path+"{key}", depth+1)
			walk(s.Elem, path+"{}", depth+1)
		case Struct:
			for _, f := range s.Fields {
				walk(f.Shape, fieldPath(path, f.Name), depth+1)
			}
		}
	}
	walk(root, Root, 0)
	return m
}

// Follow returns the shape s stands for: s itself unless it is a Ref, and
// Any for a nil shape or a Ref to nothing.
func (r Refs) Follow(s *Shape) *Shape {
	for range 64 {
		switch {
		case s == nil:
			return &Shape{Kind: Any}
		case s.Kind != Ref:
			return s
		}
		t, ok := r[s.Ref]
		if !ok {
			return &Shape{Kind: Any}
		}
		s = t
	}
	return &Shape{Kind: Any}
}
