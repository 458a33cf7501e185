package schema

import (
	"reflect"
	"testing"
)

func TestDiff(t *testing.T) {
	type item struct {
		Name  string
		Count int
	}
	type order struct {
		ID    string
		Items []item
		Tags  map[string]int
	}
	type itemNameInt struct {
		Name  int
		Count int
	}
	type orderNameInt struct {
		ID    string
		Items []itemNameInt
		Tags  map[string]int
	}
	type orderTagsStr struct {
		ID    string
		Items []item
		Tags  map[string]string
	}
	type orderTagsKey struct {
		ID    string
		Items []item
		Tags  map[int]int
	}
	type orderNoTags struct {
		ID    string
		Items []item
	}
	type orderPtrs struct {
		Tags  map[string]*int
		Items *[]*item
		ID    *string
	}
	type orderAny struct {
		ID    string
		Items any
		Tags  map[string]int
	}
	type loose struct {
		Val  int
		Next *node
	}
	type nodeStr struct {
		Val  string
		Next *nodeStr
	}
	type nodeDeep struct {
		Val  int
		Next *nodeDeepNext
	}
	type tuple2 struct {
		_msgpack struct{} `msgpack:",as_array"`
		A        int
		B        int
	}
	type tuple2Str struct {
		_msgpack struct{} `msgpack:",as_array"`
		X        int
		Y        string
	}
	type tuple1 struct {
		_msgpack struct{} `msgpack:",as_array"`
		A        int
	}

	tests := []struct {
		a, b     any
		wantPath string // "" for a match
		wantText string // Explain, when not ""
	}{
		{order{}, order{}, "", ""},
		{order{}, orderPtrs{}, "", ""}, // pointers and field order do not matter
		{order{}, orderAny{}, "", ""},  // any takes anything
		{order{}, orderNameInt{}, "$.Items[].Name", "at $.Items[].Name: string vs int"},
		{order{}, orderTagsStr{}, "$.Tags{}", "at $.Tags{}: int vs string"},
		{order{}, orderTagsKey{}, "$.Tags{key}", "at $.Tags{key}: string vs int"},
		{order{}, orderNoTags{}, "$.Tags", "at $.Tags: map[string]int vs no field"},
		{orderNoTags{}, order{}, "$.Tags", "at $.Tags: no field vs map[string]int"},
		{order{}, []order{}, "$", ""},
		{0, uint(0), "$", "at $: int vs uint"},
		{node{}, node{}, "", ""},
		{node{}, loose{}, "", ""},        // one level unrolled: still the same
		{node{}, nodeStr{}, "$.Val", ""}, // recursion compared, first difference found
		{nodeDeep{}, node{}, "$.Next.Next.Next", "at $.Next.Next.Next: string vs {Val int, Next ?@$}"}, // found down the recursion
		{tree{}, tree{}, "", ""},
		{tuple2{}, tuple2Str{}, "$.B", "at $.B: int vs string"},
		{tuple2{}, tuple1{}, "$.B", "at $.B: int vs no field"},
		{tuple2{}, Args{}, "$", "at $: (A int, B int) vs {A int, B int}"},
	}
	for _, tt := range tests {
		a, b := Of(reflect.TypeOf(tt.a)), Of(reflect.TypeOf(tt.b))
		path, ok := Diff(a, b)
		if ok != (tt.wantPath == "") || path != tt.wantPath {
			t.Errorf("Diff(%s, %s) = %q, %v; want %q", a, b, path, ok, tt.wantPath)
		}
		if tt.wantText != "" {
			if got := Compare(a, b).Explain(); got != tt.wantText {
				t.Errorf("Compare(%s, %s).Explain() = %q, want %q", a, b, got, tt.wantText)
			}
		}
	}
}

type nodeDeepNext struct {
	Val  int
	Next *nodeDeepNext2
}

type nodeDeepNext2 struct {
	Val  int
	Next string
}

// TestDiffFingerprint checks that Diff and Fingerprint agree: shapes
// without any and without differently unrolled recursion match exactly
// when their fingerprints are equal.
func TestDiffFingerprint(t *testing.T) {
	type a1 struct {
		X int
		Y []string
	}
	type a2 struct {
		Y []string
		X *int
	}
	type a3 struct {
		X int
		Y []byte
	}
	type a4 struct {
		X int
		Z []string
	}
	types := []any{Args{}, a1{}, a2{}, a3{}, a4{}, tagged{}, tuple{}, times{}, node{}, tree{}, list{}, 0, "", []int{}, map[string]Args{}}
	for _, x := range types {
		for _, y := range types {
			sx, sy := Of(reflect.TypeOf(x)), Of(reflect.TypeOf(y))
			_, ok := Diff(sx, sy)
			same := sx.Fingerprint() == sy.Fingerprint()
			if ok != same {
				t.Errorf("%T vs %T: Diff ok = %v but equal fingerprints = %v", x, y, ok, same)
			}
		}
	}
}

// TestDiffMalformed checks that shapes from the network cannot make Diff
// loop or panic: nil parts, dangling and self-referencing Refs.
func TestDiffMalformed(t *testing.T) {
	loop := &Shape{Kind: Ref, Ref: "$"}
	shapes := []*Shape{
		nil,
		{Kind: Array},
		{Kind: Map},
		{Kind: Struct, Fields: []Field{{Name: "A"}}},
		{Kind: Ref, Ref: "$.nowhere"},
		loop,
		{Kind: Optional},
		{Kind: "martian"},
	}
	for _, a := range shapes {
		for _, b := range shapes {
			Diff(a, b)
			_ = a.String()
			_ = a.Fingerprint()
		}
	}
}
