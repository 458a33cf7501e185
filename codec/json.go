package codec

import (
	"encoding/json"
	"errors"
	"fmt"
)

// JSON is the encoding/json codec (wire id 2). It is slower than Msgpack
// and meant for debugging and for peers that only speak JSON.
type JSON struct{}

var _ Codec = JSON{}

// ID returns 2.
func (JSON) ID() byte { return jsonID }

// Name returns "json".
func (JSON) Name() string { return "json" }

// AppendMarshal appends the JSON encoding of v to dst. On error it returns
// dst unchanged.
func (JSON) AppendMarshal(dst []byte, v any) ([]byte, error) {
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
