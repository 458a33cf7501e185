package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/seedrpc/rpc/internal/schema"
)

// This file turns JSON into the values a msgpack service expects, and a
// msgpack reply back into JSON, guided by the shapes the server described:
// JSON has one kind of number and no bytes, msgpack has integers, floats,
// binary and timestamps, and a Go server decodes only the right ones.

// errInput marks an args value that does not fit the method's shape: the
// command line is wrong, nothing was sent.
var errInput = errors.New("invalid args")

// decodeJSON parses one JSON value, keeping numbers as written.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", errInput, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: more than one JSON value", errInput)
	}
	return v, nil
}

// fromJSON converts v (from decodeJSON) to a value whose msgpack encoding
// has shape s: map[string]any for a struct, int64, uint64 and float64 for
// numbers, []byte from base64, time.Time from RFC 3339.
func fromJSON(v any, s *schema.Shape) (any, error) {
	c := converter{refs: schema.Index(s)}
	return c.from(v, s, schema.Root)
}

type converter struct {
	refs schema.Refs
}

func (c converter) from(v any, s *schema.Shape, path string) (any, error) {
	s = c.refs.Follow(s)
	if v == nil {
		return nil, nil // msgpack nil: the zero value of any type
	}
	bad := func(want string) error {
		return fmt.Errorf("%w: %s: want %s, got %s", errInput, path, want, jsonBrief(v))
	}
	switch s.Kind {
	case schema.Optional:
		return c.from(v, s.Elem, path)
	case schema.Any:
		return plain(v), nil
	case schema.Bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, bad("true or false")
	case schema.Int:
		if n, ok := v.(json.Number); ok {
			if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				return i, nil
			}
			if f, err := n.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
				return int64(f), nil
			}
		}
		return nil, bad("an integer")
	case schema.Uint:
		if n, ok := v.(json.Number); ok {
			if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
				return u, nil
			}
			if f, err := n.Float64(); err == nil && f == math.Trunc(f) && f >= 0 && f < 1<<64 {
				return uint64(f), nil
			}
		}
		return nil, bad("an unsigned integer")
	case schema.Float:
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				return f, nil
			}
		}
		return nil, bad("a number")
	case schema.String:
		if str, ok := v.(string); ok {
			return str, nil
		}
		return nil, bad("a string")
	case schema.Bytes:
		if str, ok := v.(string); ok {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				if b, err := enc.DecodeString(str); err == nil {
					return b, nil
				}
			}
		}
		return nil, bad("base64 text")
	case schema.Time:
		if str, ok := v.(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, str); err == nil {
				return t, nil
			}
		}
		return nil, bad(`an RFC 3339 time such as "2006-01-02T15:04:05Z"`)
	case schema.Duration:
		switch d := v.(type) {
		case string:
			if dur, err := time.ParseDuration(d); err == nil {
				return int64(dur), nil
			}
		case json.Number:
			if i, err := strconv.ParseInt(string(d), 10, 64); err == nil {
				return i, nil
			}
		}
		return nil, bad(`a duration such as "1.5s" or integer nanoseconds`)
	case schema.Array:
		arr, ok := v.([]any)
		if !ok {
			return nil, bad("an array")
		}
		out := make([]any, len(arr))
		for i, e := range arr {
			var err error
			if out[i], err = c.from(e, s.Elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return nil, err
			}
		}
		return out, nil
	case schema.Map:
		return c.fromMap(v, s, path, bad)
	case schema.Struct:
		return c.fromStruct(v, s, path, bad)
	}
	return nil, fmt.Errorf("%w: %s: the method takes a %s value, which cannot be sent", errInput, path, s.Kind)
}

func (c converter) fromMap(v any, s *schema.Shape, path string, bad func(string) error) (any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, bad("an object")
	}
	key := c.refs.Follow(s.Key)
	for key.Kind == schema.Optional {
		key = c.refs.Follow(key.Elem)
	}
	keys := sortedKeys(obj)
	if key.Kind == schema.String || key.Kind == schema.Any {
		out := make(map[string]any, len(obj))
		for _, k := range keys {
			val, err := c.from(obj[k], s.Elem, path+"["+strconv.Quote(k)+"]")
			if err != nil {
				return nil, err
			}
			out[k] = val
		}
		return out, nil
	}
	out := make(map[any]any, len(obj))
	for _, k := range keys {
		var kv any
		var err error
		switch key.Kind {
		case schema.Int:
			kv, err = strconv.ParseInt(k, 10, 64)
		case schema.Uint:
			kv, err = strconv.ParseUint(k, 10, 64)
		case schema.Float:
			kv, err = strconv.ParseFloat(k, 64)
		case schema.Bool:
			kv, err = strconv.ParseBool(k)
		default:
			return nil, fmt.Errorf("%w: %s: map keys of kind %s cannot be written in JSON", errInput, path, key.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: key %q is not a %s", errInput, path, k, key.Kind)
		}
		val, err := c.from(obj[k], s.Elem, path+"["+k+"]")
		if err != nil {
			return nil, err
		}
		out[kv] = val
	}
	return out, nil
}

func (c converter) fromStruct(v any, s *schema.Shape, path string, bad func(string) error) (any, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, bad("an object")
	}
	vals := make([]any, len(s.Fields))
	for _, k := range sortedKeys(obj) {
		i := fieldIndex(s.Fields, k)
		if i < 0 {
			names := make([]string, len(s.Fields))
			for j, f := range s.Fields {
				names[j] = f.Name
			}
			return nil, fmt.Errorf("%w: %s: no field %q (fields: %s)", errInput, path, k, strings.Join(names, ", "))
		}
		f := s.Fields[i]
		val, err := c.from(obj[k], f.Shape, path+"."+f.Name)
		if err != nil {
			return nil, err
		}
		vals[i] = val
	}
	if s.AsArray {
		return vals, nil
	}
	out := make(map[string]any, len(obj))
	for i, f := range s.Fields {
		if vals[i] != nil {
			out[f.Name] = vals[i]
		}
	}
	return out, nil
}

// fieldIndex finds a field by its exact name, or else by a name that
// differs only in case when exactly one does (as encoding/json matches).
func fieldIndex(fields []schema.Field, name string) int {
	found := -1
	for i, f := range fields {
		if f.Name == name {
			return i
		}
		if strings.EqualFold(f.Name, name) {
			if found >= 0 {
				return -1
			}
			found = i
		}
	}
	return found
}

// plain converts JSON for an Any: integers stay integers.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	}
	return v
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// jsonBrief shows a JSON value in an error.
func jsonBrief(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	b, _ := json.Marshal(v)
	if len(b) > 40 {
		b = append(b[:37], "..."...)
	}
	return string(b)
}

// toJSON decodes one msgpack value of shape s from data into a JSON value:
// object (fields in the order they came), []any, json.Number, string, bool
// or nil. Bytes become base64, times RFC 3339, durations nanoseconds (as
// encoding/json writes a time.Duration).
func toJSON(data []byte, s *schema.Shape) (any, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.SetMapDecoder(func(d *msgpack.Decoder) (any, error) { return d.DecodeUntypedMap() })
	c := converter{refs: schema.Index(s)}
	v, err := c.to(dec, s, 0)
	if err != nil {
		return nil, fmt.Errorf("decoding the reply: %w", err)
	}
	return v, nil
}

// maxDepth bounds the nesting toJSON follows.
const maxDepth = 100

func (c converter) to(dec *msgpack.Decoder, s *schema.Shape, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deep")
	}
	s = c.refs.Follow(s)
	code, err := dec.PeekCode()
	if err != nil {
		return nil, err
	}
	if code == msgpcode.Nil {
		return nil, dec.DecodeNil()
	}
	switch s.Kind {
	case schema.Optional:
		return c.to(dec, s.Elem, depth)
	case schema.Bool:
		return dec.DecodeBool()
	case schema.Int, schema.Duration:
		i, err := dec.DecodeInt64()
		return json.Number(strconv.FormatInt(i, 10)), err
	case schema.Uint:
		u, err := dec.DecodeUint64()
		return json.Number(strconv.FormatUint(u, 10)), err
	case schema.Float:
		f, err := dec.DecodeFloat64()
		if err != nil {
			return nil, err
		}
		return floatJSON(f), nil
	case schema.String:
		return dec.DecodeString()
	case schema.Bytes:
		b, err := dec.DecodeBytes()
		return base64.StdEncoding.EncodeToString(b), err
	case schema.Time:
		t, err := dec.DecodeTime()
		return t.UTC().Format(time.RFC3339Nano), err
	case schema.Array:
		n, err := dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		out := make([]any, 0, max(n, 0))
		for range n {
			e, err := c.to(dec, s.Elem, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	case schema.Map:
		n, err := dec.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		out := make(object, 0, max(n, 0))
		for range n {
			k, err := c.to(dec, s.Key, depth+1)
			if err != nil {
				return nil, err
			}
			v, err := c.to(dec, s.Elem, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, member{keyString(k), v})
		}
		sortMembers(out) // Go writes maps in random order
		return out, nil
	case schema.Struct:
		return c.toStruct(dec, s, depth)
	}
	v, err := dec.DecodeInterface() // Any, or a kind this version does not know
	if err != nil {
		return nil, err
	}
	return jsonOf(v), nil
}

func (c converter) toStruct(dec *msgpack.Decoder, s *schema.Shape, depth int) (any, error) {
	code, err := dec.PeekCode()
	if err != nil {
		return nil, err
	}
	if msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32 {
		n, err := dec.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		out := make(object, 0, n)
		for i := range n {
			if i >= len(s.Fields) {
				if err := dec.Skip(); err != nil {
					return nil, err
				}
				continue
			}
			v, err := c.to(dec, s.Fields[i].Shape, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, member{s.Fields[i].Name, v})
		}
		return out, nil
	}
	n, err := dec.DecodeMapLen()
	if err != nil {
		return nil, err
	}
	out := make(object, 0, max(n, 0))
	for range n {
		name, err := dec.DecodeString()
		if err != nil {
			return nil, err
		}
		fs := &schema.Shape{Kind: schema.Any} // a field the description did not have
		if i := fieldIndex(s.Fields, name); i >= 0 && s.Fields[i].Name == name {
			fs = s.Fields[i].Shape
		}
		v, err := c.to(dec, fs, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, member{name, v})
	}
	return out, nil
}

// jsonOf converts a value msgpack decoded into an interface.
func jsonOf(v any) any {
	switch x := v.(type) {
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		return json.Number(fmt.Sprint(x))
	case float32:
		return floatJSON(float64(x))
	case float64:
		return floatJSON(x)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonOf(e)
		}
		return out
	case map[any]any:
		out := make(object, 0, len(x))
		for k, e := range x {
			out = append(out, member{keyString(jsonOf(k)), jsonOf(e)})
		}
		sortMembers(out)
		return out
	case map[string]any:
		out := make(object, 0, len(x))
		for k, e := range x {
			out = append(out, member{k, jsonOf(e)})
		}
		sortMembers(out)
		return out
	case nil, bool, string:
		return x
	}
	return fmt.Sprint(v)
}

// floatJSON writes a float as JSON does, and the values JSON has no
// number for as strings.
func floatJSON(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}

// keyString turns a decoded map key into a JSON object key.
func keyString(k any) string {
	switch x := k.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case nil:
		return "null"
	}
	return fmt.Sprint(k)
}

func sortMembers(o object) {
	slices.SortStableFunc(o, func(a, b member) int { return strings.Compare(a.key, b.key) })
}

// object is a JSON object whose members keep their order.
type object []member

type member struct {
	key string
	val any
}

// writeJSON writes v (from toJSON) indented by two spaces, without
// escaping <, > and &.
func writeJSON(buf *bytes.Buffer, v any, indent string) {
	switch x := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(x))
	case json.Number:
		buf.WriteString(string(x))
	case string:
		writeString(buf, x)
	case []any:
		if len(x) == 0 {
			buf.WriteString("[]")
			return
		}
		buf.WriteString("[\n")
		for i, e := range x {
			buf.WriteString(indent + "  ")
			writeJSON(buf, e, indent+"  ")
			if i < len(x)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "]")
	case object:
		if len(x) == 0 {
			buf.WriteString("{}")
			return
		}
		buf.WriteString("{\n")
		for i, m := range x {
			buf.WriteString(indent + "  ")
			writeString(buf, m.key)
			buf.WriteString(": ")
			writeJSON(buf, m.val, indent+"  ")
			if i < len(x)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		buf.WriteString(indent + "}")
	default:
		writeString(buf, fmt.Sprint(x))
	}
}

func writeString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)           // a string always encodes
	buf.Truncate(buf.Len() - 1) // Encode's newline
}
