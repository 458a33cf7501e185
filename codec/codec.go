// Package codec turns call arguments and replies into frame bodies and back.
//
// A Codec is chosen by the client (rpc.WithCodec) and named by its one-byte
// wire id in every frame, so one server answers clients of every codec:
//
//	id  name       implementation
//	1   "msgpack"  Msgpack (the default): vmihailenco/msgpack/v5, structs as
//	               maps of field names, so peers in other languages can read
//	               the body and fields can be added or removed between versions
//	2   "json"     JSON: encoding/json's bytes and semantics, with a fast
//	               path for plain structs (json_fast.go)
//
// Codecs are stateless values, safe for concurrent use. Encoders append to
// a caller-owned buffer (AppendMarshal), so a frame can be built in one
// pooled buffer without copies.
//
// Bodies come from the network, so decoding must never trust them. Msgpack
// never allocates what a body merely declares (see Msgpack.Unmarshal): its
// fast path for plain structs checks every length against the bytes that
// remain as it reads, and everything else is validated in one pass before
// vmihailenco/msgpack sees it; nesting is capped either way, so a 5-byte
// body cannot ask for gigabytes. JSON declares no lengths: what its fast
// path allocates grows with the body, and it nests only as deep as the
// target type (values it skips are checked without recursion, at most 256
// deep; deeper ones go to encoding/json). Every decoding failure wraps
// ErrMalformed, which the server answers with a bad-request error.
package codec

import "errors"

// ErrMalformed is wrapped by the error Unmarshal returns when a body is not
// a valid encoding of the target value: truncated, trailing or undecodable
// bytes, a declared length that does not fit in the body, nesting deeper
// than the limit, or a value of the wrong type.
var ErrMalformed = errors.New("codec: malformed body")

// Codec encodes and decodes frame bodies.
type Codec interface {
	// ID returns the wire id that names the codec in a frame header:
	// Msgpack is 1, JSON is 2.
	ID() byte
	// Name returns the codec's name: "msgpack", "json".
	Name() string
	// AppendMarshal appends the encoding of v to dst and returns the extended slice.
	AppendMarshal(dst []byte, v any) ([]byte, error)
	// Unmarshal decodes data into v (a pointer). Msgpack validates data first
	// (allocation-bomb check) and returns an error wrapping ErrMalformed.
	Unmarshal(data []byte, v any) error
}

// Wire ids of the built-in codecs.
const (
	msgpackID byte = 1
	jsonID    byte = 2
)

// ByID returns the codec with wire id id: 1 is Msgpack, 2 is JSON. It
// reports false for any other id.
func ByID(id byte) (Codec, bool) {
	switch id {
	case msgpackID:
		return Msgpack{}, true
	case jsonID:
		return JSON{}, true
	}
	return nil, false
}
