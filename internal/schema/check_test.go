package schema

import (
	"reflect"
	"testing"
)

// TestCheck tests the compatibility rule of typed calls: a field one side
// lacks is allowed when the side having it marks it optional, unless both
// sides have such fields (a rename); kinds are strict.
func TestCheck(t *testing.T) {
	type base struct {
		Name string
		Qty  int
	}
	type sameOtherOrder struct {
		Qty  int32
		Name string
	}
	type renamed struct {
		Title string
		Qty   int
	}
	type addedOmitEmpty struct {
		Name string
		Qty  int
		Note string `msgpack:",omitempty"`
	}
	type addedPointer struct {
		Name string
		Qty  int
		Note *string
	}
	type addedRequired struct {
		Name string
		Qty  int
		Note string
	}
	type optName struct {
		Name string `msgpack:",omitempty"`
	}
	type optTitle struct {
		Title string `msgpack:",omitempty"`
	}
	type allOmit struct {
		_msgpack struct{} `msgpack:",omitempty"`
		Name     string
		Qty      int
		Note     string
	}
	type nested struct {
		Items []base
	}
	type nestedAdded struct {
		Items []addedOmitEmpty
	}
	type nestedRenamed struct {
		Items []renamed
	}
	type uintQty struct {
		Name string
		Qty  uint
	}
	type floatQty struct {
		Name string
		Qty  float64
	}
	type tuple2 struct {
		_msgpack struct{} `msgpack:",as_array"`
		A, B     int
	}
	type tuple3 struct {
		_msgpack struct{} `msgpack:",as_array"`
		A, B     int
		C        *int
	}

	tests := []struct {
		name     string
		a, b     any
		wantText string // "" for compatible
	}{
		{"same", base{}, base{}, ""},
		{"field order and int widths", base{}, sameOtherOrder{}, ""},
		{"renamed", renamed{}, base{}, "at $.Title: string vs no field"},
		{"renamed, other side", base{}, renamed{}, "at $.Name: string vs no field"},
		{"omitempty field added on a", addedOmitEmpty{}, base{}, ""},
		{"omitempty field added on b", base{}, addedOmitEmpty{}, ""},
		{"pointer field added", addedPointer{}, base{}, ""},
		{"struct-level omitempty", allOmit{}, base{}, ""},
		{"required field added on a", addedRequired{}, base{}, "at $.Note: string vs no field"},
		{"required field added on b", base{}, addedRequired{}, "at $.Note: no field vs string"},
		{"optional field renamed", optName{}, optTitle{}, "at $.Name: string vs no field"},
		{"nested optional field added", nestedAdded{}, nested{}, ""},
		{"nested rename", nestedRenamed{}, nested{}, "at $.Items[].Title: string vs no field"},
		{"int vs uint", base{}, uintQty{}, "at $.Qty: int vs uint"},
		{"int vs float", base{}, floatQty{}, "at $.Qty: int vs float"},
		{"reply type changed", 0, "", "at $: int vs string"},
		{"pointer vs value", new(base), base{}, ""},
		{"tuple grown, even by an optional field", tuple3{}, tuple2{}, "at $.C: int vs no field"},
	}
	for _, tt := range tests {
		a, b := Of(reflect.TypeOf(tt.a)), Of(reflect.TypeOf(tt.b))
		got := Check(a, b).Explain()
		if got != tt.wantText {
			t.Errorf("%s: Check(%s, %s) = %q, want %q", tt.name, a, b, got, tt.wantText)
		}
		// Compare stays strict: whatever Check allows, Compare flags when
		// the field sets differ.
		if tt.wantText == "" && a.Canonical() != b.Canonical() {
			if _, ok := Diff(a, b); ok {
				t.Errorf("%s: Diff(%s, %s) finds no difference", tt.name, a, b)
			}
		}
	}
}
