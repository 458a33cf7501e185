package main

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/seedrpc/rpc/internal/schema"
)

type node struct {
	Val  int
	Next *node
	Kids []node
}

type keyed struct {
	ByU map[uint8]string
	ByB map[bool]int
	ByF map[float64]int
}

// TestFromJSON converts JSON by shape, encodes it with msgpack and decodes
// it into the Go type, as a server would.
func TestFromJSON(t *testing.T) {
	tests := []struct {
		give string
		want any // a value of the target type
	}{
		{`{"Val":1,"Next":{"Val":2,"Next":{"Val":3}},"Kids":[{"Val":4}]}`,
			node{Val: 1, Next: &node{Val: 2, Next: &node{Val: 3}}, Kids: []node{{Val: 4}}}},
		{`{"ByU":{"7":"seven"},"ByB":{"true":1},"ByF":{"2.5":3}}`,
			keyed{ByU: map[uint8]string{7: "seven"}, ByB: map[bool]int{true: 1}, ByF: map[float64]int{2.5: 3}}},
		{`{"X":-1,"Y":"y"}`, Tuple{X: -1, Y: "y"}},
		{`[1, 2.5, "x"]`, []any{int64(1), 2.5, "x"}},
		{`"2024-01-02T03:04:05Z"`, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{`18446744073709551615`, uint64(math.MaxUint64)},
	}
	for _, tt := range tests {
		typ := reflect.TypeOf(tt.want)
		jv, err := decodeJSON([]byte(tt.give))
		if err != nil {
			t.Fatal(err)
		}
		v, err := fromJSON(jv, schema.Of(typ))
		if err != nil {
			t.Errorf("fromJSON(%s) error = %v", tt.give, err)
			continue
		}
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatalf("msgpack.Marshal(%#v): %v", v, err)
		}
		got := reflect.New(typ)
		if err := msgpack.Unmarshal(b, got.Interface()); err != nil {
			t.Errorf("fromJSON(%s) encodes as %x, which %v cannot decode: %v", tt.give, b, typ, err)
			continue
		}
		g := got.Elem().Interface()
		if tm, ok := g.(time.Time); ok {
			g = tm.UTC()
		}
		if !reflect.DeepEqual(g, tt.want) {
			t.Errorf("fromJSON(%s) decodes as %#v, want %#v", tt.give, g, tt.want)
		}
	}
	if _, err := decodeJSON([]byte(`1 2`)); !errors.Is(err, errInput) {
		t.Errorf("decodeJSON(two values) error = %v, want errInput", err)
	}
	jv, _ := decodeJSON([]byte(`{"ByU":{"300":"x"}}`))
	if _, err := fromJSON(jv, schema.Of(reflect.TypeFor[keyed]())); err != nil {
		t.Logf("fromJSON(key 300 into uint8): %v", err) // msgpack truncates; either way no panic
	}
}

// TestToJSON decodes msgpack replies by shape into JSON: struct fields in
// wire order, map entries sorted by key.
func TestToJSON(t *testing.T) {
	tests := []struct {
		give any
		want string
	}{
		{node{Val: 1, Next: &node{Val: 2}}, "{\n  \"Val\": 1,\n  \"Next\": {\n    \"Val\": 2,\n    \"Next\": null,\n    \"Kids\": null\n  },\n  \"Kids\": null\n}"},
		{keyed{ByU: map[uint8]string{7: "seven"}}, "{\n  \"ByU\": {\n    \"7\": \"seven\"\n  },\n  \"ByB\": null,\n  \"ByF\": null\n}"},
		{Tuple{X: 1, Y: "<y>"}, "{\n  \"X\": 1,\n  \"Y\": \"<y>\"\n}"},
		{math.Inf(1), `"+Inf"`},
		{[]byte{1, 2, 3}, `"AQID"`},
		{map[string]any{"b": []any{1, "x"}, "a": map[int]string{1: "one"}}, "{\n  \"a\": {\n    \"1\": \"one\"\n  },\n  \"b\": [\n    1,\n    \"x\"\n  ]\n}"},
		{struct{}{}, "{}"},
		{[]int{}, "[]"},
	}
	for _, tt := range tests {
		b, err := msgpack.Marshal(tt.give)
		if err != nil {
			t.Fatal(err)
		}
		v, err := toJSON(b, schema.Of(reflect.TypeOf(tt.give)))
		if err != nil {
			t.Errorf("toJSON(%#v) error = %v", tt.give, err)
			continue
		}
		var buf bytes.Buffer
		writeJSON(&buf, v, "")
		if buf.String() != tt.want {
			t.Errorf("toJSON(%#v) = %s, want %s", tt.give, buf.String(), tt.want)
		}
	}
	if _, err := toJSON([]byte{0x92, 0x01}, schema.Of(reflect.TypeFor[[]int]())); err == nil {
		t.Error("toJSON(truncated array) error = nil, want an error")
	}
}
