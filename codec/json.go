package codec

import (
	"encoding/json"
	"errors"
	"fmt"
)

// JSON is the encoding/json codec (wire id 2), for debugging and for
// peers that only speak JSON.
//
// Plain structs (and plain values: scalars, strings, slices, maps with
// string keys, pointers) take a fast path (json_fast.go) that produces the
// same bytes and the same decoded values, and fails exactly where
// encoding/json fails, without its reflection; anything it is not sure
// of, in a type or in a body, goes to encoding/json.
type JSON struct{}

var _ Codec = JSON{}

// ID returns 2.
func (JSON) ID() byte { return jsonID }

// Name returns "json".
func (JSON) Name() string { return "json" }

// AppendMarshal appends the JSON encoding of v to dst. On error it returns
// dst unchanged.
func (JSON) AppendMarshal(dst []byte, v any) ([]byte, error) {
	if out, ok := jsonMarshalFast(dst, v); ok {
		return out, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("codec: json marshal: %w", err)
	}
	return append(dst, b...), nil
}

// Unmarshal decodes the JSON in data into v, which must be a non-nil
// pointer. Errors caused by data wrap ErrMalformed; a v that is not a
// non-nil pointer is the caller's bug and does not.
func (JSON) Unmarshal(data []byte, v any) error {
	if jsonUnmarshalFast(data, v) {
		return nil
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var invalid *json.InvalidUnmarshalError
	if errors.As(err, &invalid) {
		return fmt.Errorf("codec: json unmarshal: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrMalformed, err)
}
